#include "controlplane/agent_config.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "controlplane/log_sink.h"
#include "controlplane/wire_names.h"
#include "dataplane/conversation_hash.h"
#include "metrics/metrics_server.h"
#include "rules/yaml_reader.h"

namespace bulkhead::controlplane {

bool validHostName(std::string_view name) {
  const auto allowed = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  };
  return !name.empty() && name.size() <= 63 && name.front() != '-' && name.front() != '.' &&
         std::all_of(name.begin(), name.end(), allowed);
}

bool parseOffload(std::string_view text, Offload& out) {
  if (text == "established") {
    out = Offload::Established;
  } else if (text == "none") {
    out = Offload::None;
  } else {
    return false;
  }
  return true;
}

bool parseByteSize(std::string_view text, uint64_t& out) {
  uint64_t value = 0;
  const auto [end, code] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (code != std::errc() || end == text.data()) {
    return false;
  }
  const std::string_view unit = text.substr(static_cast<size_t>(end - text.data()));
  const uint64_t scale = unit.empty()                 ? 1
                         : unit == "K" || unit == "k" ? 1ull << 10
                         : unit == "M"                ? 1ull << 20
                         : unit == "G"                ? 1ull << 30
                                                      : 0;
  if (scale == 0 || value > (uint64_t{1} << 50) / scale) {
    return false;
  }
  out = value * scale;
  return true;
}

bool validMetricsAddress(const std::string& text, std::string* error) {
  if (text == "off") {
    return true;
  }
  std::string host;
  uint16_t port = 0;
  return metrics::parseListenAddress(text, host, port, error);
}

bool parseFullTable(std::string_view text, dataplane::FullTable& out) {
  if (text == "drop") {
    out = dataplane::FullTable::Drop;
  } else if (text == "evict-idle") {
    out = dataplane::FullTable::EvictIdle;
  } else {
    return false;
  }
  return true;
}

namespace {

using rules::quote;
using rules::YamlReader;

class ConfigParser {
 public:
  ConfigParser(const std::string& file, AgentConfigLoad& out)
      : reader_(file, out.errors), out_(out) {}

