#pragma once

#include <memory>
#include <string>
#include <vector>

struct nl_sock;

namespace bulkhead::controlplane {

// What changed among the host's links since the last look.
struct LinkChanges {
  std::vector<std::string> removed;  // names of links deleted
  std::vector<int> removedIndexes;   // and their ifindexes
  bool changed = false;              // a link appeared or changed (joined or left a bridge, say)
  bool overflowed = false;           // notifications were lost: look at every link again
};

// Follows the kernel's link notifications (rtnetlink RTNLGRP_LINK, through libnl) so that a
// container veth that vanishes is detached even when no runtime event says so (a runtime that
// crashed, a CNI DEL that never came, an operator's `ip link del`), and a veth that joins a
// bridge the agent does not protect is let through the quarantine.
class LinkWatcher {
 public:
  static std::unique_ptr<LinkWatcher> open(std::string* error);
  ~LinkWatcher();
  LinkWatcher(const LinkWatcher&) = delete;
  LinkWatcher& operator=(const LinkWatcher&) = delete;

  // Readable when notifications are waiting; poll it with the agent's other descriptors.
  int fd() const;
  // Drains what is waiting without blocking. When the socket overflowed the caller must check
  // the links it cares about itself.
  LinkChanges take();

 private:
  explicit LinkWatcher(nl_sock* socket) : socket_(socket) {}
  nl_sock* socket_;
  LinkChanges pending_;
};

}  // namespace bulkhead::controlplane
