#include "controlplane/host_links.h"

#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <thread>

namespace bulkhead::controlplane {
namespace {

struct LinkDeleter {
  void operator()(rtnl_link* link) const { rtnl_link_put(link); }
};
using LinkPtr = std::unique_ptr<rtnl_link, LinkDeleter>;

LinkPtr kernelLink(nl_sock* socket, const std::string& name) {
  rtnl_link* link = nullptr;
  if (rtnl_link_get_kernel(socket, 0, name.c_str(), &link) < 0) {
    return nullptr;
  }
  return LinkPtr(link);
}

bool fail(std::string* error, const std::string& what, int nlError) {
  if (error != nullptr) {
    *error = what + ": " + nl_geterror(nlError);
  }
  return false;
}

std::string macString(nl_addr* address) {
  if (address == nullptr || nl_addr_get_len(address) != 6) {
    return "";
  }
  const auto* bytes = static_cast<const unsigned char*>(nl_addr_get_binary_addr(address));
  char text[18];
  std::snprintf(text, sizeof text, "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2],
                bytes[3], bytes[4], bytes[5]);
  return text;
}

std::string lower(std::string text) {
  for (char& c : text) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return text;
}

// Runs `work` on a new thread that first joins the network namespace at `netnsPath`.
bool inNamespace(const std::string& netnsPath, std::string* error,
                 const std::function<bool(std::string*)>& work) {
  bool ok = false;
  std::thread thread([&] {
    const int fd = ::open(netnsPath.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      *error = "cannot open network namespace " + netnsPath + ": " + std::strerror(errno);
      return;
    }
    const bool joined = ::setns(fd, CLONE_NEWNET) == 0;
    const int savedErrno = errno;
    ::close(fd);
    if (!joined) {
      *error = "cannot enter network namespace " + netnsPath + ": " + std::strerror(savedErrno);
      return;
    }
    ok = work(error);
  });
  thread.join();
  return ok;
}

bool disableOffloadsHere(const std::string& name, std::string* error) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  // Checksum first: the kernel turns scatter-gather and TSO off with it where they depend on it.
  static constexpr uint32_t commands[] = {ETHTOOL_STXCSUM, ETHTOOL_SRXCSUM, ETHTOOL_STSO,
                                          ETHTOOL_SGSO, ETHTOOL_SGRO};
  std::string failed;
  for (const uint32_t command : commands) {
    ethtool_value value = {command, 0};
    ifreq request = {};
    std::strncpy(request.ifr_name, name.c_str(), IFNAMSIZ - 1);
    request.ifr_data = reinterpret_cast<char*>(&value);
    if (::ioctl(fd, SIOCETHTOOL, &request) != 0 && errno != EOPNOTSUPP) {
      failed += (failed.empty() ? "" : ", ") + std::string(std::strerror(errno));
    }
  }
  ::close(fd);
  if (!failed.empty()) {
    *error = "offloads of " + name + " not all turned off (" + failed + ")";
    return false;
  }
  return true;
}

}  // namespace

std::unique_ptr<HostLinks> HostLinks::open(std::string* error) {
  nl_sock* socket = nl_socket_alloc();
  if (socket == nullptr) {
    *error = "cannot allocate a netlink socket";
    return nullptr;
  }
  if (const int result = nl_connect(socket, NETLINK_ROUTE); result < 0) {
    nl_socket_free(socket);
    fail(error, "cannot connect to rtnetlink", result);
    return nullptr;
  }
  return std::unique_ptr<HostLinks>(new HostLinks(socket));
}

HostLinks::~HostLinks() {
  nl_socket_free(socket_);
}

namespace {

HostLinks::Link describe(rtnl_link* link) {
  const char* type = rtnl_link_get_type(link);
  const char* name = rtnl_link_get_name(link);
  int32_t netnsid = -1;
  // IFLA_LINK_NETNSID is only sent when the peer is in another namespace.
  return {name != nullptr ? name : "",
          lower(macString(rtnl_link_get_addr(link))),
          rtnl_link_get_link(link),
          rtnl_link_get_ifindex(link),
          rtnl_link_get_master(link),
          type != nullptr ? type : "",
          rtnl_link_get_link_netnsid(link, &netnsid) == 0 && netnsid >= 0};
}

}  // namespace

