#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "rules/policy_snapshot.h"

namespace bulkhead::rules {

// Why a flow was denied, in terms of the rule that came closest to allowing it: a rule of the
// denying side matches the flow's peer, then its port, then its protocol, then its host; the
// closest is the one that matched the most of these (the first such, in policy order), and the
// mismatch is the first thing it did not match. Built off the fast path, for the violation log
// and the CLI.
struct Explanation {
  // DenyRule: nothing missed; a deny rule matched the flow (closestRule is that rule, `allows`
  // what it denies). AdminDeny, BaselineDeny: likewise, a rule of that tier with action deny.
  enum class Mismatch {
    NoRule,
    Peer,
    Port,
    Protocol,
    Unclassified,
    Host,
    DenyRule,
    AdminDeny,
    BaselineDeny
  };
  Mismatch mismatch = Mismatch::NoRule;
  std::string closestRule;  // "<policy>/<direction>/<index>"; empty for NoRule
  std::string allows;       // what the closest rule allows: "HTTP on 8080/TCP for *.shop.local"
  std::string expected;     // of the mismatching part: "8080/TCP", "HTTP", "*.shop.local"
  std::string found;        // the flow's: "9090/TCP", "SSH", "evil.test"

  // "api/ingress/0 allows HTTP on 8080/TCP; this flow's port is 9090/TCP".
  std::string text(std::string_view peerName) const;
  // "port", "peer", "protocol", "host", "unclassified", "deny-rule", "admin-deny",
  // "baseline-deny" or "no-rule": the violation log's `mismatch.what`.
  std::string_view what() const;
};

// The flow's protocol and a protocol id's name (nDPI's), for the explanation's words.
using ProtocolName = std::function<std::string(uint16_t id)>;

// The explanation of a denial by `side` (the snapshot's Verdict::deniedBy) of `query`.
Explanation explainDenial(const PolicySnapshot& snapshot, const FlowQuery& query, Direction side,
                          const ProtocolName& protocolName);

}  // namespace bulkhead::rules
