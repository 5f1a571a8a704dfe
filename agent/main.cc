#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <boost/program_options.hpp>

#include <iostream>
#include <sstream>

#include "controlplane/agent.h"
#include "controlplane/agent_config.h"
#include "controlplane/log_sink.h"
#include "controlplane/wire_names.h"
#include "dataplane/conversation_hash.h"
#include "rules/policy_loader.h"

namespace {

namespace po = boost::program_options;
using bulkhead::controlplane::AgentConfig;

std::vector<std::string> splitWords(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string word; in >> word;) {
    words.push_back(word);
  }
  return words;
}

}  // namespace

int main(int argc, char** argv) {
  // Logs go to stderr (journald and tests keep stdout for what a command prints as output).
  spdlog::set_default_logger(spdlog::stderr_color_mt("bulkheadd"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  po::options_description options(
      "bulkheadd - the bulkhead agent: a DPDK fast path between container veths that enforces\n"
      "segmentation policy.\n\nUsage: bulkheadd [--config FILE] [options]\n"
      "Options override the configuration file (keys in docs/agent.md)");
  options.add_options()("help,h", "show this help")("version", "print the version")(
      "config,c", po::value<std::string>(),
      "configuration file (default /etc/bulkhead/bulkhead.yaml, used if present)")(
      "check-config", "validate the configuration and the policy, print a summary, exit")(
      "policy,p", po::value<std::vector<std::string>>(),
      "policy file or directory (repeatable; replaces 'policy')")(
      "no-watch-policy", "do not apply policy file edits by themselves (reload by SIGHUP or API)")(
      "no-learning", "do not record observed edges for bulkhead policy suggest")(
      "namespace-label", po::value<std::string>(),
      "the container label that names its namespace, bulkhead.io/namespace (default "
      "com.docker.compose.project)")(
      "learned-edges", po::value<unsigned>(),
      "observed edges kept; past it the longest unseen go first (default 20000)")(
      "api-socket", po::value<std::string>(), "local API socket (default /run/bulkhead/api.sock)")(
      "api-socket-group", po::value<std::string>(),
      "group allowed to use the API (socket 0660); default root only (0600)")(
      "violation-log", po::value<std::string>(),
      "violation log, JSON lines: a file, stdout, syslog, syslog+unix:///PATH or "
      "syslog+udp://HOST:PORT (default /var/log/bulkhead/violations.jsonl)")(
      "flow-log", po::value<std::string>(),
      "one JSON line per flow that ended, to the same kinds of target (default none)")(
      "audit-log", po::value<std::string>(),
      "the audit trail (policies applied or refused, endpoints attached and detached) as JSON "
      "lines to one of those targets too (default: the agent's own log only)")(
      "log-max-bytes", po::value<std::string>(),
      "rotate file logs past this size (100M, 1G; default 0: never, leave it to logrotate)")(
      "log-files", po::value<unsigned>(), "rotated files kept of each log (default 5)")(
      "syslog-facility", po::value<std::string>(),
      "facility of syslog messages: local0..local7, daemon, user, auth (default local0)")(
      "metrics-address", po::value<std::string>(),
      "the Prometheus endpoint, host:port or off (default 127.0.0.1:9968)")(
      "state-directory", po::value<std::string>(),
      "where the agent keeps state across restarts (default /var/lib/bulkhead)")(
      "violation-interval", po::value<unsigned>(),
      "seconds between two violation lines of one flow (default 10)")(
      "workers", po::value<unsigned>(),
      "fast-path worker threads, one lcore and one trunk each (default 1, at most 16)")(
      "port-driver", po::value<std::string>(),
      "auto (af_xdp, falling back to af_packet), af_xdp or af_packet (default auto)")(
      "uplink", po::value<std::string>(),
      "interface toward the host bridge or NIC, carrying the world (default none)")(
      "hugepages", po::value<std::string>(),
      "auto (use them if mounted and free), on or off (default auto)")(
      "memory", po::value<unsigned>(), "EAL memory in MiB without hugepages (default 512)")(
      "eal", po::value<std::vector<std::string>>(),
      "extra DPDK EAL arguments, space separated (repeatable)")(
      "dpi-budget", po::value<unsigned>(),
      "packets per flow nDPI may inspect before the flow counts as Unknown (default 32)")(
      "dpi-hold-us", po::value<unsigned>(),
      "how long undecided payload of a flow that only an enforced L7 rule could allow is held "
      "back before it goes on, in microseconds; 0 never holds (default 2000)")(
      "dpi-hold-packets", po::value<unsigned>(),
      "packets a worker may hold back at once (default 256)")(
      "max-flows", po::value<unsigned>(), "flow table capacity per worker (default 1048576)")(
      "flow-table-full", po::value<std::string>(),
      "a new flow in a full flow table: drop (default) or evict-idle (end the longest-idle of "
      "a sample of flows idle 1 s or more)")(
      "max-flows-per-endpoint", po::value<unsigned>(),
      "flows one endpoint may open, per worker (default: max-flows / 8)")(
      "mbufs-per-port", po::value<unsigned>(),
      "packet buffers in each port's receive pool (default 4095)")(
      "busy-poll", "poll without pausing when idle (lowest latency, one core per worker at 100%)")(
      "offload", po::value<std::string>(),
      "established (default): a flow allowed for good passes veth to veth in the kernel; none: "
      "every packet through the fast path")("log-level", po::value<std::string>(),
                                            "trace, debug, info, warn or error (default info)")(
      "docker", "protect the containers of every Docker network as the engine runs them")(
      "docker-network", po::value<std::vector<std::string>>(),
      "protect this Docker network only (repeatable; implies --docker)")(
      "docker-socket", po::value<std::string>(),
      "the Docker engine's API socket (default /var/run/docker.sock; implies --docker)")(
      "runtime-socket", po::value<std::string>(),
      "a Docker-compatible API (podman system service) asked for CNI containers' labels")(
      "protect-bridge", po::value<std::vector<std::string>>(),
      "quarantine this bridge from the start, before its first endpoint (repeatable)")(
      "instance", po::value<std::string>(),
      "names the agent's trunk, programs and tables: 1-8 lower-case letters or digits "
      "(default bh0)")(
      "fail-open",
      "while no agent runs (after a clean stop) containers talk unfiltered on their bridges "
      "(default: cut off)")(
      "release",
      "remove what an agent of this instance left in the kernel (trunk, filters, pins, "
      "quarantine), so that containers talk unfiltered; then exit")(
      "if-fail-open",
      "with --release: only if failOpen is set (for a service manager's ExecStopPost, which "
      "runs after a crash too)");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, options), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "bulkheadd: " << e.what() << "\n\n" << options;
    return 2;
  }
  if (vm.count("help")) {
    std::cout << options;
    return 0;
  }
  if (vm.count("version")) {
    std::cout << "bulkheadd " << BULKHEAD_VERSION << "\n";
    return 0;
  }

  const bool explicitConfig = vm.count("config") > 0;
  const std::string configPath =
      explicitConfig ? vm["config"].as<std::string>() : "/etc/bulkhead/bulkhead.yaml";
  auto loaded = bulkhead::controlplane::loadAgentConfig(configPath, explicitConfig);
  for (const auto& error : loaded.errors) {
    std::cerr << bulkhead::rules::format(error) << "\n";
  }
  if (!loaded.ok()) {
    return 1;
  }
  AgentConfig config = std::move(loaded.config);
  if (vm.count("policy")) {
    config.policyPaths = vm["policy"].as<std::vector<std::string>>();
  }
  const auto text = [&](const char* flag, std::string& out) {
    if (vm.count(flag)) {
      out = vm[flag].as<std::string>();
    }
  };
  const auto number = [&](const char* flag, unsigned& out, unsigned min, unsigned max) {
    if (vm.count(flag)) {
      const unsigned value = vm[flag].as<unsigned>();
      if (value < min || value > max) {
        std::cerr << "bulkheadd: --" << flag << " must be " << min << ".." << max << "\n";
        std::exit(2);
      }
      out = value;
    }
  };
  text("api-socket", config.apiSocket);
  text("api-socket-group", config.apiSocketGroup);
  text("violation-log", config.violationLog);
  text("flow-log", config.flowLog);
  text("namespace-label", config.namespaceLabel);
  text("audit-log", config.auditLog);
  for (const auto* log : {&config.violationLog, &config.flowLog, &config.auditLog}) {
    std::string why;
    if (!log->empty() && !bulkhead::controlplane::validLogTarget(*log, &why)) {
      std::cerr << "bulkheadd: " << why << "\n";
      return 2;
    }
  }
  number("log-files", config.logFiles, 1, 100);
  if (vm.count("log-max-bytes") && !bulkhead::controlplane::parseByteSize(
                                       vm["log-max-bytes"].as<std::string>(), config.logMaxBytes)) {
    std::cerr << "bulkheadd: --log-max-bytes must be a size such as 104857600, 100M or 1G\n";
    return 2;
  }
  if (vm.count("syslog-facility") &&
      !bulkhead::controlplane::parseSyslogFacility(vm["syslog-facility"].as<std::string>(),
                                                   config.syslogFacility)) {
    std::cerr << "bulkheadd: --syslog-facility must be local0..local7, daemon, user, auth or "
                 "authpriv\n";
    return 2;
  }
  text("state-directory", config.stateDirectory);
  text("uplink", config.uplink);
  text("log-level", config.logLevel);
  text("docker-socket", config.dockerSocket);
  text("runtime-socket", config.runtimeSocket);
  if (vm.count("docker") || vm.count("docker-socket") || vm.count("docker-network")) {
    config.docker = true;
  }
  if (vm.count("docker-network")) {
    config.dockerNetworks = vm["docker-network"].as<std::vector<std::string>>();
  }
  if (vm.count("protect-bridge")) {
    for (const auto& bridge : vm["protect-bridge"].as<std::vector<std::string>>()) {
      config.protectBridges.push_back(bridge);
    }
  }
  if (vm.count("instance")) {
    config.instance = vm["instance"].as<std::string>();
    if (const auto problem = bulkhead::controlplane::validateInstanceName(config.instance);
        !problem.empty()) {
      std::cerr << "bulkheadd: --" << problem << "\n";
      return 2;
    }
  }
  number("violation-interval", config.violationIntervalSeconds, 1, 86400);
  number("learned-edges", config.learnedEdges, 1, 1000000);
  number("workers", config.workers, 1, BH_MAX_WORKERS);
  number("memory", config.memoryMegabytes, 64, 1u << 20);
  number("dpi-budget", config.dpiBudget, 1, 1000);
  number("dpi-hold-us", config.dpiHoldMicros, 0, 1000000);
  number("dpi-hold-packets", config.dpiHoldPackets, 1, 65536);
  number("max-flows", config.maxFlows, 1024, 1u << 24);
  number("max-flows-per-endpoint", config.maxFlowsPerEndpoint, 1, 1u << 24);
  number("mbufs-per-port", config.mbufsPerPort, 4095, 1u << 20);
  if (vm.count("flow-table-full") &&
      !bulkhead::controlplane::parseFullTable(vm["flow-table-full"].as<std::string>(),
                                              config.flowTableFull)) {
    std::cerr << "bulkheadd: --flow-table-full must be drop or evict-idle\n";
    return 2;
  }
  if (vm.count("metrics-address")) {
    std::string why;
    if (!bulkhead::controlplane::validMetricsAddress(vm["metrics-address"].as<std::string>(),
                                                     &why)) {
      std::cerr << "bulkheadd: --metrics-address: " << why << " (or off)\n";
      return 2;
    }
    config.metricsAddress = vm["metrics-address"].as<std::string>();
    config.metricsAddressChosen = true;
  }
  if (vm.count("offload") &&
      !bulkhead::controlplane::parseOffload(vm["offload"].as<std::string>(), config.offload)) {
    std::cerr << "bulkheadd: --offload must be established or none\n";
    return 2;
  }
  if (vm.count("port-driver") && !bulkhead::dataplane::parsePortDriver(
                                     vm["port-driver"].as<std::string>(), config.portDriver)) {
    std::cerr << "bulkheadd: --port-driver must be auto, af_xdp or af_packet\n";
    return 2;
  }
  if (vm.count("hugepages")) {
    const std::string value = vm["hugepages"].as<std::string>();
    if (value == "auto") {
      config.hugepages = bulkhead::controlplane::Hugepages::Auto;
    } else if (value == "on") {
      config.hugepages = bulkhead::controlplane::Hugepages::On;
    } else if (value == "off") {
      config.hugepages = bulkhead::controlplane::Hugepages::Off;
    } else {
      std::cerr << "bulkheadd: --hugepages must be auto, on or off\n";
      return 2;
    }
  }
  if (vm.count("eal")) {
    for (const auto& words : vm["eal"].as<std::vector<std::string>>()) {
      for (auto& word : splitWords(words)) {
        config.ealArguments.push_back(std::move(word));
      }
    }
  }
  if (vm.count("no-watch-policy")) {
    config.watchPolicy = false;
  }
  if (vm.count("no-learning")) {
    config.learning = false;
  }
  if (vm.count("busy-poll")) {
    config.busyPoll = true;
  }
  if (vm.count("fail-open")) {
    config.failOpen = true;
  }
  if (config.logLevel != "trace" && config.logLevel != "debug" && config.logLevel != "info" &&
      config.logLevel != "warn" && config.logLevel != "error") {
    std::cerr << "bulkheadd: --log-level must be trace, debug, info, warn or error\n";
    return 2;
  }
  if (vm.count("check-config")) {
    const bulkhead::dpi::NdpiProtocolCatalog catalog;
    const auto policy = bulkhead::rules::loadPolicies(config.policyPaths, catalog);
    for (const auto& error : policy.errors) {
      std::cerr << bulkhead::rules::format(error) << "\n";
    }
    if (config.policyPaths.empty()) {
      std::cerr << "bulkheadd: no policy configured\n";
      return 1;
    }
    if (!policy.ok()) {
      return 1;
    }
    std::cout << "configuration valid: " << policy.set.policies.size() << " policies, "
              << config.staticEndpoints.endpoints.size() << " static endpoints, " << config.workers
              << " worker(s)\n";
    return 0;
  }
  if (vm.count("release")) {
    if (vm.count("if-fail-open") && !config.failOpen) {
      std::cout << "bulkheadd: failOpen is off: whatever an agent left stays (fail closed)\n";
      return 0;
    }
    return bulkhead::controlplane::Agent::release(config);
  }
  bulkhead::controlplane::Agent agent(std::move(config));
  return agent.run();
}
