// The whole per-packet path a container's frames take: parse, flow table, conntrack, nDPI,
// verdict, hold queue. The input is a sequence of frames, each a 2-byte big-endian length and
// that many bytes, 1 ms apart, between three endpoints under the example policies (and the world
// beyond them). One pipeline lives across inputs, as in the agent; each input starts a day after
// the last, so the flows of the one before have expired.
#include <rte_mbuf.h>

#include <rte_mempool.h>

#include <cstring>
#include <memory>

#include "dataplane/address_resolver.h"
#include "dataplane/eal.h"
#include "dataplane/packet_parser.h"
#include "dataplane/pipeline.h"
#include "dpi/protocol_catalog.h"
#include "rules/policy_compiler.h"
#include "rules/policy_loader.h"

namespace {

using namespace bulkhead;

constexpr uint64_t Day = 86400ull * 1000000000ull;
constexpr unsigned MaxFrame = UINT16_MAX - RTE_PKTMBUF_HEADROOM;

struct Fixture {
  std::vector<dataplane::Endpoint> endpoints;
  std::unique_ptr<dataplane::AddressResolver> resolver;
  std::unique_ptr<dataplane::Pipeline> pipeline;
  rules::PolicySnapshotPtr policy;
  rte_mempool* pool = nullptr;
  uint64_t nowNs = Day;
};

Fixture& fixture() {
  static Fixture* made = [] {
    dataplane::initEal(dataplane::offlineEalArguments(256));
    auto* f = new Fixture;
    const auto endpoint = [](const char* name, const char* app, const char* ip) {
      dataplane::Endpoint e;
      e.name = name;
      e.labels = {{"app", app}};
      e.ips = {*rules::IpAddress::parse(ip)};
      return e;
    };
    f->endpoints = {endpoint("web", "web", "10.10.0.10"), endpoint("api", "api", "10.10.0.11"),
                    endpoint("db", "db", "10.10.0.12")};
    rules::IdentityList identities;
    for (size_t i = 0; i < f->endpoints.size(); ++i) {
      f->endpoints[i].identity = static_cast<rules::IdentityId>(256 + i);
      identities.push_back({f->endpoints[i].identity, f->endpoints[i].labels});
    }
    f->resolver = std::make_unique<dataplane::AddressResolver>(
        f->endpoints, std::vector<rules::IpAddress>{}, std::vector<dataplane::MacAddress>{});
    dataplane::PipelineConfig config;
    // Small enough that inputs fill it, with eviction on and a short idle bar (inputs are 1 ms
    // a packet): a new flow meets both outcomes of a full table, an eviction and a refusal.
    config.flows.capacity = 64;
    config.flows.whenFull = dataplane::FullTable::EvictIdle;
    config.flows.evictMinIdleNs = 10 * 1000000ull;
    f->pipeline = std::make_unique<dataplane::Pipeline>(config, *f->resolver);
    const auto loaded = rules::loadPolicies({BULKHEAD_SOURCE_DIR "/examples/policies"},
                                            f->pipeline->detector().catalog());
    if (!loaded.ok()) {
      __builtin_trap();
    }
    f->policy = rules::compilePolicy(loaded.set, identities, f->pipeline->detector().catalog(), 1);
    f->pipeline->setPolicy(f->policy.get());
    f->pool = dataplane::createPacketPool("fuzz_pool", 1023, MaxFrame);
    return f;
  }();
  return *made;
}

void freeReleased(dataplane::Pipeline& pipeline) {
  for (const auto& packet : pipeline.released()) {
    rte_pktmbuf_free(packet.mbuf);
  }
  pipeline.released().clear();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Fixture& f = fixture();
  dataplane::Pipeline& pipeline = *f.pipeline;
  const unsigned available = rte_mempool_avail_count(f.pool);
  // Two simulated days per input overflow 64 bits of nanoseconds after ~100,000 inputs; a
  // clock that wraps makes flows look newer than now, and they never expire. The table is empty
  // here (checked at the end of every input), so starting the clock over is safe.
  if (f.nowNs > (uint64_t{1} << 62)) {
    f.nowNs = Day;
  }
  f.nowNs += Day;
  pipeline.expire(f.nowNs, 4 * 4096);
  freeReleased(pipeline);
  while (size >= 2) {
    const size_t length = std::min<size_t>((size_t(data[0]) << 8) | data[1], size - 2);
    const uint8_t* frame = data + 2;
    data += 2 + length;
    size -= 2 + length;
    f.nowNs += 1000000;
    pipeline.releaseDue(f.nowNs);
    freeReleased(pipeline);
    rte_mbuf* mbuf = rte_pktmbuf_alloc(f.pool);
    if (mbuf == nullptr) {
      __builtin_trap();  // held packets leak, or the hold queue lets more in than it may
    }
    // A frame arrives in one mbuf, so never longer than its room.
    const size_t received = std::min<size_t>(length, rte_pktmbuf_tailroom(mbuf));
    if (received > 0) {
      std::memcpy(rte_pktmbuf_append(mbuf, static_cast<uint16_t>(received)), frame, received);
    }
    const auto meta = dataplane::parsePacket(rte_pktmbuf_mtod(mbuf, const uint8_t*),
                                             static_cast<uint32_t>(received));
    const auto verdict = pipeline.process(mbuf, meta, f.nowNs, 0, 0);
    freeReleased(pipeline);
    if (verdict.action != dataplane::Action::Hold) {
      rte_pktmbuf_free(mbuf);
    }
  }
  // Whatever is still held goes with its flow when the capture ends.
  pipeline.finishDetection();
  freeReleased(pipeline);
  f.nowNs += Day;
  // Every slot, however large the table's key space is: until a whole pass removes nothing.
  while (pipeline.expire(f.nowNs, 65536) > 0) {
  }
  freeReleased(pipeline);
  if (pipeline.flows().size() != 0) {
    __builtin_trap();  // a flow that outlives every timeout: it would hold its slot forever
  }
  if (rte_mempool_avail_count(f.pool) != available) {
    __builtin_trap();  // a packet held and never given back, or given back twice
  }
  return 0;
}
