// The ported conformance suites (tests/conformance/README.md): each case's documents, judged by
// the real `bulkhead simulate` over a generated capture holding one flow per probed pair, must
// give the verdicts upstream expects. One test per case; the counts per suite are checked too,
// so that a case cannot silently stop being run.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "dataplane/pcap_writer.h"
#include "tests/support/frames.h"
#include "tests/support/paths.h"
#include "tests/support/run_command.h"
#include "tests/support/temp_dir.h"

namespace bulkhead {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string suiteDir(const std::string& suite) {
  return testing::sourceDir() + "/tests/conformance/" + suite;
}

struct Pod {
  std::string id;  // "namespace/pod", as the cases name it
  std::string ip;
};

// base.yaml as an endpoints file for simulate: one endpoint per pod, its namespace as the
// compose project (bulkhead.io/namespace), the namespaces' labels under `namespaces:`, the
// ports its containers name as port.bulkhead.io/<name> labels.
struct Cluster {
  std::vector<Pod> pods;
  std::string endpointsYaml;

  const Pod* find(const std::string& id) const {
    for (const auto& pod : pods) {
      if (pod.id == id) {
        return &pod;
      }
    }
    return nullptr;
  }
};

std::string flowStyle(const YAML::Node& node) {
  YAML::Emitter out;
  out.SetMapFormat(YAML::Flow);
  out.SetSeqFormat(YAML::Flow);
  out << node;
  return out.c_str();
}

// `extra`: a case's `labels: {namespaces: {ns: {k: v}}, pods: {ns/pod: {k: v}}}`, added to the
// base's.
Cluster loadCluster(const std::string& suite, const YAML::Node& extra) {
  const YAML::Node base = YAML::LoadFile(suiteDir(suite) + "/base.yaml");
  const auto added = [&](const char* kind, const std::string& id, YAML::Node labels) {
    if (extra && extra[kind] && extra[kind][id]) {
      for (const auto& label : extra[kind][id]) {
        labels[label.first.as<std::string>()] = label.second.as<std::string>();
      }
    }
    return labels;
  };
  Cluster cluster;
  std::string yaml = "namespaces:\n";
  for (const auto& ns : base["namespaces"]) {
    const std::string name = ns["name"].as<std::string>();
    yaml += "  " + name + ": " +
            flowStyle(
                added("namespaces", name,
                      ns["labels"] ? YAML::Clone(ns["labels"]) : YAML::Node(YAML::NodeType::Map))) +
            "\n";
  }
  yaml += "endpoints:\n";
  for (const auto& pod : base["pods"]) {
    const std::string ns = pod["namespace"].as<std::string>();
    const std::string name = pod["name"].as<std::string>();
    YAML::Node labels =
        added("pods", ns + "/" + name,
              pod["labels"] ? YAML::Clone(pod["labels"]) : YAML::Node(YAML::NodeType::Map));
    labels["com.docker.compose.project"] = ns;
    for (const auto& named : base["portNames"]) {  // the convention for named ports
      labels["port.bulkhead.io/" + named.first.as<std::string>()] = named.second.as<std::string>();
    }
    cluster.pods.push_back({ns + "/" + name, pod["ip"].as<std::string>()});
    yaml += "  - {name: " + ns + "." + name + ", ips: [" + pod["ip"].as<std::string>() +
            "], labels: " + flowStyle(labels) + "}\n";
  }
  cluster.endpointsYaml = yaml;
  return cluster;
}

struct Expectation {
  std::string pair;  // "from -> to"
  bool allowed = false;
};

struct Probe {
  std::string protocol;
  uint16_t port = 0;
  std::vector<Expectation> pairs;
};

std::pair<std::string, std::string> split(const std::string& pair) {
  const size_t arrow = pair.find(" -> ");
  return {pair.substr(0, arrow), pair.substr(arrow + 4)};
}

// The probes of a case, with `others: allowed|denied` expanded to every other ordered pair.
std::vector<Probe> probesOf(const YAML::Node& node, const Cluster& cluster) {
  std::vector<Probe> probes;
  for (const auto& entry : node) {
    Probe probe;
    probe.protocol = entry["protocol"].as<std::string>();
    probe.port = entry["port"].as<uint16_t>();
    std::set<std::string> listed;
    for (const char* key : {"allowed", "denied"}) {
      if (entry[key]) {
        for (const auto& pair : entry[key]) {
          probe.pairs.push_back({pair.as<std::string>(), std::string(key) == "allowed"});
          listed.insert(pair.as<std::string>());
        }
      }
    }
    const std::string others = entry["others"] ? entry["others"].as<std::string>() : "unchecked";
    if (others != "unchecked") {
      for (const auto& from : cluster.pods) {
        for (const auto& to : cluster.pods) {
          const std::string pair = from.id + " -> " + to.id;
          if (from.id != to.id && !listed.contains(pair)) {
            probe.pairs.push_back({pair, others == "allowed"});
          }
        }
      }
    }
    probes.push_back(std::move(probe));
  }
  return probes;
}

struct CaseParam {
  std::string suite;
  std::string file;
};

std::vector<CaseParam> casesOf(const std::string& suite) {
  std::vector<CaseParam> out;
  for (const auto& entry : fs::directory_iterator(suiteDir(suite))) {
    const std::string name = entry.path().filename().string();
    if (name != "base.yaml" && entry.path().extension() == ".yaml") {
      out.push_back({suite, name});
    }
  }
  std::sort(out.begin(), out.end(),
            [](const CaseParam& a, const CaseParam& b) { return a.file < b.file; });
  return out;
}

class ConformanceCase : public ::testing::TestWithParam<CaseParam> {};

TEST_P(ConformanceCase, SimulateGivesUpstreamsVerdicts) {
  const auto& param = GetParam();
  const YAML::Node doc = YAML::LoadFile(suiteDir(param.suite) + "/" + param.file);
  SCOPED_TRACE(doc["name"].as<std::string>() + " (" + doc["source"].as<std::string>() + ")");
  if (!doc["applies"].as<bool>()) {
    GTEST_SKIP() << "does not apply on a container host: " << doc["why"].as<std::string>();
  }
  const Cluster cluster = loadCluster(param.suite, doc["labels"]);
  testing::TempDir dir;
  const std::string policy = dir.write("policy.yaml", doc["policies"].as<std::string>());
  const std::string endpoints = dir.write("endpoints.yaml", cluster.endpointsYaml);

  // One flow per probed pair, each from its own client port: a TCP SYN, a UDP datagram or an
  // SCTP INIT -- the first packet, on which an L3/L4 policy decides.
  const auto probes = probesOf(doc["probes"], cluster);
  std::map<std::string, const Expectation*> byFlow;  // "l4 srcIp:sport dstIp:dport"
  std::string error;
  auto writer = dataplane::PcapWriter::open(dir.file("probes.pcap"), &error);
  ASSERT_TRUE(writer) << error;
  uint64_t now = 1700000000ull * 1000000000ull;
  uint16_t clientPort = 20000;
  for (const auto& probe : probes) {
    for (const auto& expectation : probe.pairs) {
      const auto [fromId, toId] = split(expectation.pair);
      const Pod* from = cluster.find(fromId);
      const Pod* to = cluster.find(toId);
      ASSERT_TRUE(from != nullptr && to != nullptr) << "unknown pod in " << expectation.pair;
      ++clientPort;
      testing::Bytes frame;
      if (probe.protocol == "TCP") {
        frame = testing::ipv4Frame({from->ip.c_str(), to->ip.c_str(), 6},
                                   testing::tcp(clientPort, probe.port, dataplane::tcp_flags::Syn));
      } else if (probe.protocol == "UDP") {
        frame = testing::ipv4Frame({from->ip.c_str(), to->ip.c_str(), 17},
                                   testing::udp(clientPort, probe.port, testing::text("probe")));
      } else {
        ASSERT_EQ(probe.protocol, "SCTP");
        frame = testing::ipv4Frame({from->ip.c_str(), to->ip.c_str(), 132},
                                   testing::sctpInit(clientPort, probe.port));
      }
      writer->write(frame.data(), uint32_t(frame.size()), uint32_t(frame.size()), now += 1000000);
      byFlow[probe.protocol + " " + from->ip + ":" + std::to_string(clientPort) + " " + to->ip +
             ":" + std::to_string(probe.port)] = &expectation;
    }
  }
  ASSERT_TRUE(writer->close(&error)) << error;

  const auto result =
      testing::runCommand({testing::bulkheadBinary(), "simulate", "--json", "--policy", policy,
                           "--endpoints", endpoints, "--pcap", dir.file("probes.pcap")},
                          120);
  ASSERT_EQ(result.exitCode, 0) << result.err << result.out;
  size_t judged = 0;
  std::istringstream lines(result.out);
  std::string line;
  while (std::getline(lines, line)) {
    const json flow = json::parse(line);
    if (flow.value("summary", false)) {
      continue;
    }
    const std::string key =
        flow["l4"].get<std::string>() + " " + flow["src_ip"].get<std::string>() + ":" +
        std::to_string(flow["src_port"].get<int>()) + " " + flow["dst_ip"].get<std::string>() +
        ":" + std::to_string(flow["dst_port"].get<int>());
    const auto found = byFlow.find(key);
    ASSERT_NE(found, byFlow.end()) << "a flow nobody probed: " << line;
    const bool allowed = flow["verdict"] == "allow";
    EXPECT_EQ(allowed, found->second->allowed)
        << found->second->pair << " " << key << ": upstream expects "
        << (found->second->allowed ? "allowed" : "denied") << ", simulate says " << line;
    if (!allowed) {
      EXPECT_TRUE(flow["enforced"].get<bool>()) << line;
    }
    ++judged;
  }
  EXPECT_EQ(judged, byFlow.size()) << "every probe is one flow";
}

std::string caseName(const ::testing::TestParamInfo<CaseParam>& info) {
  std::string name = fs::path(info.param.file).stem().string();
  for (char& c : name) {
    c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  }
  return "case_" + name;
}

INSTANTIATE_TEST_SUITE_P(NetworkPolicyApi, ConformanceCase,
                         ::testing::ValuesIn(casesOf("network-policy-api")), caseName);
INSTANTIATE_TEST_SUITE_P(KubernetesE2e, ConformanceCase,
                         ::testing::ValuesIn(casesOf("kubernetes-e2e")), caseName);

// How many cases each suite has and how many apply: the closing note's numbers, and a guard
// against cases that quietly stop applying.
TEST(ConformanceSuites, EveryCaseIsCountedAndTheInapplicableSayWhy) {
  for (const auto& [suite, minimum] :
       {std::pair{"network-policy-api", 60u}, std::pair{"kubernetes-e2e", 40u}}) {
    unsigned applies = 0;
    unsigned total = 0;
    for (const auto& param : casesOf(suite)) {
      const YAML::Node doc = YAML::LoadFile(suiteDir(suite) + "/" + param.file);
      ++total;
      if (doc["applies"].as<bool>()) {
        ++applies;
      } else {
        EXPECT_FALSE(doc["why"].as<std::string>().empty()) << param.file;
      }
    }
    std::cout << suite << ": " << total << " cases, " << applies << " apply\n";
    EXPECT_GE(applies, minimum) << suite;
  }
}

}  // namespace
}  // namespace bulkhead
