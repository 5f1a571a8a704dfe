#include "dataplane/pipeline.h"

#include <gtest/gtest.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/eal.h"
#include "dataplane/packet_parser.h"
#include "rules/policy_compiler.h"
#include "rules/policy_loader.h"
#include "tests/support/frames.h"
#include "tests/support/protocol_payloads.h"

namespace bulkhead {
namespace {

using dataplane::Action;
using dataplane::DropReason;
using dataplane::Flow;
using dataplane::PacketVerdict;
using dataplane::Pipeline;
using dataplane::PipelineConfig;
using testing::arpRequest;
using testing::Bytes;
using testing::EtherArp;
using testing::ethernet;
using testing::ip;
using testing::ipv4Frame;
using testing::Ipv4Header;
using testing::join;
using testing::TcpSession;
using testing::udp;
using testing::udpHeader;
namespace ip_protocol = dataplane::ip_protocol;

constexpr uint64_t Second = 1000000000ull;
constexpr uint64_t Start = 1000 * Second;
constexpr uint16_t Port = 0;

constexpr rules::IdentityId Web = 256;
constexpr rules::IdentityId Api = 257;
constexpr rules::IdentityId Other = 258;

constexpr const char* WebIp = "10.0.1.10";
constexpr const char* ApiIp = "10.0.2.20";
constexpr const char* OtherIp = "10.0.3.30";

// ---- Frames ----

Bytes udpFrame(const char* src, uint16_t srcPort, const char* dst, uint16_t dstPort,
               const Bytes& payload = Bytes(16, 0x5A)) {
  return ipv4Frame({.src = src, .dst = dst, .protocol = ip_protocol::UDP, .id = 1},
                   udp(srcPort, dstPort, payload));
}

Bytes arpFrame() {
  return join({ethernet(EtherArp), arpRequest(WebIp, ApiIp)});
}

// ---- Endpoints and policy ----

// Resolves peers by address, like the offline resolver, and counts how often it is asked.
class TestResolver final : public dataplane::EndpointResolver {
 public:
  void add(const char* address, rules::IdentityId identity, uint32_t endpoint) {
    peers_[ip(address)] = {identity, endpoint};
  }

  dataplane::ResolvedFlow resolve(const dataplane::PacketMeta& meta, uint16_t) const override {
    ++calls;
    return {lookup(meta.srcIp), lookup(meta.dstIp)};
  }

  mutable int calls = 0;

 private:
  dataplane::ResolvedPeer lookup(const rules::IpAddress& address) const {
    const auto found = peers_.find(address);
    return found == peers_.end() ? dataplane::ResolvedPeer{} : found->second;
  }

  std::map<rules::IpAddress, dataplane::ResolvedPeer> peers_;
};

// The API takes TCP 5000 and UDP 6100 from the web tier, plus HTTP (inspected) on 8080.
std::string apiPolicy(std::string_view mode, std::string_view extraPorts = "") {
  std::string yaml = R"(apiVersion: bulkhead.io/v1
kind: SegmentationPolicy
metadata:
  name: api
spec:
  mode: MODE
  endpointSelector:
    matchLabels: {app: api}
  ingress:
    - fromEndpoints: [{matchLabels: {app: web}}]
      toPorts:
        - ports: [{port: 5000, protocol: TCP}, {port: 6100, protocol: UDP}EXTRA]
        - ports: [{port: 8080, protocol: TCP}]
          l7: {protocols: [HTTP]}
)";
  yaml.replace(yaml.find("MODE"), 4, mode);
  yaml.replace(yaml.find("EXTRA"), 5, extraPorts);
  return yaml;
}

std::string uniqueName(const char* what) {
  static int counter = 0;
  return std::string("pl_") + what + std::to_string(counter++);
}

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    resolver_.add(WebIp, Web, 0);
    resolver_.add(ApiIp, Api, 1);
    resolver_.add(OtherIp, Other, 2);
    identities_ = {{Web, {{"app", "web"}}}, {Api, {{"app", "api"}}}, {Other, {{"app", "other"}}}};
  }

  std::unique_ptr<Pipeline> makePipeline(PipelineConfig config = smallConfig()) {
    return std::make_unique<Pipeline>(config, resolver_);
  }

  static PipelineConfig smallConfig() {
    PipelineConfig config;
    config.flows.capacity = 1024;
    config.dpi.maxClassifyingFlows = 1024;
    return config;
  }

  // Compiles `yaml` against the test identities; the snapshot outlives the pipelines using it.
  const rules::PolicySnapshot* compile(const Pipeline& pipeline, const std::string& yaml,
                                       uint64_t generation) {
    const auto& catalog = pipeline.detector().catalog();
    const rules::PolicyLoadResult loaded = rules::loadPolicyText(yaml, "test.yaml", catalog);
    EXPECT_TRUE(loaded.ok()) << yaml;
    EXPECT_EQ(loaded.set.policies.size(), 1u);
    snapshots_.push_back(rules::compilePolicy(loaded.set, identities_, catalog, generation));
    return snapshots_.back().get();
  }

  static PacketVerdict send(Pipeline& pipeline, const Bytes& frame, uint64_t nowNs) {
    return pipeline.process(frame.data(), static_cast<uint32_t>(frame.size()), nowNs, Port);
  }

  static uint64_t dropped(const Pipeline& pipeline, DropReason reason) {
    return pipeline.counters().dropped[static_cast<size_t>(reason)];
  }

  TestResolver resolver_;
  rules::IdentityList identities_;
  std::vector<rules::PolicySnapshotPtr> snapshots_;
};

TEST_F(PipelineTest, AllowedFlowForwardsBothDirections) {
  auto pipeline = makePipeline();
  pipeline->setPolicy(compile(*pipeline, apiPolicy("enforce"), 1));
  TcpSession session(WebIp, 40000, ApiIp, 5000);
  const std::vector<Bytes> frames{session.syn(),
                                  session.synAck(),
                                  session.ack(),
                                  session.fromClient("ping"),
                                  session.fromServer("pong"),
                                  session.clientFin(),
                                  session.serverFin(),
                                  session.ack()};
  Flow flow;
  uint64_t bytes = 0;
  for (size_t i = 0; i < frames.size(); ++i) {
    const PacketVerdict verdict = send(*pipeline, frames[i], Start + i * 1000);
    EXPECT_EQ(verdict.action, Action::Forward) << "packet " << i;
    EXPECT_EQ(verdict.reason, DropReason::None) << "packet " << i;
    EXPECT_EQ(verdict.newFlow, i == 0) << "packet " << i;
    ASSERT_TRUE(verdict.flow);
    if (i == 0) {
      flow = verdict.flow;
    }
    EXPECT_EQ(verdict.flow, flow) << "packet " << i << " landed on another flow";
    bytes += frames[i].size();
  }
  EXPECT_EQ(pipeline->flows().size(), 1u);
  EXPECT_EQ(flow.verdict(pipeline->policy()).decision, rules::Decision::Allow);
  ASSERT_NE(flow.verdict(pipeline->policy()).rule, rules::Verdict::NoRule);
  EXPECT_EQ(pipeline->policy()->ruleName(flow.verdict(pipeline->policy())), "api/ingress/0");
  EXPECT_EQ(flow.cold().srcIdentity, Web);
  EXPECT_EQ(flow.cold().dstIdentity, Api);
  EXPECT_EQ(flow.cold().srcEndpoint, 0u);
  EXPECT_EQ(flow.cold().dstEndpoint, 1u);
  EXPECT_EQ(flow.hot().packets[0], 5u);  // from the initiator
  EXPECT_EQ(flow.hot().packets[1], 3u);
  EXPECT_EQ(flow.totalBytes(), bytes);
  EXPECT_EQ(flow.forwardedPackets(), 8u);
  EXPECT_EQ(flow.cold().droppedPackets, 0u);
  EXPECT_EQ(flow.hot().state, dataplane::ConnState::Closed);
  EXPECT_EQ(flow.cold().firstSeenNs, Start);
  EXPECT_EQ(flow.hot().lastSeenNs, Start + 7000);
  EXPECT_EQ(resolver_.calls, 1);

  const auto& counters = pipeline->counters();
  EXPECT_EQ(counters.packets, 8u);
  EXPECT_EQ(counters.bytes, bytes);
  EXPECT_EQ(counters.forwarded, 8u);
  EXPECT_EQ(counters.flowsCreated, 1u);
  EXPECT_EQ(counters.monitoredViolations, 0u);
  EXPECT_EQ(dropped(*pipeline, DropReason::PolicyDenied), 0u);
}

