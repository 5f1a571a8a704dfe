// Reloads: a generated policy of RULES rules over IDENTITIES identities, parsed and validated
// (the YAML loader) and compiled into a snapshot (the compiler), as a reload does before the
// atomic swap. Generated like a real segmentation: one policy per workload, each admitting ten
// peers on ports of their own, every tenth rule by team rather than by app and with an L7
// protocol. /100/50 is the size Cilium reports 17 ms for (docs.cilium.io, "policy
// implementation"); /10000/1000 is issue #11's target (< 50 ms). Run: build/bench/policy_bench
#include <benchmark/benchmark.h>

#include <string>

#include "dpi/protocol_catalog.h"
#include "rules/policy_compiler.h"
#include "rules/policy_loader.h"

namespace bulkhead {
namespace {

constexpr int RulesPerPolicy = 10;
constexpr int Teams = 20;

std::string generatedPolicy(int rules, int identities) {
  std::string text;
  const int policies = std::max(1, rules / RulesPerPolicy);
  for (int p = 0; p < policies; ++p) {
    text += "---\napiVersion: bulkhead.io/v1\nkind: SegmentationPolicy\nmetadata: {name: svc" +
            std::to_string(p) + "}\nspec:\n  endpointSelector: {matchLabels: {app: svc" +
            std::to_string(p % identities) + "}}\n  ingress:\n";
    for (int k = 0; k < RulesPerPolicy; ++k) {
      const std::string port = std::to_string(8000 + k);
      if (k == 0) {
        text += "    - fromEndpoints: [{matchLabels: {team: t" + std::to_string(p % Teams) +
                "}}]\n      toPorts: [{ports: [{port: " + port +
                ", protocol: TCP}], l7: {protocols: [HTTP]}}]\n";
      } else {
        text += "    - fromEndpoints: [{matchLabels: {app: svc" +
                std::to_string((p + k) % identities) +
                "}}]\n      toPorts: [{ports: [{port: " + port + ", protocol: TCP}]}]\n";
      }
    }
  }
  return text;
}

rules::IdentityList generatedIdentities(int count) {
  rules::IdentityList out;
  for (int i = 0; i < count; ++i) {
    out.push_back({static_cast<rules::IdentityId>(256 + i),
                   {{"app", "svc" + std::to_string(i)},
                    {"team", "t" + std::to_string(i % Teams)},
                    {"bulkhead.io/name", "c" + std::to_string(i)}}});
  }
  return out;
}

void BM_PolicyLoad(benchmark::State& state) {
  const dpi::NdpiProtocolCatalog catalog;
  const std::string text =
      generatedPolicy(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  for (auto _ : state) {
    const auto loaded = rules::loadPolicyText(text, "bench.yaml", catalog);
    if (!loaded.errors.empty()) {
      state.SkipWithError(rules::format(loaded.errors.front()).c_str());
      return;
    }
    benchmark::DoNotOptimize(loaded.set.policies.size());
  }
}
BENCHMARK(BM_PolicyLoad)->Args({100, 50})->Args({10000, 1000})->Unit(benchmark::kMillisecond);

void BM_PolicyCompile(benchmark::State& state) {
  const dpi::NdpiProtocolCatalog catalog;
  const auto loaded = rules::loadPolicyText(
      generatedPolicy(static_cast<int>(state.range(0)), static_cast<int>(state.range(1))),
      "bench.yaml", catalog);
  if (!loaded.errors.empty()) {
    state.SkipWithError(rules::format(loaded.errors.front()).c_str());
    return;
  }
  const auto identities = generatedIdentities(static_cast<int>(state.range(1)));
  uint64_t generation = 0;
  size_t compiledRules = 0;
  for (auto _ : state) {
    const auto snapshot = rules::compilePolicy(loaded.set, identities, catalog, ++generation);
    compiledRules = snapshot->compiledRuleCount();
    benchmark::DoNotOptimize(snapshot.get());
  }
  state.counters["rules"] = static_cast<double>(compiledRules);
}
BENCHMARK(BM_PolicyCompile)->Args({100, 50})->Args({10000, 1000})->Unit(benchmark::kMillisecond);

// The baseline: one pass of every rule's peer selector (and every policy's endpoint selector)
// over every identity -- what compiling without an index costs at the least.
void BM_BaselineSelectorsOverIdentities(benchmark::State& state) {
  const dpi::NdpiProtocolCatalog catalog;
  const auto loaded = rules::loadPolicyText(
      generatedPolicy(static_cast<int>(state.range(0)), static_cast<int>(state.range(1))),
      "bench.yaml", catalog);
  const auto identities = generatedIdentities(static_cast<int>(state.range(1)));
  std::vector<const rules::EndpointSelector*> selectors;
  for (const auto& policy : loaded.set.policies) {
    selectors.push_back(&policy.endpointSelector);
    if (!policy.ingress) {
      continue;
    }
    for (const auto& rule : *policy.ingress) {
      for (const auto& selector : rule.endpoints) {
        selectors.push_back(&selector);
      }
    }
  }
  for (auto _ : state) {
    size_t matched = 0;
    for (const auto* selector : selectors) {
      for (const auto& identity : identities) {
        matched += selector->matches(identity.labels) ? 1 : 0;
      }
    }
    benchmark::DoNotOptimize(matched);
  }
}
BENCHMARK(BM_BaselineSelectorsOverIdentities)
    ->Args({100, 50})
    ->Args({10000, 1000})
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace bulkhead

BENCHMARK_MAIN();
