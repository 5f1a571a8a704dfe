// The per-packet pipeline on synthetic traffic, through mbufs, as a worker would run it.
// Established flows: the cost every packet of a classified flow pays (parse, flow lookup, cached
// verdict). New flows: the cost of a flow's first packet (insert, endpoint resolution, nDPI's
// first look, policy lookup). Run: build/bench/pipeline_bench
#include <benchmark/benchmark.h>
#include <rte_mbuf.h>

#include <cstring>
#include <vector>

#include "dataplane/eal.h"
#include "dataplane/packet_parser.h"
#include "dataplane/pipeline.h"
#include "dpi/protocol_catalog.h"
#include "rules/policy_compiler.h"
#include "rules/policy_loader.h"

namespace bulkhead {
namespace {

constexpr const char* Policy = R"(
apiVersion: bulkhead.io/v1
kind: SegmentationPolicy
metadata: {name: api}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: web}}]
      toPorts: [{ports: [{port: 53, protocol: UDP}]}]
)";

// Sources 10.1.x.y are "web", the destination 10.2.0.1 is "api".
class SubnetResolver final : public dataplane::EndpointResolver {
 public:
  dataplane::ResolvedFlow resolve(const dataplane::PacketMeta& meta, uint16_t) const override {
    const auto identityOf = [](const rules::IpAddress& ip) {
      return ip.bytes[1] == 1 ? rules::IdentityId{256} : rules::IdentityId{257};
    };
    return {{identityOf(meta.srcIp), 0}, {identityOf(meta.dstIp), 1}};
  }
};

// A DNS query for www.example.com from 10.1.(n>>8).(n&255):(1024+n%50000) to 10.2.0.1:53.
std::vector<uint8_t> dnsQuery(uint32_t n) {
  static const uint8_t payload[] = {0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
                                    0x00, 0x00, 0x03, 'w',  'w',  'w',  0x07, 'e',  'x',  'a',
                                    'm',  'p',  'l',  'e',  0x03, 'c',  'o',  'm',  0x00, 0x00,
                                    0x01, 0x00, 0x01};
  std::vector<uint8_t> frame(14 + 20 + 8 + sizeof(payload), 0);
  frame[0] = 0x02;
  frame[6] = 0x02;
  frame[12] = 0x08;
  uint8_t* ip = frame.data() + 14;
  ip[0] = 0x45;
  const uint16_t total = static_cast<uint16_t>(20 + 8 + sizeof(payload));
  ip[2] = total >> 8;
  ip[3] = total & 0xFF;
  ip[8] = 64;
  ip[9] = 17;
  const uint8_t src[4] = {10, 1, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
  const uint8_t dst[4] = {10, 2, 0, 1};
  std::memcpy(ip + 12, src, 4);
  std::memcpy(ip + 16, dst, 4);
  uint8_t* udp = ip + 20;
  const uint16_t sport = static_cast<uint16_t>(1024 + (n >> 16) * 7 + 1);
  udp[0] = sport >> 8;
  udp[1] = sport & 0xFF;
  udp[3] = 53;
  udp[5] = static_cast<uint8_t>(8 + sizeof(payload));
  std::memcpy(udp + 8, payload, sizeof(payload));
  return frame;
}

struct Fixture {
  SubnetResolver resolver;
  rules::PolicySnapshotPtr snapshot;
  rte_mempool* pool = nullptr;

  Fixture() {
    static unsigned id = 0;
    pool = dataplane::createPacketPool("bench_pool" + std::to_string(id++), 4095, 2048);
    const dpi::NdpiProtocolCatalog catalog;
    const auto loaded = rules::loadPolicyText(Policy, "bench.yaml", catalog);
    snapshot = rules::compilePolicy(loaded.set, {{256, {{"app", "web"}}}, {257, {{"app", "api"}}}},
                                    catalog, 1);
  }
  ~Fixture() { rte_mempool_free(pool); }

  std::vector<rte_mbuf*> mbufs(uint32_t count, uint32_t first) {
    std::vector<rte_mbuf*> out;
    for (uint32_t i = 0; i < count; ++i) {
      const auto frame = dnsQuery(first + i);
      rte_mbuf* mbuf = rte_pktmbuf_alloc(pool);
      std::memcpy(rte_pktmbuf_append(mbuf, static_cast<uint16_t>(frame.size())), frame.data(),
                  frame.size());
      out.push_back(mbuf);
    }
    return out;
  }
};

void BM_EstablishedFlows(benchmark::State& state) {
  Fixture fixture;
  const auto flows = static_cast<uint32_t>(state.range(0));
  dataplane::PipelineConfig config;
  config.flows.capacity = flows * 2;
  dataplane::Pipeline pipeline(config, fixture.resolver);
  pipeline.setPolicy(fixture.snapshot.get());
  auto mbufs = fixture.mbufs(flows, 0);
  for (auto* mbuf : mbufs) {
    pipeline.process(mbuf, 1, 0);  // creates and classifies (DNS: first packet) every flow
  }
  // As a worker runs them: a burst parsed and looked ahead, then each packet processed.
  constexpr size_t Burst = 32;
  const auto burst = static_cast<size_t>(state.range(1));
  // The flows' packets in rounds, padded to whole bursts: no division per packet.
  std::vector<rte_mbuf*> order;
  for (size_t i = 0; i < (mbufs.size() + Burst - 1) / Burst * Burst; ++i) {
    order.push_back(mbufs[i % mbufs.size()]);
  }
  uint64_t now = 2;
  size_t next = 0;
  dataplane::PacketMeta metas[Burst];
  dataplane::FlowLookahead ahead[Burst];
  for (auto _ : state) {
    rte_mbuf** packets = order.data() + next;
    for (size_t i = 0; i < burst; ++i) {
      // Made in place, as the worker does: a copy would wait on the parser's narrow stores.
      new (&metas[i]) dataplane::PacketMeta(dataplane::parsePacket(
          rte_pktmbuf_mtod(packets[i], const uint8_t*), packets[i]->data_len));
      pipeline.lookAhead(metas[i], ahead[i]);
    }
    for (size_t i = 0; i < burst; ++i) {
      pipeline.prefetchFlow(ahead[i]);
    }
    for (size_t i = 0; i < burst; ++i) {
      benchmark::DoNotOptimize(pipeline.process(packets[i], metas[i], ahead[i], now++, 0, 0));
    }
    next += burst;
    next = next == order.size() ? 0 : next;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * burst));
  state.counters["dropped"] = static_cast<double>(pipeline.counters().dropped[4]);
  for (auto* mbuf : mbufs) {
    rte_pktmbuf_free(mbuf);
  }
}
// {flows, packets per burst}: 32 is a full rx burst, 1 a trickle (no lookahead to overlap).
BENCHMARK(BM_EstablishedFlows)
    ->ArgNames({"flows", "burst"})
    ->Args({64, 32})
    ->Args({4000, 32})
    ->Args({4000, 1});