  void parse(const rules::YamlDocument& file) {
    reader_.setLineOffset(file.lineOffset);
    const YAML::Node& document = file.node;
    if (document.IsNull() || !reader_.expectMap(document, "the agent configuration")) {
      return;
    }
    const auto top = reader_.fields(document,
                                    {"policy",
                                     "watchPolicy",
                                     "stateDirectory",
                                     "apiSocket",
                                     "apiSocketGroup",
                                     "violationLog",
                                     "violationIntervalSeconds",
                                     "learning",
                                     "namespaceLabel",
                                     "namespaces",
                                     "learnedEdges",
                                     "flowLog",
                                     "auditLog",
                                     "logMaxBytes",
                                     "logFiles",
                                     "syslogFacility",
                                     "metricsAddress",
                                     "workers",
                                     "portDriver",
                                     "uplink",
                                     "hugepages",
                                     "memoryMegabytes",
                                     "eal",
                                     "dpiBudget",
                                     "dpiHoldMicros",
                                     "dpiHoldPackets",
                                     "maxFlows",
                                     "maxFlowsPerEndpoint",
                                     "flowTableFull",
                                     "mbufsPerPort",
                                     "busyPoll",
                                     "offload",
                                     "logLevel",
                                     "endpoints",
                                     "host",
                                     "docker",
                                     "failOpen",
                                     "instance",
                                     "runtimeSocket",
                                     "protectBridges",
                                     "kvstore"},
                                    "the agent configuration");
    AgentConfig& config = out_.config;
    if (const auto* policy = YamlReader::optional(top, "policy")) {
      config.policyPaths = stringOrList(policy->value, "policy");
    }
    text(top, "apiSocket", config.apiSocket);
    text(top, "apiSocketGroup", config.apiSocketGroup);
    text(top, "stateDirectory", config.stateDirectory);
    text(top, "uplink", config.uplink);
    number(top, "violationIntervalSeconds", config.violationIntervalSeconds, 1, 86400);
    boolean(top, "learning", config.learning);
    number(top, "learnedEdges", config.learnedEdges, 1, 1000000);
    // One trunk each; the patch panel sends each conversation to its owner's
    // (dataplane/conversation_hash.h). Whether the host has the CPUs is the EAL's to say.
    number(top, "workers", config.workers, 1, BH_MAX_WORKERS);
    number(top, "memoryMegabytes", config.memoryMegabytes, 64, 1u << 20);
    number(top, "dpiBudget", config.dpiBudget, 1, 1000);
    number(top, "dpiHoldMicros", config.dpiHoldMicros, 0, 1000000);
    number(top, "dpiHoldPackets", config.dpiHoldPackets, 1, 65536);
    number(top, "maxFlows", config.maxFlows, 1024, 1u << 24);
    number(top, "maxFlowsPerEndpoint", config.maxFlowsPerEndpoint, 1, 1u << 24);
    // af_xdp builds its UMEM from the port's pool and refuses fewer than 4096 frames.
    number(top, "mbufsPerPort", config.mbufsPerPort, 4095, 1u << 20);
    if (const auto* field = YamlReader::optional(top, "flowTableFull")) {
      const auto value = reader_.scalar(field->value, "flowTableFull");
      if (value && !parseFullTable(*value, config.flowTableFull)) {
        reader_.error(field->value,
                      "flowTableFull must be drop or evict-idle, got " + quote(*value));
      }
    }
    for (const auto& [key, out] :
         {std::pair<const char*, std::string*>{"violationLog", &config.violationLog},
          {"flowLog", &config.flowLog},
          {"auditLog", &config.auditLog}}) {
      if (const auto* field = YamlReader::optional(top, key)) {
        if (const auto value = reader_.scalar(field->value, key)) {
          std::string why;
          if (!validLogTarget(*value, &why)) {
            reader_.error(field->value, std::string(key) + ": " + why);
          } else {
            *out = *value;
          }
        }
      }
    }
    number(top, "logFiles", config.logFiles, 1, 100);
    if (const auto* field = YamlReader::optional(top, "logMaxBytes")) {
      if (const auto value = reader_.scalar(field->value, "logMaxBytes")) {
        if (!parseByteSize(*value, config.logMaxBytes)) {
          reader_.error(
              field->value,
              "logMaxBytes must be a size such as 104857600, 100M or 1G (0: never rotate), "
              "got " +
                  quote(*value));
        }
      }
    }
    if (const auto* field = YamlReader::optional(top, "syslogFacility")) {
      const auto value = reader_.scalar(field->value, "syslogFacility");
      if (value && !parseSyslogFacility(*value, config.syslogFacility)) {
        reader_.error(field->value,
                      "syslogFacility must be local0..local7, daemon, user, auth or "
                      "authpriv, got " +
                          quote(*value));
      }
    }
    if (const auto* field = YamlReader::optional(top, "metricsAddress")) {
      if (const auto value = reader_.scalar(field->value, "metricsAddress")) {
        std::string why;
        if (!validMetricsAddress(*value, &why)) {
          reader_.error(field->value, why + " (or off)");
        } else {
          config.metricsAddress = *value;
          config.metricsAddressChosen = true;
        }
      }
    }
    if (const auto* field = YamlReader::optional(top, "offload")) {
      const auto value = reader_.scalar(field->value, "offload");
      if (value && !parseOffload(*value, config.offload)) {
        reader_.error(field->value, "offload must be established or none, got " + quote(*value));
      }
    }
    if (const auto* field = YamlReader::optional(top, "portDriver")) {
      const auto value = reader_.scalar(field->value, "portDriver");
      if (value && !dataplane::parsePortDriver(*value, config.portDriver)) {
        reader_.error(field->value,
                      "portDriver must be auto, af_xdp or af_packet, got " + quote(*value));
      }
    }
    if (const auto* field = YamlReader::optional(top, "hugepages")) {
      const auto value = reader_.scalar(field->value, "hugepages");
      if (value == "auto") {
        config.hugepages = Hugepages::Auto;
      } else if (value == "on" || value == "true") {
        config.hugepages = Hugepages::On;
      } else if (value == "off" || value == "false") {
        config.hugepages = Hugepages::Off;
      } else if (value) {
        reader_.error(field->value, "hugepages must be auto, on or off, got " + quote(*value));
      }
    }
    if (const auto* field = YamlReader::optional(top, "watchPolicy")) {
      const auto value = reader_.scalar(field->value, "watchPolicy");
      if (value == "true" || value == "false") {
        config.watchPolicy = value == "true";
      } else if (value) {
        reader_.error(field->value, "watchPolicy must be true or false, got " + quote(*value));
      }
    }
    boolean(top, "busyPoll", config.busyPoll);
    boolean(top, "failOpen", config.failOpen);
    if (const auto* field = YamlReader::optional(top, "instance")) {
      if (const auto value = reader_.scalar(field->value, "instance")) {
        if (const std::string problem = validateInstanceName(*value); !problem.empty()) {
          reader_.error(field->value, problem);
        } else {
          config.instance = *value;
        }
      }
    }
    text(top, "runtimeSocket", config.runtimeSocket);
    text(top, "namespaceLabel", config.namespaceLabel);
    if (const auto* field = YamlReader::optional(top, "namespaces")) {
      config.namespaces = parseNamespaceLabels(reader_, field->value);
    }
    if (const auto* field = YamlReader::optional(top, "protectBridges")) {
      config.protectBridges = stringOrList(field->value, "protectBridges");
    }
    if (const auto* field = YamlReader::optional(top, "docker")) {
      // `docker: {}` (or `docker:` with nothing) follows the default socket's every network.
      if (field->value.IsNull() || reader_.expectMap(field->value, "docker")) {
        config.docker = true;
        if (!field->value.IsNull()) {
          const auto docker =
              reader_.fields(field->value, {"socket", "networks", "network"}, "docker");
          text(docker, "socket", config.dockerSocket);
          if (const auto* networks = YamlReader::optional(docker, "networks")) {
            config.dockerNetworks = stringOrList(networks->value, "docker.networks");
            if (config.dockerNetworks.empty()) {
              reader_.error(networks->value,
                            "docker.networks is empty: leave it out to follow every network");
            }
          }
          // The one-network form of earlier versions: `network: N` is `networks: [N]`.
          if (const auto* network = YamlReader::optional(docker, "network")) {
            if (const auto value = reader_.scalar(network->value, "docker.network")) {
              config.dockerNetworks.push_back(*value);
            }
          }
        }
      }
    }
    if (const auto* field = YamlReader::optional(top, "logLevel")) {
      const auto value = reader_.scalar(field->value, "logLevel");
      static const std::vector<std::string> levels = {"trace", "debug", "info", "warn", "error"};
      if (value && std::find(levels.begin(), levels.end(), *value) == levels.end()) {
        reader_.error(field->value,
                      "logLevel must be trace, debug, info, warn or error, got " + quote(*value));
      } else if (value) {
        config.logLevel = *value;
      }
    }
    if (const auto* field = YamlReader::optional(top, "eal")) {
      config.ealArguments = stringOrList(field->value, "eal");
    }
    if (const auto* field = YamlReader::optional(top, "kvstore")) {
      parseKvstore(field->value, config.kvstore);
    }
    const auto* endpoints = YamlReader::optional(top, "endpoints");
    const auto* host = YamlReader::optional(top, "host");
    parseEndpoints(reader_, endpoints ? &endpoints->value : nullptr, host ? &host->value : nullptr,
                   true, config.staticEndpoints);
    out_.errors.insert(out_.errors.end(), config.staticEndpoints.errors.begin(),
                       config.staticEndpoints.errors.end());
    config.staticEndpoints.errors.clear();
  }

