#pragma once

#include <memory>
#include <string>
#include <vector>

struct nl_sock;

namespace bulkhead::controlplane {

// Follows the kernel's link notifications (rtnetlink RTNLGRP_LINK, through libnl) so that a
// container veth that vanishes is detached even when no runtime event says so: a runtime that
// crashed, a CNI DEL that never came, an operator's `ip link del`.
class LinkWatcher {
 public:
  static std::unique_ptr<LinkWatcher> open(std::string* error);
  ~LinkWatcher();
  LinkWatcher(const LinkWatcher&) = delete;
  LinkWatcher& operator=(const LinkWatcher&) = delete;

  // Readable when notifications are waiting; poll it with the agent's other descriptors.
  int fd() const;
  // Drains what is waiting without blocking: the names of the links deleted since the last call.
  // When the socket overflowed (notifications were lost) `overflowed` is set: the caller must
  // check the links it cares about itself.
  std::vector<std::string> removedLinks(bool* overflowed);

 private:
  explicit LinkWatcher(nl_sock* socket) : socket_(socket) {}
  nl_sock* socket_;
  std::vector<std::string> removed_;
};

}  // namespace bulkhead::controlplane