TEST_F(PipelineTest, ReturnTrafficIsTheSameFlow) {
  auto pipeline = makePipeline();
  pipeline->setPolicy(compile(*pipeline, apiPolicy("enforce"), 1));
  const PacketVerdict request = send(*pipeline, udpFrame(WebIp, 35000, ApiIp, 6100), Start);
  ASSERT_EQ(request.action, Action::Forward);
  ASSERT_TRUE(request.flow);
  EXPECT_TRUE(request.newFlow);
  EXPECT_EQ(request.flow.hot().state, dataplane::ConnState::New);

  const PacketVerdict reply = send(*pipeline, udpFrame(ApiIp, 6100, WebIp, 35000), Start + 1);
  EXPECT_EQ(reply.action, Action::Forward);
  EXPECT_FALSE(reply.newFlow);
  EXPECT_EQ(reply.flow, request.flow);
  EXPECT_EQ(pipeline->flows().size(), 1u);
  EXPECT_EQ(reply.flow.hot().state, dataplane::ConnState::Established);
  EXPECT_EQ(reply.flow.hot().packets[0], 1u);
  EXPECT_EQ(reply.flow.hot().packets[1], 1u);
  // The reply did not make the API the initiator: the verdict is still for web -> api:6100.
  EXPECT_EQ(reply.flow.cold().srcIdentity, Web);
  EXPECT_EQ(reply.flow.cold().dstIdentity, Api);
  EXPECT_EQ(pipeline->counters().flowsCreated, 1u);
  EXPECT_EQ(resolver_.calls, 1);

  // Another source port is another flow.
  const PacketVerdict second = send(*pipeline, udpFrame(WebIp, 35001, ApiIp, 6100), Start + 2);
  EXPECT_TRUE(second.newFlow);
  EXPECT_NE(second.flow, request.flow);
  EXPECT_EQ(pipeline->flows().size(), 2u);
}

// As a worker runs a burst: every packet looked ahead (keys hashed) before the first is
// processed, so the reply's lookahead was made while its flow did not exist yet. The verdicts and
// the flows' counters must be those of packets processed one at a time.
TEST_F(PipelineTest, ABurstLookedAheadIsJudgedAsPacketsOneByOne) {
  const std::vector<Bytes> frames{
      udpFrame(WebIp, 35000, ApiIp, 6100),  // new flow, allowed
      udpFrame(ApiIp, 6100, WebIp, 35000),  // its reply: the flow the first packet makes
      udpFrame(WebIp, 35000, ApiIp, 6100),  // established, on the fast path
      udpFrame(WebIp, 35001, ApiIp, 9999),  // new flow, denied
      udpFrame(WebIp, 35001, ApiIp, 9999),  // denied again, from its cached verdict
      udpFrame(ApiIp, 6100, WebIp, 35000),
  };
  auto burstPipeline = makePipeline();
  burstPipeline->setPolicy(compile(*burstPipeline, apiPolicy("enforce"), 1));
  auto onePipeline = makePipeline();
  onePipeline->setPolicy(compile(*onePipeline, apiPolicy("enforce"), 1));

  std::vector<dataplane::PacketMeta> metas;
  std::vector<dataplane::FlowLookahead> ahead(frames.size());
  for (size_t i = 0; i < frames.size(); ++i) {
    metas.push_back(
        dataplane::parsePacket(frames[i].data(), static_cast<uint32_t>(frames[i].size())));
    burstPipeline->lookAhead(metas[i], ahead[i]);
    EXPECT_TRUE(ahead[i].ready);
  }
  for (const auto& one : ahead) {
    burstPipeline->prefetchFlow(one);
  }
  rte_mempool* pool = dataplane::createPacketPool(uniqueName("burst"), 63, 2048);
  ASSERT_NE(pool, nullptr);
  std::vector<Flow> burstFlows;
  for (size_t i = 0; i < frames.size(); ++i) {
    rte_mbuf* mbuf = rte_pktmbuf_alloc(pool);
    ASSERT_NE(mbuf, nullptr);
    std::memcpy(rte_pktmbuf_append(mbuf, static_cast<uint16_t>(frames[i].size())), frames[i].data(),
                frames[i].size());
    const PacketVerdict inBurst =
        burstPipeline->process(mbuf, metas[i], ahead[i], Start + i, Port, 7);
    rte_pktmbuf_free(mbuf);
    const PacketVerdict alone = send(*onePipeline, frames[i], Start + i);
    EXPECT_EQ(inBurst.action, alone.action) << "packet " << i;
    EXPECT_EQ(inBurst.reason, alone.reason) << "packet " << i;
    EXPECT_EQ(inBurst.newFlow, alone.newFlow) << "packet " << i;
    ASSERT_TRUE(inBurst.flow) << "packet " << i;
    burstFlows.push_back(inBurst.flow);
  }
  rte_mempool_free(pool);
  EXPECT_EQ(burstFlows[1], burstFlows[0]) << "the reply found the flow its burst made";
  EXPECT_EQ(burstFlows[5], burstFlows[0]);
  EXPECT_EQ(burstFlows[4], burstFlows[3]);
  EXPECT_EQ(burstFlows[0].hot().packets[0], 2u);
  EXPECT_EQ(burstFlows[0].hot().packets[1], 2u);
  EXPECT_EQ(burstFlows[3].cold().droppedPackets, 2u);
  EXPECT_EQ(burstPipeline->flows().size(), 2u);
  const auto& burst = burstPipeline->counters();
  const auto& one = onePipeline->counters();
  EXPECT_EQ(burst.packets, one.packets);
  EXPECT_EQ(burst.bytes, one.bytes);
  EXPECT_EQ(burst.forwarded, one.forwarded);
  EXPECT_EQ(burst.flowsCreated, 2u);
  EXPECT_EQ(dropped(*burstPipeline, DropReason::PolicyDenied),
            dropped(*onePipeline, DropReason::PolicyDenied));
}

TEST_F(PipelineTest, DeniedFlowIsDroppedInEnforceMode) {
  auto pipeline = makePipeline();
  pipeline->setPolicy(compile(*pipeline, apiPolicy("enforce"), 1));
  TcpSession fromOther(OtherIp, 40000, ApiIp, 5000);  // a peer the policy does not allow
  const PacketVerdict syn = send(*pipeline, fromOther.syn(), Start);
  EXPECT_EQ(syn.action, Action::Drop);
  EXPECT_EQ(syn.reason, DropReason::PolicyDenied);
  ASSERT_TRUE(syn.flow);
  EXPECT_TRUE(syn.newFlow);
  EXPECT_FALSE(syn.cut) << "nothing of the flow passed: no end to tell";
  EXPECT_EQ(syn.flow.verdict(pipeline->policy()).decision, rules::Decision::Deny);
  EXPECT_TRUE(syn.flow.verdict(pipeline->policy()).enforced);
  EXPECT_EQ(syn.flow.verdict(pipeline->policy()).deniedBy, rules::Direction::Ingress);
  EXPECT_EQ(pipeline->policy()->ruleName(syn.flow.verdict(pipeline->policy())), "default-deny");

  // A reply (had one got through) belongs to the same denied flow.
  const PacketVerdict synAck = send(*pipeline, fromOther.synAck(), Start + 1);
  EXPECT_EQ(synAck.action, Action::Drop);
  EXPECT_EQ(synAck.flow, syn.flow);
  EXPECT_FALSE(synAck.cut);

  TcpSession wrongPort(WebIp, 40001, ApiIp, 9999);  // an allowed peer on a port not allowed
  const PacketVerdict other = send(*pipeline, wrongPort.syn(), Start + 2);
  EXPECT_EQ(other.action, Action::Drop);
  EXPECT_EQ(other.reason, DropReason::PolicyDenied);

  EXPECT_EQ(dropped(*pipeline, DropReason::PolicyDenied), 3u);
  EXPECT_EQ(syn.flow.cold().droppedPackets, 2u);
  EXPECT_EQ(syn.flow.forwardedPackets(), 0u);
  EXPECT_EQ(pipeline->counters().forwarded, 0u);
  EXPECT_EQ(pipeline->counters().monitoredViolations, 0u);
  EXPECT_EQ(pipeline->counters().droppedBytes,
            fromOther.syn().size() + fromOther.synAck().size() + wrongPort.syn().size());
  EXPECT_EQ(pipeline->counters().flowsCut, 0u) << "denied from their first packet: nothing cut";
}