std::optional<HostLinks::Link> HostLinks::find(const std::string& name) {
  const LinkPtr link = kernelLink(socket_, name);
  return link ? std::optional<Link>(describe(link.get())) : std::nullopt;
}

std::optional<HostLinks::Link> HostLinks::find(int ifindex) {
  rtnl_link* link = nullptr;
  if (ifindex <= 0 || rtnl_link_get_kernel(socket_, ifindex, nullptr, &link) < 0) {
    return std::nullopt;
  }
  LinkPtr owned(link);
  return describe(link);
}

bool HostLinks::exists(const std::string& name) {
  return kernelLink(socket_, name) != nullptr;
}

std::string HostLinks::nameOf(int ifindex) {
  rtnl_link* link = nullptr;
  if (rtnl_link_get_kernel(socket_, ifindex, nullptr, &link) < 0) {
    return "";
  }
  LinkPtr owned(link);
  const char* name = rtnl_link_get_name(link);
  return name != nullptr ? name : "";
}

int HostLinks::ifindexOf(const std::string& name) {
  const LinkPtr link = kernelLink(socket_, name);
  return link ? rtnl_link_get_ifindex(link.get()) : 0;
}

std::string HostLinks::masterOf(const std::string& name) {
  const LinkPtr link = kernelLink(socket_, name);
  if (!link || rtnl_link_get_master(link.get()) <= 0) {
    return "";
  }
  return nameOf(rtnl_link_get_master(link.get()));
}

bool HostLinks::isBridge(const std::string& name) {
  const LinkPtr link = kernelLink(socket_, name);
  const char* type = link ? rtnl_link_get_type(link.get()) : nullptr;
  return type != nullptr && std::strcmp(type, "bridge") == 0;
}

bool HostLinks::setMaster(const std::string& name, const std::string& bridge, std::string* error) {
  const LinkPtr link = kernelLink(socket_, name);
  if (!link) {
    *error = "no interface named '" + name + "'";
    return false;
  }
  int master = 0;
  if (!bridge.empty()) {
    const LinkPtr bridgeLink = kernelLink(socket_, bridge);
    if (!bridgeLink) {
      *error = "no bridge named '" + bridge + "'";
      return false;
    }
    master = rtnl_link_get_ifindex(bridgeLink.get());
  }
  const int result =
      master == 0 ? rtnl_link_release_ifindex(socket_, rtnl_link_get_ifindex(link.get()))
                  : rtnl_link_enslave_ifindex(socket_, master, rtnl_link_get_ifindex(link.get()));
  if (result < 0) {
    return fail(error,
                master == 0 ? "cannot take " + name + " off its bridge"
                            : "cannot put " + name + " on bridge " + bridge,
                result);
  }
  return true;
}

bool HostLinks::createVethPair(const std::string& name, const std::string& peer,
                               const std::string& bridge, std::string* error) {
  if (const int result = rtnl_link_veth_add(socket_, name.c_str(), peer.c_str(), getpid());
      result < 0) {
    return fail(error, "cannot create veth pair " + name + "/" + peer, result);
  }
  if (!bridge.empty() && !setMaster(peer, bridge, error)) {
    std::string ignored;
    remove(name, &ignored);
    return false;
  }
  for (const std::string& end : {name, peer}) {
    const LinkPtr link = kernelLink(socket_, end);
    LinkPtr change(rtnl_link_alloc());
    rtnl_link_set_flags(change.get(), IFF_UP);
    const int result =
        link ? rtnl_link_change(socket_, link.get(), change.get(), 0) : -NLE_OBJ_NOTFOUND;
    if (result < 0) {
      std::string ignored;
      remove(name, &ignored);
      return fail(error, "cannot bring " + end + " up", result);
    }
  }
  return true;
}

bool HostLinks::remove(const std::string& name, std::string* error) {
  const LinkPtr link = kernelLink(socket_, name);
  if (!link) {
    return true;  // already gone: what was asked
  }
  if (const int result = rtnl_link_delete(socket_, link.get()); result < 0) {
    return fail(error, "cannot delete " + name, result);
  }
  return true;
}

