// The wire's kernel side without the fast path: the quarantine on a real bridge between real
// namespaces, and the patch panel's tags seen and injected on the trunk's DPDK end with a raw
// socket and tcpdump, where bulkheadd's workers would be.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <thread>

#include "controlplane/host_links.h"
#include "controlplane/wire.h"
#include "tests/integration/lab.h"
#include "wire/quarantine.h"

namespace bulkhead {
namespace {

using testing::Host;
using testing::Lab;
namespace fs = std::filesystem;

class WireTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::haveRoot()) {
      GTEST_SKIP() << "needs root: creates namespaces, a bridge, tc filters and nftables";
    }
    if (const auto tool = testing::missingTool({"ip", "ping", "tcpdump", "nft"}); !tool.empty()) {
      GTEST_SKIP() << "needs '" << tool << "' (scripts/setup.sh installs it)";
    }
    lab_ = std::make_unique<Lab>();
    a_ = &lab_->addHost("a", "10.217.0.11/24");
    b_ = &lab_->addHost("b", "10.217.0.12/24");
    bridge_ = lab_->bridgeHosts({a_, b_});
    std::string error;
    links_ = controlplane::HostLinks::open(&error);
    ASSERT_TRUE(links_) << error;
    names_.instance = lab_->agentInstance();
  }

  bool pings(const Host& from, const Host& to) {
    return lab_->exec(from, {"ping", "-c", "1", "-W", "1", to.ip}, 5).exitCode == 0;
  }

  // A neighbour entry that failed while a host was cut off may take a moment to resolve again.
  bool reaches(const Host& from, const Host& to) {
    return testing::waitFor([&] { return pings(from, to); }, 5);
  }

  int ifindex(const Host& host) { return links_->ifindexOf(host.hostIfname); }

  std::unique_ptr<Lab> lab_;
  const Host* a_ = nullptr;
  const Host* b_ = nullptr;
  std::string bridge_;
  std::unique_ptr<controlplane::HostLinks> links_;
  controlplane::WireNames names_;
};

TEST_F(WireTest, TheQuarantineHoldsEveryVethOnABridgeUntilItIsReleased) {
  ASSERT_TRUE(reaches(*a_, *b_));
  std::string error;
  auto quarantine = wire::Quarantine::open(names_.quarantineTable(), {}, {}, &error);
  ASSERT_TRUE(quarantine) << error;
  EXPECT_FALSE(pings(*a_, *b_));
  // A veth that joins the bridge later is held from its first frame.
  const Host& c = lab_->addHost("c", "10.217.0.13/24");
  ASSERT_EQ(testing::runCommand(
                {testing::findOnPath("ip"), "link", "set", c.hostIfname, "master", bridge_}, 10)
                .exitCode,
            0);
  EXPECT_FALSE(pings(c, *a_));
  ASSERT_TRUE(quarantine->release(ifindex(*a_), &error)) << error;
  ASSERT_TRUE(quarantine->release(links_->ifindexOf(c.hostIfname), &error)) << error;
  EXPECT_TRUE(reaches(c, *a_));
  EXPECT_FALSE(pings(*b_, *a_));  // b was not released
  quarantine->unrelease(ifindex(*a_));
  EXPECT_FALSE(pings(c, *a_));
  // Opened again, as a restarted agent does: one transaction, the old rules until the new.
  auto again =
      wire::Quarantine::open(names_.quarantineTable(), {}, {ifindex(*a_), ifindex(*b_)}, &error);
  ASSERT_TRUE(again) << error;
  EXPECT_TRUE(reaches(*a_, *b_));
  EXPECT_FALSE(pings(c, *a_));
  ASSERT_TRUE(again->remove(&error)) << error;
  EXPECT_FALSE(wire::Quarantine::exists(names_.quarantineTable()));
  EXPECT_TRUE(reaches(c, *a_));
}