TEST_F(PipelineTest, DeniedFlowIsForwardedAndCountedInMonitorMode) {
  auto pipeline = makePipeline();
  pipeline->setPolicy(compile(*pipeline, apiPolicy("monitor"), 1));
  TcpSession fromOther(OtherIp, 40000, ApiIp, 5000);
  const PacketVerdict syn = send(*pipeline, fromOther.syn(), Start);
  EXPECT_EQ(syn.action, Action::Forward);
  EXPECT_EQ(syn.reason, DropReason::None);
  ASSERT_TRUE(syn.flow);
  EXPECT_EQ(syn.flow.verdict(pipeline->policy()).decision, rules::Decision::Deny);
  EXPECT_FALSE(syn.flow.verdict(pipeline->policy()).enforced);
  EXPECT_EQ(send(*pipeline, fromOther.synAck(), Start + 1).action, Action::Forward);
  EXPECT_EQ(send(*pipeline, fromOther.ack(), Start + 2).action, Action::Forward);

  // Allowed traffic is not a violation.
  EXPECT_EQ(send(*pipeline, udpFrame(WebIp, 35000, ApiIp, 6100), Start + 3).action,
            Action::Forward);

  EXPECT_EQ(pipeline->counters().monitoredViolations, 3u);
  EXPECT_EQ(pipeline->counters().forwarded, 4u);
  EXPECT_EQ(dropped(*pipeline, DropReason::PolicyDenied), 0u);
  EXPECT_EQ(syn.flow.forwardedPackets(), 3u);
  EXPECT_EQ(syn.flow.cold().droppedPackets, 0u);
}

TEST_F(PipelineTest, WithoutPolicyEverythingIpIsForwarded) {
  auto pipeline = makePipeline();
  TcpSession session(OtherIp, 40000, ApiIp, 22);
  const PacketVerdict verdict = send(*pipeline, session.syn(), Start);
  EXPECT_EQ(verdict.action, Action::Forward);
  ASSERT_TRUE(verdict.flow);
  EXPECT_TRUE(verdict.newFlow);
  EXPECT_EQ(pipeline->counters().forwarded, 1u);
}

TEST_F(PipelineTest, MalformedFrameIsDropped) {
  auto pipeline = makePipeline();
  pipeline->setPolicy(compile(*pipeline, apiPolicy("enforce"), 1));
  Bytes bad = udpFrame(WebIp, 35000, ApiIp, 6100);
  bad[14] = 0x44;  // IHL 4
  const PacketVerdict malformed = send(*pipeline, bad, Start);
  EXPECT_EQ(malformed.action, Action::Drop);
  EXPECT_EQ(malformed.reason, DropReason::Malformed);
  EXPECT_FALSE(malformed.flow);

  Bytes truncated = udpFrame(WebIp, 35000, ApiIp, 6100);
  truncated.resize(30);
  const PacketVerdict cut = send(*pipeline, truncated, Start + 1);
  EXPECT_EQ(cut.action, Action::Drop);
  EXPECT_EQ(cut.reason, DropReason::Malformed);

  EXPECT_EQ(dropped(*pipeline, DropReason::Malformed), 2u);
  EXPECT_EQ(pipeline->flows().size(), 0u);
  EXPECT_EQ(pipeline->counters().flowsCreated, 0u);
  EXPECT_EQ(pipeline->counters().packets, 2u);
  EXPECT_EQ(pipeline->counters().forwarded, 0u);
  EXPECT_EQ(resolver_.calls, 0);
}

TEST_F(PipelineTest, NonIpIsForwarded) {
  auto pipeline = makePipeline();
  pipeline->setPolicy(compile(*pipeline, apiPolicy("enforce"), 1));
  const PacketVerdict arp = send(*pipeline, arpFrame(), Start);
  EXPECT_EQ(arp.action, Action::Forward);
  EXPECT_EQ(arp.reason, DropReason::None);
  EXPECT_FALSE(arp.flow);
  EXPECT_EQ(pipeline->counters().nonIp, 1u);
  EXPECT_EQ(pipeline->counters().forwarded, 1u);
  EXPECT_EQ(pipeline->flows().size(), 0u);
}

// A 40-byte UDP datagram from web to api:6100 in two fragments: header + 16 bytes, then 16.
struct FragmentedDatagram {
  Bytes first;
  Bytes later;
};

FragmentedDatagram fragmentedUdp(const char* src, const char* dst, uint16_t id) {
  Bytes firstPart = udpHeader(35000, 6100, 32);
  firstPart.resize(24, 0xAA);
  Ipv4Header first{.src = src, .dst = dst, .protocol = ip_protocol::UDP, .id = id};
  Ipv4Header later = first;
  first.fragmentField = 0x2000;  // MF, offset 0
  later.fragmentField = 3;       // offset 3 * 8 = 24, last
  return {ipv4Frame(first, firstPart), ipv4Frame(later, Bytes(16, 0xBB))};
}

TEST_F(PipelineTest, LaterFragmentWithoutItsFirstIsDropped) {
  auto pipeline = makePipeline();
  pipeline->setPolicy(compile(*pipeline, apiPolicy("enforce"), 1));
  const auto datagram = fragmentedUdp(WebIp, ApiIp, 0x1111);
  const PacketVerdict verdict = send(*pipeline, datagram.later, Start);
  EXPECT_EQ(verdict.action, Action::Drop);
  EXPECT_EQ(verdict.reason, DropReason::FragmentNoFlow);
  EXPECT_FALSE(verdict.flow);
  EXPECT_EQ(dropped(*pipeline, DropReason::FragmentNoFlow), 1u);
  EXPECT_EQ(pipeline->flows().size(), 0u);
}

TEST_F(PipelineTest, LaterFragmentFollowsItsFirstFragmentsFlow) {
  auto pipeline = makePipeline();
  pipeline->setPolicy(compile(*pipeline, apiPolicy("enforce"), 1));
  const auto datagram = fragmentedUdp(WebIp, ApiIp, 0x2222);
  const PacketVerdict first = send(*pipeline, datagram.first, Start);
  ASSERT_EQ(first.action, Action::Forward);
  ASSERT_TRUE(first.flow);
  EXPECT_TRUE(first.newFlow);
  EXPECT_TRUE(first.flow.key().portB == 6100 || first.flow.key().portA == 6100);

  const PacketVerdict later = send(*pipeline, datagram.later, Start + 1);
  EXPECT_EQ(later.action, Action::Forward);
  EXPECT_EQ(later.reason, DropReason::None);
  EXPECT_EQ(later.flow, first.flow);
  EXPECT_FALSE(later.newFlow);
  EXPECT_EQ(first.flow.hot().packets[0], 2u);
  EXPECT_EQ(first.flow.hot().bytes[0], datagram.first.size() + datagram.later.size());
  EXPECT_EQ(pipeline->flows().size(), 1u);
  EXPECT_EQ(dropped(*pipeline, DropReason::FragmentNoFlow), 0u);

  // Another datagram id is not covered by that first fragment.
  const auto otherDatagram = fragmentedUdp(WebIp, ApiIp, 0x2223);
  EXPECT_EQ(send(*pipeline, otherDatagram.later, Start + 2).reason, DropReason::FragmentNoFlow);
}