std::vector<rules::IpAddress> HostLinks::addressesOf(const std::string& name) {
  std::vector<rules::IpAddress> out;
  const LinkPtr link = kernelLink(socket_, name);
  nl_cache* cache = nullptr;
  if (!link || rtnl_addr_alloc_cache(socket_, &cache) < 0) {
    return out;
  }
  const int ifindex = rtnl_link_get_ifindex(link.get());
  for (nl_object* object = nl_cache_get_first(cache); object != nullptr;
       object = nl_cache_get_next(object)) {
    auto* address = reinterpret_cast<rtnl_addr*>(object);
    if (rtnl_addr_get_ifindex(address) != ifindex) {
      continue;
    }
    nl_addr* local = rtnl_addr_get_local(address);
    char text[INET6_ADDRSTRLEN + 8];
    if (local == nullptr || nl_addr2str(local, text, sizeof text) == nullptr) {
      continue;
    }
    std::string string = text;
    string = string.substr(0, string.find('/'));
    if (const auto ip = rules::IpAddress::parse(string)) {
      out.push_back(*ip);
    }
  }
  nl_cache_free(cache);
  return out;
}

std::vector<HostLinks::Link> HostLinks::list(std::string* error) {
  std::vector<Link> out;
  nl_cache* cache = nullptr;
  if (const int result = rtnl_link_alloc_cache(socket_, AF_UNSPEC, &cache); result < 0) {
    fail(error, "cannot list links", result);
    return out;
  }
  for (nl_object* object = nl_cache_get_first(cache); object != nullptr;
       object = nl_cache_get_next(object)) {
    out.push_back(describe(reinterpret_cast<rtnl_link*>(object)));
  }
  nl_cache_free(cache);
  return out;
}

std::optional<ContainerVeth> containerVethOf(const std::string& netnsPath, const std::string& mac,
                                             HostLinks& links, std::string* error) {
  ContainerVeth veth;
  int peerIndex = 0;
  const bool found = inNamespace(netnsPath, error, [&](std::string* failure) {
    auto inner = HostLinks::open(failure);
    if (!inner) {
      return false;
    }
    for (const auto& link : inner->list(failure)) {
      if (link.mac == lower(mac)) {
        veth.containerInterface = link.name;
        peerIndex = link.peerIndex;
        break;
      }
    }
    if (veth.containerInterface.empty()) {
      *failure = "no interface with MAC " + mac + " in " + netnsPath;
      return false;
    }
    if (peerIndex <= 0) {
      *failure = veth.containerInterface + " in " + netnsPath + " is not a veth";
      return false;
    }
    return true;
  });
  if (!found) {
    return std::nullopt;
  }
  veth.hostInterface = links.nameOf(peerIndex);
  if (veth.hostInterface.empty()) {
    *error = "the host end of " + veth.containerInterface + " (ifindex " +
             std::to_string(peerIndex) + ") is not in the agent's namespace";
    return std::nullopt;
  }
  return veth;
}

bool setTrunkOffloads(const std::string& name, std::string* error) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  ethtool_value flags = {ETHTOOL_GFLAGS, 0};
  ifreq request = {};
  std::strncpy(request.ifr_name, name.c_str(), IFNAMSIZ - 1);
  request.ifr_data = reinterpret_cast<char*>(&flags);
  bool ok = ::ioctl(fd, SIOCETHTOOL, &request) == 0;
  if (ok) {
    flags.cmd = ETHTOOL_SFLAGS;
    flags.data &= ~static_cast<uint32_t>(ETH_FLAG_TXVLAN);
    ok = ::ioctl(fd, SIOCETHTOOL, &request) == 0;
  }
  const int flagsErrno = errno;
  ::close(fd);
  if (!ok) {
    *error = "cannot turn VLAN insertion off on " + name + ": " + std::strerror(flagsErrno);
    return false;
  }
  return disableOffloadsHere(name, error);
}

void disableIpv6(const std::string& name) {
  std::ofstream("/proc/sys/net/ipv6/conf/" + name + "/disable_ipv6") << "1\n";
}

bool disableOffloads(const std::string& name, std::string* error) {
  return disableOffloadsHere(name, error);
}

}  // namespace bulkhead::controlplane