void BM_NewFlows(benchmark::State& state) {
  Fixture fixture;
  constexpr uint32_t Batch = 4000;
  dataplane::PipelineConfig config;
  config.flows.capacity = 1 << 20;
  uint32_t first = 0;
  std::unique_ptr<dataplane::Pipeline> pipeline;
  std::vector<rte_mbuf*> mbufs;
  size_t next = Batch;
  for (auto _ : state) {
    if (next == Batch) {
      state.PauseTiming();
      for (auto* mbuf : mbufs) {
        rte_pktmbuf_free(mbuf);
      }
      if (!pipeline || pipeline->flows().size() + Batch > config.flows.capacity) {
        pipeline.reset();
        pipeline = std::make_unique<dataplane::Pipeline>(config, fixture.resolver);
        pipeline->setPolicy(fixture.snapshot.get());
      }
      mbufs = fixture.mbufs(Batch, first);
      first += Batch;
      next = 0;
      state.ResumeTiming();
    }
    benchmark::DoNotOptimize(pipeline->process(mbufs[next++], 1, 0));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  for (auto* mbuf : mbufs) {
    rte_pktmbuf_free(mbuf);
  }
}
BENCHMARK(BM_NewFlows);

// Baselines measured in the same run, for the ratios scripts/bench/pipeline.sh prints:
// nDPI alone on a flow's first packet (what any DPI-based tool pays per new flow), and the
// parser alone (what any L4-aware forwarder pays per packet).
void BM_BaselineNdpiFirstPacket(benchmark::State& state) {
  // The packets as BM_NewFlows reads them: 4000 frames in mbufs, so both pay the same misses on
  // the frame's bytes.
  Fixture fixture;
  dpi::Detector detector;
  auto mbufs = fixture.mbufs(4000, 0);
  size_t next = 0;
  dpi::Classification out;
  for (auto _ : state) {
    const rte_mbuf* mbuf = mbufs[next];
    next = next + 1 == mbufs.size() ? 0 : next + 1;
    dpi::DpiFlowState flow;
    detector.process(flow, rte_pktmbuf_mtod(mbuf, const uint8_t*) + 14,
                     static_cast<uint16_t>(mbuf->data_len - 14), 1, out);
    detector.release(flow);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  for (auto* mbuf : mbufs) {
    rte_pktmbuf_free(mbuf);
  }
}
BENCHMARK(BM_BaselineNdpiFirstPacket);

void BM_BaselineParseOnly(benchmark::State& state) {
  const auto frame = dnsQuery(7);
  for (auto _ : state) {
    benchmark::DoNotOptimize(dataplane::parsePacket(frame.data(), static_cast<uint32_t>(frame.size())));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_BaselineParseOnly);

void BM_PolicyVerdict(benchmark::State& state) {
  Fixture fixture;
  rules::FlowQuery query;
  query.src = 256;
  query.dst = 257;
  query.ipProtocol = 17;
  query.dstPort = 53;
  for (auto _ : state) {
    benchmark::DoNotOptimize(fixture.snapshot->verdict(query));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_PolicyVerdict);

}  // namespace
}  // namespace bulkhead

int main(int argc, char** argv) {
  bulkhead::dataplane::initEal(bulkhead::dataplane::offlineEalArguments(1024));
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