// A datagram fragmented mid-flow: its first fragment comes on an established flow (the path
// that skips everything an established packet does not need) and must still leave its datagram
// id for the fragments that follow.
TEST_F(PipelineTest, FragmentsOfAnEstablishedFlowFollowIt) {
  auto pipeline = makePipeline();
  pipeline->setPolicy(compile(*pipeline, apiPolicy("enforce"), 1));
  Flow flow;
  for (uint64_t i = 0; i < 40 && !(flow && flow.hot().classified); ++i) {
    const PacketVerdict verdict = send(*pipeline, udpFrame(WebIp, 35000, ApiIp, 6100), Start + i);
    ASSERT_EQ(verdict.action, Action::Forward);
    flow = verdict.flow;
  }
  ASSERT_TRUE(flow && flow.hot().classified) << "classified within nDPI's packet budget";
  const uint64_t before = flow.hot().packets[0];
  const auto datagram = fragmentedUdp(WebIp, ApiIp, 0x4444);
  EXPECT_EQ(send(*pipeline, datagram.first, Start + 100).flow, flow);
  const PacketVerdict later = send(*pipeline, datagram.later, Start + 101);
  EXPECT_EQ(later.action, Action::Forward);
  EXPECT_EQ(later.reason, DropReason::None);
  EXPECT_EQ(later.flow, flow);
  EXPECT_EQ(flow.hot().packets[0], before + 2);
  EXPECT_EQ(dropped(*pipeline, DropReason::FragmentNoFlow), 0u);
}

TEST_F(PipelineTest, LaterFragmentOfADeniedFlowIsDeniedToo) {
  auto pipeline = makePipeline();
  pipeline->setPolicy(compile(*pipeline, apiPolicy("enforce"), 1));
  const auto datagram = fragmentedUdp(OtherIp, ApiIp, 0x3333);
  const PacketVerdict first = send(*pipeline, datagram.first, Start);
  EXPECT_EQ(first.reason, DropReason::PolicyDenied);
  const PacketVerdict later = send(*pipeline, datagram.later, Start + 1);
  EXPECT_EQ(later.action, Action::Drop);
  EXPECT_EQ(later.reason, DropReason::PolicyDenied);
  EXPECT_EQ(later.flow, first.flow);
}

TEST_F(PipelineTest, FullFlowTableDropsNewFlows) {
  PipelineConfig config = smallConfig();
  config.flows.capacity = 8;
  auto pipeline = makePipeline(config);
  pipeline->setPolicy(compile(*pipeline, apiPolicy("enforce"), 1));
  std::vector<Flow> flows;
  for (uint16_t i = 0; i < 8; ++i) {
    const PacketVerdict verdict =
        send(*pipeline, udpFrame(WebIp, static_cast<uint16_t>(30000 + i), ApiIp, 6100), Start);
    ASSERT_EQ(verdict.action, Action::Forward) << i;
    flows.push_back(verdict.flow);
  }
  EXPECT_EQ(pipeline->flows().size(), 8u);
  const PacketVerdict refused = send(*pipeline, udpFrame(WebIp, 31000, ApiIp, 6100), Start + 1);
  EXPECT_EQ(refused.action, Action::Drop);
  EXPECT_EQ(refused.reason, DropReason::FlowTableFull);
  EXPECT_FALSE(refused.flow);
  EXPECT_EQ(dropped(*pipeline, DropReason::FlowTableFull), 1u);
  EXPECT_EQ(pipeline->counters().flowsCreated, 8u);
  // Tracked flows keep working: nothing was evicted to make room.
  const PacketVerdict existing = send(*pipeline, udpFrame(ApiIp, 6100, WebIp, 30003), Start + 2);
  EXPECT_EQ(existing.action, Action::Forward);
  EXPECT_EQ(existing.flow, flows[3]);
}

// flowTableFull: evict-idle. A full table ends its longest-idle flow for a new one -- only one
// idle for a second or more; a table of busy flows still refuses.
TEST_F(PipelineTest, AFullTableThatEvictsEndsTheLongestIdleFlowForANewOne) {
  constexpr uint64_t Ms = 1000000;
  PipelineConfig config = smallConfig();
  config.flows.capacity = 8;
  config.flows.whenFull = dataplane::FullTable::EvictIdle;
  auto pipeline = makePipeline(config);
  pipeline->setPolicy(compile(*pipeline, apiPolicy("enforce"), 1));
  std::vector<uint16_t> ended;
  pipeline->setFlowEndHandler([&](Flow flow) { ended.push_back(flow.initiatorPort()); });
  const auto datagram = [](uint16_t port) { return udpFrame(WebIp, port, ApiIp, 6100); };
  for (uint16_t i = 0; i < 8; ++i) {
    ASSERT_EQ(send(*pipeline, datagram(static_cast<uint16_t>(30000 + i)), Start + i * Ms).action,
              Action::Forward);
  }
  // Every flow was seen within the last second: nothing gives way.
  EXPECT_EQ(send(*pipeline, datagram(31000), Start + 500 * Ms).reason, DropReason::FlowTableFull);
  EXPECT_TRUE(ended.empty());
  // All but the first speak again; the first stays idle.
  for (uint16_t i = 1; i < 8; ++i) {
    send(*pipeline, datagram(static_cast<uint16_t>(30000 + i)), Start + 1500 * Ms);
  }
  const PacketVerdict admitted = send(*pipeline, datagram(31001), Start + 2200 * Ms);
  EXPECT_EQ(admitted.action, Action::Forward);
  ASSERT_TRUE(admitted.flow);
  EXPECT_EQ(ended, std::vector<uint16_t>{30000});  // reported as ended, and only it
  EXPECT_EQ(pipeline->counters().flowsEvicted, 1u);
  EXPECT_EQ(pipeline->flows().size(), 8u);  // never more than the capacity
  // The others are still tracked as they were.
  EXPECT_EQ(
      send(*pipeline, udpFrame(ApiIp, 6100, WebIp, 30003), Start + 2300 * Ms).flow.hot().packets[1],
      1u);
  // The evicted flow speaking again is a new flow, and the table is busy again: refused.
  EXPECT_EQ(send(*pipeline, datagram(30000), Start + 2400 * Ms).reason, DropReason::FlowTableFull);
  EXPECT_EQ(pipeline->counters().flowsEvicted, 1u);
}

TEST_F(PipelineTest, HttpOnAnL7PortIsAllowedOnceClassified) {
  auto pipeline = makePipeline();
  pipeline->setPolicy(compile(*pipeline, apiPolicy("enforce"), 1));
  TcpSession session(WebIp, 41000, ApiIp, 8080);
  const std::vector<Bytes> frames{
      session.syn(),
      session.synAck(),
      session.ack(),
      session.fromClient("GET / HTTP/1.1\r\nHost: api.shop.local\r\n\r\n"),
      session.fromServer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
      session.ack(),
      session.clientFin(),
      session.serverFin(),
      session.ack()};

  const PacketVerdict syn = send(*pipeline, frames[0], Start);
  ASSERT_TRUE(syn.flow);
  Flow flow = syn.flow;
  EXPECT_EQ(syn.action, Action::Forward);
  // Only an l7 rule could allow it: undecided until nDPI knows the protocol.
  EXPECT_FALSE(flow.hot().classified);
  EXPECT_EQ(flow.verdict(pipeline->policy()).decision, rules::Decision::NeedL7);
  for (size_t i = 1; i < frames.size(); ++i) {
    const PacketVerdict verdict = send(*pipeline, frames[i], Start + i * 1000);
    EXPECT_EQ(verdict.action, Action::Forward) << "packet " << i;
    EXPECT_EQ(verdict.flow, flow);
  }
  ASSERT_TRUE(flow.hot().classified);
  const auto http = pipeline->detector().catalog().find("HTTP");
  ASSERT_TRUE(http.has_value());
  EXPECT_TRUE(flow.classification().protocol.app == *http ||
              flow.classification().protocol.master == *http);
  EXPECT_EQ(flow.classification().hostName(), "api.shop.local");
  EXPECT_EQ(flow.verdict(pipeline->policy()).decision, rules::Decision::Allow);
  EXPECT_EQ(pipeline->policy()->ruleName(flow.verdict(pipeline->policy())), "api/ingress/0");
  EXPECT_EQ(dropped(*pipeline, DropReason::PolicyDenied), 0u);
  EXPECT_EQ(pipeline->counters().forwarded, frames.size());
  EXPECT_EQ(pipeline->detector().stats().inUse, 0u);
}

