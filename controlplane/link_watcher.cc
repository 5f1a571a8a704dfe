#include "controlplane/link_watcher.h"

#include <linux/rtnetlink.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>

namespace bulkhead::controlplane {
namespace {

void collectRemoved(nl_object* object, void* changes) {
  auto* link = reinterpret_cast<rtnl_link*>(object);
  auto* out = static_cast<LinkChanges*>(changes);
  // A bridge announces a port leaving it as an AF_BRIDGE RTM_DELLINK: the link itself stays.
  if (rtnl_link_get_family(link) == AF_BRIDGE) {
    out->changed = true;
    return;
  }
  if (const char* name = rtnl_link_get_name(link)) {
    out->removed.push_back(name);
    out->removedIndexes.push_back(rtnl_link_get_ifindex(link));
  }
}

int onMessage(nl_msg* message, void* changes) {
  const auto type = nlmsg_hdr(message)->nlmsg_type;
  if (type == RTM_DELLINK) {
    nl_msg_parse(message, collectRemoved, changes);
  } else if (type == RTM_NEWLINK) {
    static_cast<LinkChanges*>(changes)->changed = true;
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
  nl_socket_modify_cb(socket, NL_CB_VALID, NL_CB_CUSTOM, onMessage, &watcher->pending_);
  return watcher;
}

LinkWatcher::~LinkWatcher() {
  nl_socket_free(socket_);
}

int LinkWatcher::fd() const {
  return nl_socket_get_fd(socket_);
}

LinkChanges LinkWatcher::take() {
  // Bounded: a flood of notifications is picked up again at the next poll.
  for (int batch = 0; batch < 1024; ++batch) {
    const int result = nl_recvmsgs_default(socket_);
    if (result == -NLE_NOMEM) {
      pending_.overflowed = true;  // ENOBUFS: the kernel dropped notifications
      continue;
    }
    if (result < 0) {
      break;  // -NLE_AGAIN: nothing more waiting
    }
  }
  LinkChanges out = std::move(pending_);
  pending_ = {};
  return out;
}

}  // namespace bulkhead::controlplane
