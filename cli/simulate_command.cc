#include <boost/program_options.hpp>

#include <fstream>
#include <iostream>

#include "cli/commands.h"
#include "cli/service_map.h"
#include "cli/simulation.h"
#include "cli/suggestion_files.h"
#include "controlplane/endpoint_loader.h"
#include "dataplane/eal.h"
#include "dataplane/pcap_reader.h"
#include "dataplane/pcap_writer.h"
#include "dpi/protocol_catalog.h"
#include "learning/edge_store.h"
#include "learning/policy_suggestion.h"
#include "rules/policy_loader.h"
#include "text/json_text.h"

namespace bulkhead::cli {
namespace po = boost::program_options;

namespace {

nlohmann::json summaryJson(const SimulationResult& result) {
  size_t allowed = 0;
  size_t denied = 0;
  size_t monitored = 0;
  for (const auto& flow : result.flows) {
    if (flow.verdict == "allow") {
      ++allowed;
    } else if (flow.enforced) {
      ++denied;
    } else {
      ++monitored;
    }
  }
  const auto& counters = result.counters;
  nlohmann::json dropped = nlohmann::json::object();
  for (size_t reason = 1; reason < static_cast<size_t>(dataplane::DropReason::Count); ++reason) {
    dropped[dataplane::toString(static_cast<dataplane::DropReason>(reason))] =
        counters.dropped[reason];
  }
  return {{"summary", true},
          {"frames", result.framesRead},
          {"flows", result.flows.size()},
          {"flows_allowed", allowed},
          {"flows_denied", denied},
          {"flows_denied_monitor", monitored},
          {"packets_forwarded", counters.forwarded},
          {"packets_dropped", dropped},
          {"packets_non_ip", counters.nonIp},
          {"packets_oversized", result.oversized},
          {"capture_error",
           result.captureError ? nlohmann::json(*result.captureError) : nlohmann::json()}};
}

// The capture's flows as the agent would have recorded them: each as it was judged.
std::vector<learning::ObservedEdge> observedEdges(const std::vector<FlowRecord>& flows,
                                                  const EndpointLabels& labels) {
  learning::EdgeStore store(flows.size() + 1);
  const auto peer = [&](const std::string& name, const std::string& ip) {
    learning::EdgePeer out;
    if (name == "host") {
      out.kind = learning::EdgePeer::Kind::Host;
    } else if (const auto found = labels.find(name); found != labels.end()) {
      out.kind = learning::EdgePeer::Kind::Endpoint;
      out.labels = {found->second.begin(), found->second.end()};
    } else {
      out.address = ip;
    }
    return out;
  };
  for (const auto& flow : flows) {
    learning::FlowObservation observed;
    observed.key.src = peer(flow.srcEndpoint, flow.srcIp);
    observed.key.dst = peer(flow.dstEndpoint, flow.dstIp);
    observed.key.ipProtocol = flow.ipProtocol;
    observed.key.port = flow.dstPort;
    observed.key.protocol = flow.protocol;
    observed.key.host = flow.host;
    observed.decision = flow.verdict == "allow" ? rules::Decision::Allow : rules::Decision::Deny;
    observed.enforced = flow.enforced;
    observed.rule = flow.rule;
    observed.packets = flow.packets;
    observed.bytes = flow.bytes;
    observed.timeNs = flow.firstSeenNs;
    observed.srcAddress = flow.srcIp;
    observed.dstAddress = flow.dstIp;
    store.record(observed);
  }
  return store.edges();
}

}  // namespace

int simulateCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  po::options_description options(
      "bulkhead simulate --policy PATH --pcap FILE [options]\n"
      "Runs a capture through bulkhead's pipeline (parse, flow table, nDPI, policy) and prints\n"
      "one line per flow and a summary");
  options.add_options()("help,h", "show this help")(
      "policy,p", po::value<std::vector<std::string>>(),
      "policy file or directory (repeatable; required)")(
      "pcap,r", po::value<std::string>(), "capture to read, pcap or pcapng (required)")(
      "endpoints,e", po::value<std::string>(),
      "endpoints file mapping captured MAC/IP addresses to named endpoints with labels; "
      "addresses no endpoint claims are the entity 'world'")(
      "json", "one JSON object per flow, then one summary object with \"summary\": true")(
      "graph", po::value<std::string>(),
      "write the service map of the capture's flows to this file: Graphviz DOT, or SVG/PNG "
      "by the name's extension (.svg, .png), as bulkhead graph draws it")(
      "suggest", po::value<std::string>(),
      "write the allow-list the capture's flows amount to into this directory, one policy per "
      "workload, as bulkhead policy suggest does from the agent's")(
      "write-allowed,w", po::value<std::string>(),
      "write the packets the pipeline forwards (allowed, monitored, passed while classifying, "
      "or let go after being held) to this pcap file")(
      "dpi-budget", po::value<unsigned>()->default_value(32),
      "packets per flow nDPI may inspect before the flow counts as Unknown")(
      "dpi-hold-us", po::value<unsigned>()->default_value(2000),
      "capture-time microseconds that undecided payload is held back, as the agent does; 0 "
      "never holds")("max-flows", po::value<unsigned>()->default_value(1048576),
                     "flow table capacity; new flows beyond it are dropped and counted");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(options).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    err << "bulkhead simulate: " << e.what() << "\n" << options;
    return ExitUsage;
  }
  if (vm.count("help")) {
    out << options;
    return ExitOk;
  }
  if (!vm.count("policy") || !vm.count("pcap")) {
    err << "bulkhead simulate: --policy and --pcap are required\n" << options;
    return ExitUsage;
  }
  const unsigned budget = vm["dpi-budget"].as<unsigned>();
  const unsigned maxFlows = vm["max-flows"].as<unsigned>();
  if (budget < 1 || budget > 1000 || maxFlows < 1 || maxFlows > (1u << 24)) {
    err << "bulkhead simulate: --dpi-budget must be 1..1000 and --max-flows 1..16777216\n";
    return ExitUsage;
  }
  const unsigned holdMicros = vm["dpi-hold-us"].as<unsigned>();
  if (holdMicros > 1000000) {
    err << "bulkhead simulate: --dpi-hold-us must be 0..1000000\n";
    return ExitUsage;
  }

  EndpointLabels labels;
  SimulationInput input;
  {
    const dpi::NdpiProtocolCatalog catalog;
    auto loaded = rules::loadPolicies(vm["policy"].as<std::vector<std::string>>(), catalog);
    for (const auto& error : loaded.errors) {
      err << rules::format(error) << "\n";
    }
    for (const auto& warning : loaded.warnings) {
      err << rules::formatWarning(warning) << "\n";
    }
    if (!loaded.ok()) {
      return loaded.ioFailure ? ExitUsage : ExitInvalid;
    }
    input.policies = std::move(loaded.set);
  }
  if (vm.count("endpoints")) {
    auto endpoints = controlplane::loadEndpoints(vm["endpoints"].as<std::string>());
    for (const auto& error : endpoints.errors) {
      err << rules::format(error) << "\n";
    }
    if (!endpoints.ok()) {
      return endpoints.ioFailure ? ExitUsage : ExitInvalid;
    }
    for (const auto& endpoint : endpoints.endpoints) {
      labels[endpoint.name] = {endpoint.labels.begin(), endpoint.labels.end()};
    }
    input.endpoints = std::move(endpoints.endpoints);
    input.hostIps = std::move(endpoints.hostIps);
    input.hostMacs = std::move(endpoints.hostMacs);
  }
  input.pipeline.dpi.packetBudget = static_cast<uint16_t>(budget);
  input.pipeline.hold.timeoutNs = uint64_t{holdMicros} * 1000;
  input.pipeline.flows.capacity = maxFlows;

  std::string error;
  auto capture = dataplane::PcapReader::open(vm["pcap"].as<std::string>(), &error);
  if (!capture) {
    err << "bulkhead simulate: " << error << "\n";
    return ExitUsage;
  }
  std::unique_ptr<dataplane::PcapWriter> writer;
  if (vm.count("write-allowed")) {
    writer = dataplane::PcapWriter::open(vm["write-allowed"].as<std::string>(), &error);
    if (!writer) {
      err << "bulkhead simulate: " << error << "\n";
      return ExitUsage;
    }
  }

  SimulationResult result;
  try {
    dataplane::initEal(dataplane::offlineEalArguments());
    Simulation simulation(std::move(input));
    result = simulation.run(*capture, writer.get());
  } catch (const std::exception& e) {
    err << "bulkhead simulate: " << e.what() << "\n";
    return ExitUsage;
  }

  const bool json = vm.count("json") > 0;
  for (const auto& flow : result.flows) {
    if (json) {
      out << text::dumpJson(toJson(flow)) << "\n";
    } else {
      out << toText(flow) << "\n";
    }
  }
  const auto summary = summaryJson(result);
  if (json) {
    out << text::dumpJson(summary) << "\n";
  } else {
    out << "summary: " << result.framesRead << " frames, " << result.flows.size()
        << " flows: " << summary["flows_allowed"] << " allowed, " << summary["flows_denied"]
        << " denied, " << summary["flows_denied_monitor"] << " would be denied (monitor); "
        << result.counters.forwarded << " packets forwarded\n";
  }
  int status = ExitOk;
  if (vm.count("graph")) {
    // The records in the agent's flow shape, for the one map-drawing code.
    nlohmann::json flows = nlohmann::json::array();
    for (const auto& flow : result.flows) {
      flows.push_back({{"l4", flow.l4},
                       {"src", {{"endpoint", flow.srcEndpoint}, {"port", flow.srcPort}}},
                       {"dst", {{"endpoint", flow.dstEndpoint}, {"port", flow.dstPort}}},
                       {"protocol", flow.protocol},
                       {"verdict", flow.verdict},
                       {"enforced", flow.enforced},
                       {"bytes", flow.bytes}});
    }
    const std::string path = vm["graph"].as<std::string>();
    const std::string dot = serviceMapDot(flows, labels);
    const auto ends = [&](const char* suffix) { return path.ends_with(suffix); };
    if (ends(".svg") || ends(".png")) {
      if (!renderGraph(dot, ends(".svg") ? "svg" : "png", path, &error)) {
        err << "bulkhead simulate: " << error << "\n";
        status = ExitUsage;
      }
    } else {
      std::ofstream file(path);
      file << dot;
      if (!file.flush()) {
        err << "bulkhead simulate: cannot write " << path << "\n";
        status = ExitUsage;
      }
    }
  }
  if (vm.count("suggest")) {
    std::vector<NamedPolicy> policies;
    const learning::Suggestion suggestion =
        learning::suggestPolicies(observedEdges(result.flows, labels), {});
    for (const auto& policy : suggestion.policies) {
      policies.push_back({policy.name, policy.yaml});
    }
    const std::string directory = vm["suggest"].as<std::string>();
    if (writePolicies(policies, directory, out, err, "simulate")) {
      err << "bulkhead simulate: wrote " << policies.size() << " suggested policies to "
          << directory << " (" << suggestion.leftOut.size() << " edges left out)\n";
    } else {
      status = ExitUsage;
    }
  }
  if (writer && !writer->close(&error)) {
    err << "bulkhead simulate: " << error << "\n";
    status = ExitUsage;
  }
  if (result.captureError) {
    err << "bulkhead simulate: capture is truncated or corrupt at " << *result.captureError
        << "; flows above cover the packets before it\n";
    status = ExitInvalid;
  }
  return status;
}

}  // namespace bulkhead::cli