TEST_F(PipelineTest, SshOnTheHttpPortIsDeniedOnceClassified) {
  auto pipeline = makePipeline();
  pipeline->setPolicy(compile(*pipeline, apiPolicy("enforce"), 1));
  TcpSession session(WebIp, 41001, ApiIp, 8080);
  const std::vector<Bytes> frames{session.syn(),
                                  session.synAck(),
                                  session.ack(),
                                  session.fromClient("SSH-2.0-OpenSSH_9.2\r\n"),
                                  session.fromServer("SSH-2.0-OpenSSH_9.2\r\n"),
                                  session.ack(),
                                  session.fromClient(std::string(48, '\x14')),
                                  session.fromServer(std::string(48, '\x14'))};
  Flow flow;
  size_t classifiedAt = frames.size();
  for (size_t i = 0; i < frames.size(); ++i) {
    const PacketVerdict verdict = send(*pipeline, frames[i], Start + i * 1000);
    ASSERT_TRUE(verdict.flow);
    flow = verdict.flow;
    if (flow.hot().classified && classifiedAt == frames.size()) {
      classifiedAt = i;
    }
    if (i < classifiedAt) {
      EXPECT_EQ(verdict.action, Action::Forward) << "packet " << i << " before classification";
      EXPECT_EQ(flow.verdict(pipeline->policy()).decision, rules::Decision::NeedL7);
    } else {
      EXPECT_EQ(verdict.action, Action::Drop) << "packet " << i << " after classification";
      EXPECT_EQ(verdict.reason, DropReason::PolicyDenied);
    }
  }
  ASSERT_LT(classifiedAt, frames.size()) << "SSH was never classified";
  EXPECT_GE(classifiedAt, 3u);  // the handshake carries nothing to classify
  const auto ssh = pipeline->detector().catalog().find("SSH");
  ASSERT_TRUE(ssh.has_value());
  EXPECT_TRUE(flow.classification().protocol.app == *ssh ||
              flow.classification().protocol.master == *ssh);
  EXPECT_EQ(flow.verdict(pipeline->policy()).decision, rules::Decision::Deny);
  EXPECT_TRUE(flow.verdict(pipeline->policy()).enforced);
  EXPECT_EQ(flow.forwardedPackets(), classifiedAt);
  EXPECT_EQ(flow.cold().droppedPackets, frames.size() - classifiedAt);
  EXPECT_EQ(dropped(*pipeline, DropReason::PolicyDenied), frames.size() - classifiedAt);
  EXPECT_EQ(pipeline->counters().flowsCut, 1u) << "its handshake had passed";
  // Counted once, under its protocol.
  const auto& classified = pipeline->counters().classified;
  EXPECT_EQ(std::accumulate(std::begin(classified), std::end(classified), uint64_t{0}), 1u);
  EXPECT_EQ(classified[*ssh], 1u);
}

// nDPI starts an unclassified flow over on a SYN without ACK, and guesses from the port again:
// HTTP to PostgreSQL's port would come out as "PostgreSQL.HTTP" and match a PostgreSQL rule.
// A retransmitted SYN is ordinary; it must not bring the guess back.
TEST_F(PipelineTest, ARepeatedSynDoesNotLetThePortNameTheProtocol) {
  auto pipeline = makePipeline();
  pipeline->setPolicy(compile(*pipeline, R"(apiVersion: bulkhead.io/v1
kind: SegmentationPolicy
metadata: {name: db}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: web}}]
      toPorts: [{ports: [{port: 5432, protocol: TCP}], l7: {protocols: [PostgreSQL]}}]
)",
                              1));
  TcpSession session(WebIp, 41002, ApiIp, 5432);
  const Bytes syn = session.syn();
  const std::vector<Bytes> frames{
      syn, syn, session.synAck(), session.ack(),
      session.fromClient("POST /x HTTP/1.1\r\nHost: exfil.evil.com\r\nContent-Length: 1\r\n\r\nx")};
  PacketVerdict verdict;
  for (size_t i = 0; i < frames.size(); ++i) {
    verdict = send(*pipeline, frames[i], Start + i * 1000);
  }
  ASSERT_TRUE(verdict.flow);
  ASSERT_TRUE(verdict.flow.hot().classified);
  const auto& catalog = pipeline->detector().catalog();
  EXPECT_EQ(catalog.name(verdict.flow.classification().protocol.master), "Unknown");
  EXPECT_EQ(catalog.name(verdict.flow.classification().protocol.app), "HTTP");
  EXPECT_EQ(verdict.action, Action::Drop);
  EXPECT_EQ(verdict.flow.verdict(pipeline->policy()).decision, rules::Decision::Deny);
}

TEST_F(PipelineTest, NewPolicyGenerationReevaluatesExistingFlows) {
  auto pipeline = makePipeline();
  const auto* withPort =
      compile(*pipeline, apiPolicy("enforce", ", {port: 7000, protocol: TCP}"), 1);
  const auto* withoutPort = compile(*pipeline, apiPolicy("enforce"), 2);
  const auto* withPortAgain =
      compile(*pipeline, apiPolicy("enforce", ", {port: 7000, protocol: TCP}"), 3);

  pipeline->setPolicy(withPort);
  TcpSession session(WebIp, 42000, ApiIp, 7000);
  const PacketVerdict syn = send(*pipeline, session.syn(), Start);
  ASSERT_EQ(syn.action, Action::Forward);
  Flow flow = syn.flow;
  ASSERT_TRUE(flow);
  EXPECT_EQ(flow.verdict(pipeline->policy()).generation, 1u);
  EXPECT_EQ(send(*pipeline, session.synAck(), Start + 1).action, Action::Forward);

  pipeline->setPolicy(withoutPort);
  const PacketVerdict ack = send(*pipeline, session.ack(), Start + 2);
  EXPECT_EQ(ack.action, Action::Drop);
  EXPECT_EQ(ack.reason, DropReason::PolicyDenied);
  EXPECT_EQ(ack.flow, flow);
  EXPECT_EQ(flow.verdict(pipeline->policy()).generation, 2u);
  EXPECT_EQ(flow.verdict(pipeline->policy()).decision, rules::Decision::Deny);

  pipeline->setPolicy(withPortAgain);
  const PacketVerdict data = send(*pipeline, session.fromClient("hello"), Start + 3);
  EXPECT_EQ(data.action, Action::Forward);
  EXPECT_EQ(flow.verdict(pipeline->policy()).generation, 3u);
  EXPECT_EQ(flow.verdict(pipeline->policy()).decision, rules::Decision::Allow);
  EXPECT_EQ(pipeline->flows().size(), 1u);
}