 private:
  void parseKvstore(const YAML::Node& node, KvstoreConfig& out) {
    if (!reader_.expectMap(node, "kvstore")) {
      return;
    }
    const auto fields = reader_.fields(node,
                                       {"endpoints", "prefix", "host", "subnets", "leaseSeconds",
                                        "timeoutSeconds", "tls", "username", "passwordFile"},
                                       "kvstore");
    const auto* endpoints = YamlReader::optional(fields, "endpoints");
    if (endpoints == nullptr) {
      reader_.error(node, "kvstore.endpoints is missing: the etcd client URLs to use");
      return;
    }
    for (const auto& url : stringOrList(endpoints->value, "kvstore.endpoints")) {
      const bool http = url.rfind("http://", 0) == 0;
      const bool https = url.rfind("https://", 0) == 0;
      const size_t start = http ? 7 : 8;
      if ((!http && !https) || url.size() <= start ||
          url.find_first_of(" \t\r\n/?#", start) != std::string::npos) {
        reader_.error(endpoints->value,
                      "kvstore.endpoints: " + quote(url) +
                          " is no etcd client URL (http://host:port or https://host:port)");
        continue;
      }
      out.etcd.endpoints.push_back(url);
    }
    if (out.etcd.endpoints.empty()) {
      reader_.error(endpoints->value, "kvstore.endpoints is empty");
    }
    if (const auto* field = YamlReader::optional(fields, "prefix")) {
      if (const auto value = reader_.scalar(field->value, "kvstore.prefix")) {
        if (value->size() < 2 || value->front() != '/' || value->back() == '/' ||
            value->find_first_of(" \t\r\n") != std::string::npos) {
          reader_.error(field->value,
                        "kvstore.prefix must start with '/' and not end with one "
                        "(/bulkhead), got " +
                            quote(*value));
        } else {
          out.prefix = *value;
        }
      }
    }
    if (const auto* field = YamlReader::optional(fields, "host")) {
      if (const auto value = reader_.scalar(field->value, "kvstore.host")) {
        if (!validHostName(*value)) {
          reader_.error(
              field->value,
              "kvstore.host must be 1 to 63 of a-z, 0-9, '-' and '.', got " + quote(*value));
        } else {
          out.host = *value;
        }
      }
    }
    if (const auto* field = YamlReader::optional(fields, "subnets")) {
      for (const auto& text : stringOrList(field->value, "kvstore.subnets")) {
        std::string why;
        if (auto cidr = rules::Cidr::parse(text, &why)) {
          out.subnets.push_back(*cidr);
        } else {
          reader_.error(field->value, "kvstore.subnets: " + why);
        }
      }
    }
    number(fields, "leaseSeconds", out.leaseSeconds, 5, 3600, "kvstore.");
    unsigned timeout = static_cast<unsigned>(out.etcd.timeoutSeconds);
    number(fields, "timeoutSeconds", timeout, 1, 60, "kvstore.");
    out.etcd.timeoutSeconds = static_cast<int>(timeout);
    if (const auto* field = YamlReader::optional(fields, "tls")) {
      if (reader_.expectMap(field->value, "kvstore.tls")) {
        const auto tls = reader_.fields(field->value, {"ca", "cert", "key"}, "kvstore.tls");
        text(tls, "ca", out.etcd.caFile);
        text(tls, "cert", out.etcd.certFile);
        text(tls, "key", out.etcd.keyFile);
        if (out.etcd.certFile.empty() != out.etcd.keyFile.empty()) {
          reader_.error(field->value, "kvstore.tls: cert and key go together");
        }
        for (const auto& url : out.etcd.endpoints) {
          if (url.rfind("http://", 0) == 0) {
            reader_.error(field->value, "kvstore.tls is set but " + quote(url) +
                                            " is plain http: use https:// endpoints");
            break;
          }
        }
      }
    }
    text(fields, "username", out.etcd.username);
    if (const auto* field = YamlReader::optional(fields, "passwordFile")) {
      if (const auto value = reader_.scalar(field->value, "kvstore.passwordFile")) {
        std::ifstream in(*value, std::ios::binary);
        std::string password;
        if (!in || !std::getline(in, password) || password.empty()) {
          reader_.error(field->value,
                        "kvstore.passwordFile: cannot read a password from " + quote(*value));
        } else {
          out.etcd.password = password;
        }
      }
    }
    if (out.etcd.username.empty() != out.etcd.password.empty()) {
      reader_.error(node, "kvstore: username and passwordFile go together");
    }
  }

