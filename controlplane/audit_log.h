#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "controlplane/log_sink.h"

namespace bulkhead::controlplane {

// The audit trail (docs/violations.md, "The audit log"): what changed what the agent enforces,
// one JSON line each -- a policy put in force or refused (with its generation and sha256), an
// endpoint attached or detached. Every event also goes to the agent's own log (the journal),
// with or without a sink; `auditLog` adds one of the log targets (a rotated file, stdout,
// syslog with MSGID "audit"). Not thread-safe: the control thread owns it.
class AuditLog {
 public:
  // With an empty target spec: the journal only.
  static std::unique_ptr<AuditLog> open(const LogTarget& target, std::string* error);

  void policyApplied(const std::string& trigger, uint64_t generation, const std::string& sha256,
                     size_t policies);
  void policyRejected(const std::string& trigger, uint64_t generation, const std::string& sha256,
                      const std::vector<std::string>& errors);
  void endpointAttached(const std::string& name, uint64_t identity, const std::string& source,
                        const std::string& interface);
  void endpointDetached(const std::string& name, const std::string& why);
  // `bulkhead policy apply` / `delete` through this agent: the documents and the store's
  // revision after the change (every agent then logs policy-applied for it).
  void clusterPolicy(const std::string& verb, const nlohmann::json& names, int64_t revision);

  bool reopen(std::string* error);
  // What `bulkhead status` shows; "" without a sink.
  std::string path() const { return sink_ ? sink_->describe() : ""; }
  uint64_t linesWritten() const { return lines_; }
  uint64_t writeErrors() const { return writeErrors_; }

 private:
  explicit AuditLog(std::unique_ptr<LogSink> sink) : sink_(std::move(sink)) {}
  void write(nlohmann::json line);

  std::unique_ptr<LogSink> sink_;  // null: the journal only
  uint64_t lines_ = 0;
  uint64_t writeErrors_ = 0;
};

}  // namespace bulkhead::controlplane