TEST_F(PipelineTest, ExpireHandsSettledFlowsToTheFlowEndHandler) {
  auto pipeline = makePipeline();
  pipeline->setPolicy(compile(*pipeline, apiPolicy("enforce"), 1));
  struct Ended {
    dataplane::FlowKey key;
    bool classified;
    dpi::Classification classification;
    rules::Decision decision;
    uint64_t packets;
  };
  std::vector<Ended> ended;
  pipeline->setFlowEndHandler([&](Flow flow) {
    ended.push_back({flow.key(), flow.hot().classified, flow.classification(),
                     flow.verdict(pipeline->policy()).decision, flow.totalPackets()});
  });

  // A half-open connection to the HTTP-only port: still classifying when it goes idle.
  TcpSession session(WebIp, 43000, ApiIp, 8080);
  const PacketVerdict syn = send(*pipeline, session.syn(), Start);
  ASSERT_TRUE(syn.flow);
  const dataplane::FlowKey idleKey = syn.flow.key();
  EXPECT_FALSE(syn.flow.hot().classified);
  EXPECT_EQ(pipeline->detector().stats().inUse, 1u);
  // A UDP flow that keeps talking.
  send(*pipeline, udpFrame(WebIp, 35000, ApiIp, 6100), Start);

  const uint64_t later = Start + 40 * Second;  // past the 30 s handshake timeout, not UDP's 60 s
  send(*pipeline, udpFrame(WebIp, 35000, ApiIp, 6100), later - Second);
  EXPECT_EQ(pipeline->detector().stats().inUse, 2u);  // both still classifying
  EXPECT_EQ(pipeline->expire(later, 100000), 1u);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].key, idleKey);
  EXPECT_EQ(ended[0].packets, 1u);
  // Settled: detection ended with nDPI's guess, which policy never takes as proof of HTTP.
  EXPECT_TRUE(ended[0].classified);
  EXPECT_NE(ended[0].classification.confidence, dpi::Confidence::Dpi);
  EXPECT_EQ(ended[0].classification.policyProtocol().app, 0);
  EXPECT_EQ(ended[0].decision, rules::Decision::Deny);
  EXPECT_EQ(pipeline->counters().flowsExpired, 1u);
  EXPECT_EQ(pipeline->flows().size(), 1u);
  EXPECT_FALSE(pipeline->flows().find(idleKey));
  EXPECT_EQ(pipeline->detector().stats().inUse, 1u);  // the expired flow's state went back

  // The UDP flow goes too once idle for a minute.
  EXPECT_EQ(pipeline->expire(later + 61 * Second, 100000), 1u);
  ASSERT_EQ(ended.size(), 2u);
  EXPECT_TRUE(ended[1].classified);
  EXPECT_EQ(ended[1].decision, rules::Decision::Allow);
  EXPECT_EQ(ended[1].packets, 2u);
  EXPECT_EQ(pipeline->flows().size(), 0u);
  EXPECT_EQ(pipeline->detector().stats().inUse, 0u);
  EXPECT_EQ(pipeline->counters().flowsExpired, 2u);
}

// Learning's source (Pipeline::setJudgedHandler): each flow once, when its verdict is final --
// after detection, or at once for an enforced denial -- and not again when a reload judges it.
TEST_F(PipelineTest, TheJudgedHandlerHearsOfEachFlowOnceItsVerdictIsFinal) {
  auto pipeline = makePipeline();
  pipeline->setPolicy(compile(*pipeline, apiPolicy("enforce"), 1));
  struct Judged {
    uint16_t port;
    bool classified;
    rules::Decision decision;
  };
  std::vector<Judged> judged;
  pipeline->setJudgedHandler([&](Flow flow) {
    judged.push_back(
        {flow.responderPort(), flow.hot().classified, flow.verdict(pipeline->policy()).decision});
  });

  // Denied at its SYN by an enforce-mode policy: final at once, nDPI has nothing to read.
  TcpSession refused(WebIp, 45000, ApiIp, 9999);
  ASSERT_EQ(send(*pipeline, refused.syn(), Start).action, Action::Drop);
  ASSERT_EQ(judged.size(), 1u);
  EXPECT_EQ(judged[0].port, 9999);
  EXPECT_FALSE(judged[0].classified);
  EXPECT_EQ(judged[0].decision, rules::Decision::Deny);
  send(*pipeline, refused.syn(), Start + 1);  // the client tries again: nothing new
  EXPECT_EQ(judged.size(), 1u);

  // HTTP to 8080: undecided until nDPI names it, then judged with what it named.
  TcpSession http(WebIp, 45001, ApiIp, 8080);
  for (const Bytes& frame : {http.syn(), http.synAck(), http.ack()}) {
    send(*pipeline, frame, Start + 2);
  }
  EXPECT_EQ(judged.size(), 1u);
  const PacketVerdict request =
      send(*pipeline, http.fromClient("GET / HTTP/1.1\r\nHost: api.shop.local\r\n\r\n"), Start + 3);
  send(*pipeline, http.fromServer("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), Start + 4);
  ASSERT_TRUE(request.flow.hot().classified);
  ASSERT_EQ(judged.size(), 2u);
  EXPECT_EQ(judged[1].port, 8080);
  EXPECT_TRUE(judged[1].classified);
  EXPECT_EQ(judged[1].decision, rules::Decision::Allow);

  // A reload judges both again; learning has heard of them already.
  pipeline->setPolicy(compile(*pipeline, apiPolicy("monitor"), 2));
  send(*pipeline, http.fromClient("GET /again HTTP/1.1\r\nHost: api.shop.local\r\n\r\n"),
       Start + 5);
  send(*pipeline, refused.syn(), Start + 6);
  EXPECT_EQ(judged.size(), 2u);
}

TEST_F(PipelineTest, FinishDetectionGivesUpOnPendingFlows) {
  auto pipeline = makePipeline();
  pipeline->setPolicy(compile(*pipeline, apiPolicy("enforce"), 1));
  TcpSession pending(WebIp, 44000, ApiIp, 8080);
  TcpSession http(WebIp, 44001, ApiIp, 8080);
  const PacketVerdict first = send(*pipeline, pending.syn(), Start);
  ASSERT_TRUE(first.flow);
  Flow pendingFlow = first.flow;
  Flow httpFlow;
  for (const Bytes& frame : {http.syn(), http.synAck(), http.ack(),
                             http.fromClient("GET / HTTP/1.1\r\nHost: api.shop.local\r\n\r\n")}) {
    httpFlow = send(*pipeline, frame, Start + 1).flow;
  }
  ASSERT_TRUE(httpFlow);
  ASSERT_TRUE(httpFlow.hot().classified);
  const dpi::Classification httpClassification = httpFlow.classification();
  EXPECT_FALSE(pendingFlow.hot().classified);
  EXPECT_EQ(pipeline->detector().stats().inUse, 1u);
  const uint64_t gaveUpBefore = pipeline->detector().stats().gaveUp;

  pipeline->finishDetection();
  EXPECT_TRUE(pendingFlow.hot().classified);
  EXPECT_EQ(pendingFlow.extra(), nullptr);  // no host name: nothing kept beyond its verdict
  EXPECT_EQ(pipeline->detector().stats().inUse, 0u);
  EXPECT_EQ(pipeline->detector().stats().gaveUp, gaveUpBefore + 1);
  EXPECT_EQ(pendingFlow.verdict(pipeline->policy()).decision, rules::Decision::Deny);
  // Classified flows are left as they were; both stay in the table.
  EXPECT_EQ(httpFlow.classification().protocol.app, httpClassification.protocol.app);
  EXPECT_EQ(httpFlow.verdict(pipeline->policy()).decision, rules::Decision::Allow);
  EXPECT_EQ(pipeline->flows().size(), 2u);
  // The settled verdict applies to what follows.
  EXPECT_EQ(send(*pipeline, pending.synAck(), Start + 2).reason, DropReason::PolicyDenied);
}

TEST_F(PipelineTest, ProcessesMbufs) {
  auto pipeline = makePipeline();
  pipeline->setPolicy(compile(*pipeline, apiPolicy("enforce"), 1));
  rte_mempool* pool = dataplane::createPacketPool(uniqueName("mb"), 63, 2048);
  ASSERT_TRUE(pool);
  const auto toMbuf = [&](const Bytes& frame) {
    rte_mbuf* mbuf = rte_pktmbuf_alloc(pool);
    EXPECT_TRUE(mbuf);
    if (mbuf == nullptr) {
      return mbuf;
    }
    char* data = rte_pktmbuf_append(mbuf, static_cast<uint16_t>(frame.size()));
    EXPECT_TRUE(data);
    if (data != nullptr) {
      std::memcpy(data, frame.data(), frame.size());
    }
    return mbuf;
  };

  TcpSession allowed(WebIp, 45000, ApiIp, 5000);
  TcpSession denied(OtherIp, 45001, ApiIp, 5000);
  rte_mbuf* first = toMbuf(allowed.syn());
  rte_mbuf* reply = toMbuf(allowed.synAck());
  rte_mbuf* blocked = toMbuf(denied.syn());
  ASSERT_TRUE(first);
  ASSERT_TRUE(reply);
  ASSERT_TRUE(blocked);

  const dataplane::PacketMeta meta = dataplane::parsePacket(first);
  EXPECT_EQ(meta.status, dataplane::ParseStatus::Ok);
  EXPECT_EQ(meta.srcPort, 45000);
  EXPECT_EQ(meta.dstPort, 5000);

  const PacketVerdict a = pipeline->process(first, Start, Port);
  EXPECT_EQ(a.action, Action::Forward);
  EXPECT_TRUE(a.newFlow);
  ASSERT_TRUE(a.flow);
  const PacketVerdict b = pipeline->process(reply, Start + 1, Port);
  EXPECT_EQ(b.action, Action::Forward);
  EXPECT_EQ(b.flow, a.flow);
  EXPECT_EQ(a.flow.hot().state, dataplane::ConnState::SynReceived);
  const PacketVerdict c = pipeline->process(blocked, Start + 2, Port);
  EXPECT_EQ(c.action, Action::Drop);
  EXPECT_EQ(c.reason, DropReason::PolicyDenied);
  EXPECT_EQ(pipeline->counters().bytes,
            uint64_t{first->data_len} + reply->data_len + blocked->data_len);

  rte_pktmbuf_free(first);
  rte_pktmbuf_free(reply);
  rte_pktmbuf_free(blocked);
  rte_mempool_free(pool);
}

// A TCP flow that closes before nDPI names it will show nothing more: it is judged then, not
// when it expires, so that a denial is reported while it is news.
TEST_F(PipelineTest, AFlowThatClosesUnclassifiedIsJudgedAsItCloses) {
  auto pipeline = makePipeline();
  pipeline->setPolicy(compile(*pipeline, apiPolicy("enforce"), 1));
  TcpSession session(WebIp, 41100, ApiIp, 8080);
  std::string opaque;
  for (int i = 0; i < 40; ++i) {
    opaque.push_back(static_cast<char>(i * 37 + 11));
  }
  const std::vector<Bytes> passing{session.syn(),
                                   session.synAck(),
                                   session.ack(),
                                   session.fromClient(opaque),
                                   session.fromServer(opaque),
                                   session.clientFin()};
  Flow flow;
  for (size_t i = 0; i < passing.size(); ++i) {
    const PacketVerdict verdict = send(*pipeline, passing[i], Start + i);
    EXPECT_EQ(verdict.action, Action::Forward) << "packet " << i;
    flow = verdict.flow;
  }
  ASSERT_TRUE(flow);
  EXPECT_FALSE(flow.hot().classified)
      << pipeline->detector().catalog().name(flow.classification().protocol.app);
  const PacketVerdict last = send(*pipeline, session.serverFin(), Start + 10);
  EXPECT_TRUE(flow.hot().classified);
  EXPECT_EQ(flow.verdict(pipeline->policy()).decision, rules::Decision::Deny);
  EXPECT_EQ(last.action, Action::Drop);
  EXPECT_TRUE(last.cut);
}

// ---- Holding what classification has not decided ----

// Only PostgreSQL from web to api on 5432, and HTTP on 8080 (enforce), or the same in monitor.
std::string heldPolicy(std::string_view mode) {
  std::string yaml = R"(apiVersion: bulkhead.io/v1
kind: SegmentationPolicy
metadata: {name: db}
spec:
  mode: MODE
  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: web}}]
      toPorts:
        - ports: [{port: 5432, protocol: TCP}]
          l7: {protocols: [PostgreSQL]}
        - ports: [{port: 8443, protocol: TCP}]
          l7: {protocols: [TLS]}
)";
  yaml.replace(yaml.find("MODE"), 4, mode);
  return yaml;
}

