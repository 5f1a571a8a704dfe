#pragma once

#include <memory>
#include <string>
#include <vector>

struct nft_ctx;

namespace bulkhead::wire {

// What keeps a container's veth from carrying anything but what the patch panel carries: one
// nftables table of the bridge family that drops every frame a bridge would carry to or from a
// veth port (forwarded, delivered to the host, or sent by the host), except
//  - the agent's uplinks, the bridge ends of the pairs through which the fast path reaches each
//    protected bridge (so host <-> container traffic passes the fast path like any other), and
//  - the released ports: veths on bridges the agent does not protect.
// A plugged container's frames never reach its bridge (the patch panel redirects them before),
// and a new veth is quarantined from its first frame, before the agent knows of it.
//
// One table for all bridges, scoped by port rather than by bridge, because the kernels bulkhead
// runs on may lack the bridge meta expressions (`meta ibrname`): a veth on a bridge the agent
// does not protect is therefore held too until the agent releases it, which it does as soon as
// it sees the port join (docs/architecture.md, "The wire").
//
// Built with libnftables; every change is one nft transaction. Failures are false with a
// sentence in `error`; nothing throws. The control thread owns it.
class Quarantine {
 public:
  // Creates the table, or replaces one a crashed agent left with the same name, in one
  // transaction: a frame meets either the old rules or the new ones, never none.
  static std::unique_ptr<Quarantine> open(const std::string& table, const std::vector<int>& uplinks,
                                          const std::vector<int>& released, std::string* error);
  ~Quarantine();  // leaves the table in place: that is how a stopped agent fails closed
  Quarantine(const Quarantine&) = delete;
  Quarantine& operator=(const Quarantine&) = delete;

  // Ports are named by ifindex, which the kernel does not give again soon: a veth that goes and
  // a new one with the same name is not let through by its predecessor's entry.
  bool addUplink(int ifindex, std::string* error);
  void removeUplink(int ifindex);
  bool release(int ifindex, std::string* error);
  void unrelease(int ifindex);
  // Deletes the table: every bridge carries everything again.
  bool remove(std::string* error);

  const std::string& table() const { return table_; }

  // For recovery, a clean stop and tests: is a table of that name there, and its removal.
  static bool exists(const std::string& table);
  static bool removeTable(const std::string& table, std::string* error);

 private:
  Quarantine(nft_ctx* context, std::string table) : context_(context), table_(std::move(table)) {}
  bool run(const std::string& commands, std::string* error);
  bool element(const char* verb, const char* set, int ifindex, std::string* error);

  nft_ctx* context_;
  std::string table_;
};

}  // namespace bulkhead::wire
