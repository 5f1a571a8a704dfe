#include "controlplane/link_watcher.h"

#include <linux/rtnetlink.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>

namespace bulkhead::controlplane {
namespace {

void collect(nl_object* object, void* removed) {
  auto* link = reinterpret_cast<rtnl_link*>(object);
  // A bridge announces a port leaving it as an AF_BRIDGE RTM_DELLINK: the link itself stays.
  if (rtnl_link_get_family(link) == AF_BRIDGE) {
    return;
  }
  if (const char* name = rtnl_link_get_name(link)) {
    static_cast<std::vector<std::string>*>(removed)->push_back(name);
  }
}

int onMessage(nl_msg* message, void* removed) {
  if (nlmsg_hdr(message)->nlmsg_type == RTM_DELLINK) {
    nl_msg_parse(message, collect, removed);
  }
  return NL_OK;
}

}  // namespace

std::unique_ptr<LinkWatcher> LinkWatcher::open(std::string* error) {
  nl_sock* socket = nl_socket_alloc();
  if (socket == nullptr) {
    *error = "cannot allocate a netlink socket";
    return nullptr;
  }
  nl_socket_disable_seq_check(socket);  // notifications carry no sequence numbers of ours
  int result = nl_connect(socket, NETLINK_ROUTE);
  if (result >= 0) {
    result = nl_socket_add_membership(socket, RTNLGRP_LINK);
  }
  if (result >= 0) {
    result = nl_socket_set_nonblocking(socket);
  }
  if (result < 0) {
    *error = std::string("cannot follow link notifications: ") + nl_geterror(result);
    nl_socket_free(socket);
    return nullptr;
  }
  auto watcher = std::unique_ptr<LinkWatcher>(new LinkWatcher(socket));
  nl_socket_modify_cb(socket, NL_CB_VALID, NL_CB_CUSTOM, onMessage, &watcher->removed_);
  return watcher;
}

LinkWatcher::~LinkWatcher() { nl_socket_free(socket_); }

int LinkWatcher::fd() const { return nl_socket_get_fd(socket_); }

std::vector<std::string> LinkWatcher::removedLinks(bool* overflowed) {
  *overflowed = false;
  // Bounded: a flood of notifications is picked up again at the next poll.
  for (int batch = 0; batch < 1024; ++batch) {
    const int result = nl_recvmsgs_default(socket_);
    if (result == -NLE_NOMEM) {
      *overflowed = true;  // ENOBUFS: the kernel dropped notifications
      continue;
    }
    if (result < 0) {
      break;  // -NLE_AGAIN: nothing more waiting
    }
  }
  std::vector<std::string> out;
  out.swap(removed_);
  return out;
}

}  // namespace bulkhead::controlplane