// A raw socket on the trunk's DPDK end: what the fast path would receive and send.
class TrunkSocket {
 public:
  explicit TrunkSocket(const std::string& interface) {
    fd_ = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    sockaddr_ll address = {};
    address.sll_family = AF_PACKET;
    address.sll_protocol = htons(ETH_P_ALL);
    address.sll_ifindex = static_cast<int>(if_nametoindex(interface.c_str()));
    ifindex_ = address.sll_ifindex;
    bound_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }
  ~TrunkSocket() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  bool ok() const { return bound_; }

  // Sends `frame` as it is (with its 802.1Q header) into the trunk.
  bool send(const std::vector<uint8_t>& frame) {
    sockaddr_ll address = {};
    address.sll_family = AF_PACKET;
    address.sll_ifindex = ifindex_;
    address.sll_halen = 6;
    std::memcpy(address.sll_addr, frame.data(), 6);
    return ::sendto(fd_, frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&address),
                    sizeof address) == static_cast<ssize_t>(frame.size());
  }

 private:
  int fd_ = -1;
  int ifindex_ = 0;
  bool bound_ = false;
};

// An ARP request for `targetIp` from 02:00:00:00:00:99 / `senderIp`, tagged `tag`.
std::vector<uint8_t> taggedArpRequest(uint16_t tag, const std::string& senderIp,
                                      const std::string& targetIp) {
  std::vector<uint8_t> frame = {0xff,
                                0xff,
                                0xff,
                                0xff,
                                0xff,
                                0xff,
                                0x02,
                                0,
                                0,
                                0,
                                0,
                                0x99,
                                0x81,
                                0x00,
                                static_cast<uint8_t>(tag >> 8),
                                static_cast<uint8_t>(tag),
                                0x08,
                                0x06,
                                0,
                                1,
                                0x08,
                                0,
                                6,
                                4,
                                0,
                                1,  // Ethernet/IPv4, request
                                0x02,
                                0,
                                0,
                                0,
                                0,
                                0x99};
  in_addr sender{};
  in_addr target{};
  inet_pton(AF_INET, senderIp.c_str(), &sender);
  inet_pton(AF_INET, targetIp.c_str(), &target);
  const auto* s = reinterpret_cast<const uint8_t*>(&sender);
  const auto* t = reinterpret_cast<const uint8_t*>(&target);
  frame.insert(frame.end(), s, s + 4);
  frame.insert(frame.end(), 6, 0);
  frame.insert(frame.end(), t, t + 4);
  frame.resize(64, 0);
  return frame;
}