class HoldingTest : public PipelineTest {
 protected:
  void SetUp() override {
    PipelineTest::SetUp();
    pool_ = dataplane::createPacketPool(uniqueName("hold"), 127, 2048);
    ASSERT_TRUE(pool_);
  }
  void TearDown() override {
    pipeline_.reset();
    rte_mempool_free(pool_);
  }

  Pipeline& pipeline(std::string_view mode = "enforce", PipelineConfig config = smallConfig()) {
    pipeline_ = makePipeline(config);
    pipeline_->setPolicy(compile(*pipeline_, heldPolicy(mode), 1));
    return *pipeline_;
  }

  // Sends a frame as an mbuf towards egress 7; returns the verdict. What the pipeline forwards
  // or releases is recorded in `sent_` (the payload text of each, "" for none), in order.
  PacketVerdict send(const Bytes& frame, uint64_t nowNs) {
    rte_mbuf* mbuf = rte_pktmbuf_alloc(pool_);
    EXPECT_TRUE(mbuf);
    std::memcpy(rte_pktmbuf_append(mbuf, static_cast<uint16_t>(frame.size())), frame.data(),
                frame.size());
    const dataplane::PacketMeta meta = dataplane::parsePacket(mbuf);
    const PacketVerdict verdict = pipeline_->process(mbuf, meta, nowNs, Port, 7);
    drainReleased();
    if (verdict.action == Action::Forward) {
      sent_.push_back(payloadOf(mbuf));
    }
    if (verdict.action != Action::Hold) {
      rte_pktmbuf_free(mbuf);
    }
    return verdict;
  }

  void drainReleased() {
    for (const auto& packet : pipeline_->released()) {
      EXPECT_EQ(packet.egress, 7);
      sent_.push_back(payloadOf(packet.mbuf));
      rte_pktmbuf_free(packet.mbuf);
    }
    pipeline_->released().clear();
  }

  static std::string payloadOf(rte_mbuf* mbuf) {
    const dataplane::PacketMeta meta = dataplane::parsePacket(mbuf);
    return std::string(rte_pktmbuf_mtod(mbuf, const char*) + meta.payloadOffset,
                       meta.payloadLength);
  }

  unsigned mbufsInUse() const { return rte_mempool_in_use_count(pool_); }

  // SYN, SYN-ACK, ACK: all forwarded, the flow still classifying.
  void handshake(TcpSession& session) {
    EXPECT_EQ(send(session.syn(), Start).action, Action::Forward);
    EXPECT_EQ(send(session.synAck(), Start + 1).action, Action::Forward);
    EXPECT_EQ(send(session.ack(), Start + 2).action, Action::Forward);
  }

  static std::string helloStart(const char* name) {
    return testing::asText(testing::tlsClientHello(name)).substr(0, 60);
  }

  rte_mempool* pool_ = nullptr;
  std::unique_ptr<Pipeline> pipeline_;
  std::vector<std::string> sent_;
};

// nDPI names TLS from a whole ClientHello, which a client may split over several segments
// (a large one does not fit one): the first must not reach the server while a later one
// decides against it.
TEST_F(HoldingTest, AnUndecidedSegmentWaitsForTheOneThatDecides) {
  pipeline();
  TcpSession session(WebIp, 42000, ApiIp, 5432);
  handshake(session);
  const std::string hello = testing::asText(testing::tlsClientHello("exfil.evil.test"));
  EXPECT_EQ(send(session.fromClient(hello.substr(0, 60)), Start + 3).action, Action::Hold);
  const PacketVerdict decided = send(session.fromClient(hello.substr(60)), Start + 4);
  EXPECT_EQ(decided.action, Action::Drop);
  EXPECT_TRUE(decided.cut) << "the first drop of a flow that passed its handshake";
  ASSERT_TRUE(decided.flow);
  EXPECT_EQ(pipeline_->detector().catalog().name(decided.flow.classification().protocol.app),
            "TLS");
  EXPECT_EQ(decided.flow.classification().hostName(), "exfil.evil.test");
  // Only the handshake ever left: no byte of the ClientHello.
  EXPECT_EQ(sent_, (std::vector<std::string>{"", "", ""}));
  EXPECT_EQ(decided.flow.cold().droppedPackets, 2u);
  EXPECT_EQ(pipeline_->counters().held, 1u);
  EXPECT_EQ(dropped(*pipeline_, DropReason::PolicyDenied), 2u);
  // The held segment's bytes are dropped bytes too.
  EXPECT_EQ(pipeline_->counters().droppedBytes, session.fromClient(hello.substr(0, 60)).size() +
                                                    session.fromClient(hello.substr(60)).size());
  EXPECT_EQ(mbufsInUse(), 0u) << "the held segment was freed with its flow's verdict";
}