  std::vector<std::string> stringOrList(const YAML::Node& node, std::string_view what) {
    if (node.IsScalar()) {
      return {node.Scalar()};
    }
    std::vector<std::string> out;
    if (reader_.expectList(node, what)) {
      for (const auto& entry : node) {
        if (const auto value = reader_.scalar(entry, std::string(what) + " entry")) {
          out.push_back(*value);
        }
      }
    }
    return out;
  }

  void boolean(const YamlReader::Fields& top, std::string_view key, bool& out) {
    if (const auto* field = YamlReader::optional(top, key)) {
      const auto value = reader_.scalar(field->value, key);
      if (value == "true" || value == "false") {
        out = value == "true";
      } else if (value) {
        reader_.error(field->value,
                      std::string(key) + " must be true or false, got " + quote(*value));
      }
    }
  }

  void text(const YamlReader::Fields& top, std::string_view key, std::string& out) {
    if (const auto* field = YamlReader::optional(top, key)) {
      if (const auto value = reader_.scalar(field->value, key)) {
        out = *value;
      }
    }
  }

  void number(const YamlReader::Fields& top, std::string_view key, unsigned& out, unsigned min,
              unsigned max, std::string_view parent = "") {
    const auto* field = YamlReader::optional(top, key);
    if (field == nullptr) {
      return;
    }
    const auto value = reader_.scalar(field->value, key);
    if (!value) {
      return;
    }
    unsigned parsed = 0;
    const auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), parsed);
    if (ec != std::errc() || end != value->data() + value->size() || parsed < min || parsed > max) {
      reader_.error(field->value, std::string(parent) + std::string(key) +
                                      " must be a whole number from " + std::to_string(min) +
                                      " to " + std::to_string(max) + ", got " + quote(*value));
      return;
    }
    out = parsed;
  }

  YamlReader reader_;
  AgentConfigLoad& out_;
};

}  // namespace

AgentConfigLoad loadAgentConfigText(const std::string& text, const std::string& fileName) {
  AgentConfigLoad out;
  const auto documents = rules::parseYamlDocuments(text, fileName, out.errors);
  if (documents.size() > 1) {
    out.errors.push_back({{fileName, 0, 0}, "the agent configuration is one YAML document"});
  } else if (!documents.empty()) {
    ConfigParser(fileName, out).parse(documents.front());
  }
  rules::sortByLocation(out.errors);
  return out;
}

AgentConfigLoad loadAgentConfig(const std::string& path, bool required) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    AgentConfigLoad out;
    if (required) {
      out.errors.push_back({{path, 0, 0}, "no such file"});
    }
    return out;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    AgentConfigLoad out;
    out.errors.push_back({{path, 0, 0}, "cannot read file"});
    return out;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return loadAgentConfigText(text.str(), path);
}

}  // namespace bulkhead::controlplane