TEST_F(WireTest, ThePatchPanelTagsAPortsFramesIntoTheTrunkAndSendsTaggedFramesBack) {
  std::string error;
  auto wire = controlplane::Wire::open(names_, *links_, {}, {}, {}, &error);
  ASSERT_TRUE(wire) << error;
  EXPECT_TRUE(fs::exists(names_.pinDirectory()));
  int aIndex = 0;
  ASSERT_TRUE(wire->plug(a_->hostIfname, 7, &aIndex, &error)) << error;
  EXPECT_EQ(aIndex, ifindex(*a_));

  // What a sends arrives on the trunk with tag 7; b, still on the bridge and unplugged, hears
  // nothing of it (the patch panel took it before the bridge) and sends nothing (quarantine).
  auto& capture = lab_->spawn(
      nullptr, {"tcpdump", "-l", "-nn", "-e", "-i", names_.trunkPort(), "-c", "4", "arp"},
      "trunk.log");
  ASSERT_TRUE(capture.waitForLog("listening on", 10)) << capture.log();
  EXPECT_FALSE(pings(*a_, *b_));
  TrunkSocket trunk(names_.trunkPort());
  ASSERT_TRUE(trunk.ok());
  // The fast path's answer: an ARP request for a's address, tagged 7, comes out at a...
  ASSERT_TRUE(trunk.send(taggedArpRequest(7, "10.217.0.99", a_->ip)));
  // ...and one with a tag nothing is bound to is dropped at the trunk.
  ASSERT_TRUE(trunk.send(taggedArpRequest(9, "10.217.0.98", a_->ip)));
  ASSERT_TRUE(capture.waitForLog("Reply 10.217.0.11 is-at", 10)) << capture.log();
  const std::string seen = capture.log();
  EXPECT_NE(seen.find("vlan 7"), std::string::npos) << seen;
  EXPECT_NE(seen.find(a_->mac), std::string::npos) << seen;
  EXPECT_EQ(seen.find(b_->mac), std::string::npos) << seen;
  EXPECT_TRUE(testing::waitFor([&] { return wire->counters().trunkUnknownTag >= 1; }, 5));
  EXPECT_GE(wire->counters().portToTrunk, 2u);
  EXPECT_GE(wire->counters().trunkToPort, 1u);
  const auto neighbours = lab_->exec(*a_, {"ip", "neigh", "show", "10.217.0.98"});
  EXPECT_EQ(neighbours.out.find("02:00:00:00:00:99"), std::string::npos) << neighbours.out;

  // Unplugged, a is back behind the quarantine: cut off, not loose on the bridge.
  wire->unplug(aIndex, 7);
  EXPECT_FALSE(pings(*a_, *b_));
  // A clean shutdown leaves nothing: no pins, no trunk, no table, and the bridge carries again.
  wire->shutdown(false);
  EXPECT_FALSE(fs::exists(names_.pinDirectory()));
  EXPECT_FALSE(links_->exists(names_.trunkKernelEnd()));
  EXPECT_FALSE(wire::Quarantine::exists(names_.quarantineTable()));
  EXPECT_TRUE(reaches(*a_, *b_));
}

TEST_F(WireTest, ABridgesUplinkIsPluggedAndLetThroughTheQuarantine) {
  std::string error;
  auto wire = controlplane::Wire::open(names_, *links_, {}, {}, {}, &error);
  ASSERT_TRUE(wire) << error;
  std::string uplink;
  std::string peer;
  int uplinkIndex = 0;
  ASSERT_TRUE(wire->connectBridge(bridge_, 1, 3, &uplink, &peer, &uplinkIndex, &error)) << error;
  EXPECT_EQ(uplink, names_.uplink(1));
  EXPECT_EQ(links_->masterOf(peer), bridge_);
  int bIndex = 0;
  ASSERT_TRUE(wire->plug(b_->hostIfname, 8, &bIndex, &error)) << error;
  auto& capture = lab_->spawn(
      nullptr, {"tcpdump", "-l", "-nn", "-e", "-i", names_.trunkPort(), "-c", "8", "arp"},
      "trunk.log");
  ASSERT_TRUE(capture.waitForLog("listening on", 10)) << capture.log();
  // a, unplugged, asks for b: the quarantine drops it before the bridge floods it to the uplink.
  EXPECT_FALSE(pings(*a_, *b_));
  // b asks for a: tagged 8 on the trunk.
  EXPECT_FALSE(pings(*b_, *a_));
  // The bridge's own frames (the host on it) reach the trunk through the uplink, tagged 3.
  TrunkSocket trunk(names_.trunkPort());
  ASSERT_TRUE(trunk.send(taggedArpRequest(3, "10.217.0.97", a_->ip)));  // floods the bridge
  ASSERT_TRUE(
      testing::waitFor([&] { return capture.log().find("vlan 8") != std::string::npos; }, 10))
      << capture.log();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const std::string seen = capture.log();
  // Nothing of a's came through: neither its requests nor an answer to the uplink's request.
  EXPECT_EQ(seen.find(a_->mac), std::string::npos) << seen;
  wire->disconnectBridge(1, uplinkIndex, 3);
  EXPECT_FALSE(links_->exists(uplink));
  wire->shutdown(false);
}

}  // namespace
}  // namespace bulkhead