TEST_F(HoldingTest, HeldSegmentsGoFirstWhenTheVerdictAllows) {
  pipeline();
  TcpSession session(WebIp, 42001, ApiIp, 8443);
  handshake(session);
  const std::string hello = testing::asText(testing::tlsClientHello("api.shop.local"));
  EXPECT_EQ(send(session.fromClient(hello.substr(0, 60)), Start + 3).action, Action::Hold);
  const PacketVerdict decided = send(session.fromClient(hello.substr(60)), Start + 4);
  EXPECT_EQ(decided.action, Action::Forward);
  ASSERT_EQ(sent_.size(), 5u);
  EXPECT_EQ(sent_[3], hello.substr(0, 60));
  EXPECT_EQ(sent_[4], hello.substr(60));
  EXPECT_EQ(decided.flow.forwardedPackets(), 5u);
}

// A protocol nDPI only names from the server's answer (PostgreSQL waits for 'N' after the
// client's SSLRequest) would never be classified if the client's bytes stayed held: they go on
// at the hold timeout.
TEST_F(HoldingTest, HeldBytesGoOnAtTheTimeoutSoTheServerCanAnswer) {
  pipeline();
  TcpSession session(WebIp, 42002, ApiIp, 5432);
  handshake(session);
  const std::string sslRequest("\x00\x00\x00\x08\x04\xd2\x16\x2f", 8);
  EXPECT_EQ(send(session.fromClient(sslRequest), Start + 1000).action, Action::Hold);
  const uint64_t timeout = smallConfig().hold.timeoutNs;
  EXPECT_EQ(pipeline_->releaseDue(Start + 1000 + timeout - 1), 0u);
  EXPECT_EQ(pipeline_->releaseDue(Start + 1000 + timeout), 1u);
  drainReleased();
  ASSERT_EQ(sent_.size(), 4u);
  EXPECT_EQ(sent_[3], sslRequest);
  const PacketVerdict answer = send(session.fromServer("N"), Start + 1000 + timeout + 1);
  EXPECT_EQ(answer.action, Action::Forward);
  EXPECT_EQ(pipeline_->detector().catalog().name(answer.flow.classification().protocol.app),
            "PostgreSQL");
  EXPECT_EQ(pipeline_->counters().heldReleasedLate, 1u);
}

TEST_F(HoldingTest, NothingIsHeldInMonitorMode) {
  pipeline("monitor");
  TcpSession session(WebIp, 42003, ApiIp, 5432);
  handshake(session);
  const std::string part = helloStart("a.test");
  EXPECT_EQ(send(session.fromClient(part), Start + 3).action, Action::Forward);
  EXPECT_EQ(pipeline_->counters().held, 0u);
}

TEST_F(HoldingTest, AFullQueuePassesThePacketAndCountsIt) {
  PipelineConfig config = smallConfig();
  config.hold.packets = 1;
  pipeline("enforce", config);
  TcpSession first(WebIp, 42004, ApiIp, 5432);
  TcpSession second(WebIp, 42005, ApiIp, 5432);
  handshake(first);
  handshake(second);
  const std::string part = helloStart("a.test");
  EXPECT_EQ(send(first.fromClient(part), Start + 3).action, Action::Hold);
  EXPECT_EQ(send(second.fromClient(part), Start + 4).action, Action::Forward);
  EXPECT_EQ(pipeline_->counters().holdFull, 1u);
}

TEST_F(HoldingTest, AFlowThatGoesAwayTakesItsHeldPacketsWithIt) {
  pipeline();
  TcpSession session(WebIp, 42006, ApiIp, 5432);
  handshake(session);
  const std::string part = helloStart("a.test");
  EXPECT_EQ(send(session.fromClient(part), Start + 3).action, Action::Hold);
  EXPECT_EQ(mbufsInUse(), 1u);
  pipeline_->forget([](Flow) { return true; });
  EXPECT_EQ(mbufsInUse(), 0u);
  EXPECT_TRUE(pipeline_->released().empty());
}

TEST_F(PipelineTest, DetectionBudgetBoundsUnclassifiableFlows) {
  PipelineConfig config = smallConfig();
  config.dpi.packetBudget = 4;
  auto pipeline = makePipeline(config);
  pipeline->setPolicy(compile(*pipeline, apiPolicy("enforce"), 1));
  std::mt19937 random(99);
  Flow flow;
  for (int i = 0; i < 6; ++i) {
    Bytes noise(64);
    for (auto& byte : noise) {
      byte = static_cast<uint8_t>(random());
    }
    const PacketVerdict verdict =
        send(*pipeline, udpFrame(WebIp, 36000, ApiIp, 6100, noise), Start + i);
    EXPECT_EQ(verdict.action, Action::Forward);
    flow = verdict.flow;
    ASSERT_TRUE(flow);
    EXPECT_EQ(flow.hot().classified, i >= 3) << "packet " << i;
  }
  EXPECT_EQ(flow.cold().dpiPackets, 4);
  EXPECT_EQ(pipeline->detector().stats().inUse, 0u);
}

TEST(PipelineNames, DropReasons) {
  EXPECT_STREQ(dataplane::toString(DropReason::None), "none");
  EXPECT_STREQ(dataplane::toString(DropReason::Malformed), "malformed");
  EXPECT_STREQ(dataplane::toString(DropReason::FragmentNoFlow), "fragment-without-flow");
  EXPECT_STREQ(dataplane::toString(DropReason::FlowTableFull), "flow-table-full");
  EXPECT_STREQ(dataplane::toString(DropReason::PolicyDenied), "policy-denied");
}

}  // namespace
}  // namespace bulkhead

namespace bulkhead {
namespace {

TEST_F(PipelineTest, OneEndpointFillsItsShareOfTheTableNotTheTable) {
  PipelineConfig config = smallConfig();
  config.maxFlowsPerEndpoint = 10;
  auto pipeline = makePipeline(config);
  pipeline->setPolicy(compile(*pipeline, apiPolicy("enforce"), 1));
  uint64_t now = 1000000000ull;
  // web opens flows as fast as it can: 10 are tracked, the rest refused at their first packet.
  int refused = 0;
  for (uint16_t port = 20000; port < 20050; ++port) {
    const auto verdict = send(*pipeline, udpFrame(WebIp, port, ApiIp, 6100), now += 1000);
    refused += verdict.reason == DropReason::EndpointFlowLimit ? 1 : 0;
  }
  EXPECT_EQ(refused, 40);
  EXPECT_EQ(dropped(*pipeline, DropReason::EndpointFlowLimit), 40u);
  // A flow web already has goes on, and everyone else still starts theirs.
  EXPECT_EQ(send(*pipeline, udpFrame(WebIp, 20000, ApiIp, 6100), now += 1000).action,
            Action::Forward);
  EXPECT_NE(send(*pipeline, udpFrame(OtherIp, 30000, ApiIp, 6100), now += 1000).reason,
            DropReason::EndpointFlowLimit);
  EXPECT_NE(send(*pipeline, udpFrame(ApiIp, 30001, WebIp, 53), now += 1000).reason,
            DropReason::EndpointFlowLimit);
  // Replies count for the initiator, not for the endpoint that answers.
  EXPECT_EQ(send(*pipeline, udpFrame(ApiIp, 6100, WebIp, 20001), now += 1000).action,
            Action::Forward);
  // Once web's flows have ended, it may open new ones again.
  pipeline->expire(now + 3600ull * 1000000000ull, SIZE_MAX);
  EXPECT_NE(
      send(*pipeline, udpFrame(WebIp, 20049, ApiIp, 6100), now + 3601ull * 1000000000ull).reason,
      DropReason::EndpointFlowLimit);
}

}  // namespace
}  // namespace bulkhead
