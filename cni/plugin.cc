#include "cni/plugin.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>
#include <vector>

#include "api/client.h"
#include "text/json_text.h"
#include "text/untrusted_json.h"

namespace bulkhead::cni {
namespace {

// Ordered, so that the previous plugin's result is passed on with its keys in the order the
// runtime wrote them.
using Json = nlohmann::ordered_json;

constexpr const char* CurrentVersion = "1.0.0";
const std::vector<std::string> SupportedVersions = {"0.4.0", "1.0.0"};
constexpr const char* SupportedText = "bulkhead-cni supports cniVersion 0.4.0 and 1.0.0";
constexpr const char* PodNamespaceLabel = "bulkhead.io/pod-namespace";
constexpr const char* ChainHint =
    "bulkhead-cni is a chained plugin: list it in a conflist after the plugin that creates the "
    "container's veth (e.g. bridge or ptp)";

enum class Command { Add, Del, Check };
enum class FailurePolicy { Closed, Open };

// Thrown inside one invocation and turned into the CNI error object by run().
struct CniError {
  ErrorCode code;
  std::string msg;
  std::string details;
};

[[noreturn]] void fail(ErrorCode code, std::string msg, std::string details = "") {
  throw CniError{code, std::move(msg), std::move(details)};
}

// Strings from the environment may not be UTF-8; a CNI answer must still be valid JSON.
std::string dump(const Json& json) {
  return text::dumpJson(json) + "\n";
}

std::string shortDump(const Json& json) {
  std::string text = text::dumpJson(json);
  if (text.size() > 80) {
    text = text.substr(0, 77) + "...";
  }
  return text;
}

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string joined;
  for (const auto& item : items) {
    joined += (joined.empty() ? "" : separator) + item;
  }
  return joined;
}

std::string variable(const Environment& env, const std::string& key) {
  const auto found = env.find(key);
  return found == env.end() ? "" : found->second;
}

Outcome errorOutcome(const std::string& version, const CniError& error) {
  Json object = Json::object();
  object["cniVersion"] = version;
  object["code"] = static_cast<int>(error.code);
  object["msg"] = error.msg;
  if (!error.details.empty()) {
    object["details"] = error.details;
  }
  return {dump(object), "", 1};
}

struct NetConf {
  std::string cniVersion;
  std::string name;
  std::string agentSocket = DefaultAgentSocket;
  FailurePolicy failurePolicy = FailurePolicy::Closed;
  std::map<std::string, std::string> labels;
  std::string bridge;  // optional hint: the name of the bridge listed in prevResult
  Json prevResult;     // null when absent
};

struct Invocation {
  Command command = Command::Add;
  std::string containerId;
  std::string netns;
  std::string ifname;
  std::map<std::string, std::string> args;  // CNI_ARGS
};

Json parseInput(const std::string& input) {
  if (input.find_first_not_of(" \t\r\n") == std::string::npos) {
    fail(ErrorCode::DecodeFailure, "no network configuration on stdin",
         "the runtime passes the network configuration as a JSON object on stdin");
  }
  std::string problem;
  auto config = text::parseUntrusted<Json>(input, text::CniInputLimits, &problem);
  if (!config) {
    fail(ErrorCode::DecodeFailure, "the network configuration on stdin is not valid JSON",
         problem + " (bulkhead-cni reads at most " + std::to_string(text::CniInputLimits.maxBytes) +
             " bytes, nested at most " + std::to_string(text::CniInputLimits.maxDepth) + " deep)");
  }
  return std::move(*config);
}

std::string checkVersion(const Json& config) {
  const auto found = config.find("cniVersion");
  if (found == config.end()) {
    fail(ErrorCode::InvalidConfig, "the network configuration has no cniVersion", SupportedText);
  }
  if (!found->is_string()) {
    fail(ErrorCode::InvalidConfig, "cniVersion must be a string, not " + shortDump(*found),
         SupportedText);
  }
  const std::string version = found->get<std::string>();
  if (std::find(SupportedVersions.begin(), SupportedVersions.end(), version) ==
      SupportedVersions.end()) {
    fail(ErrorCode::IncompatibleVersion, "CNI version " + version + " is not supported",
         SupportedText);
  }
  return version;
}

// strict is false on DEL: only what DEL uses matters there, so that a configuration edited
// since ADD cannot keep a container from being torn down.
NetConf parseNetConf(const Json& config, const std::string& version, bool strict) {
  const auto reject = [strict](const std::string& msg) {
    if (strict) {
      fail(ErrorCode::InvalidConfig, msg, "see docs/cni.md for bulkhead-cni's keys");
    }
  };
  NetConf conf;
  conf.cniVersion = version;
  if (config.contains("name") && config["name"].is_string() &&
      !config["name"].get<std::string>().empty()) {
    conf.name = config["name"].get<std::string>();
  } else {
    reject("the network configuration has no 'name'");
  }
  if (config.contains("agentSocket")) {
    const Json& socket = config["agentSocket"];
    if (socket.is_string() && socket.get<std::string>().starts_with("/")) {
      conf.agentSocket = socket.get<std::string>();
    } else {
      reject("agentSocket must be an absolute path, not " + shortDump(socket));
    }
  }
  if (config.contains("failurePolicy")) {
    const Json& policy = config["failurePolicy"];
    if (policy == "closed") {
      conf.failurePolicy = FailurePolicy::Closed;
    } else if (policy == "open") {
      conf.failurePolicy = FailurePolicy::Open;
    } else {
      reject("failurePolicy must be \"closed\" or \"open\", not " + shortDump(policy));
    }
  }
  if (config.contains("labels")) {
    const Json& labels = config["labels"];
    if (!labels.is_object()) {
      reject("labels must be an object of strings, not " + shortDump(labels));
    } else {
      for (const auto& [key, value] : labels.items()) {
        if (key.empty() || !value.is_string()) {
          reject("label '" + key + "' must have a non-empty key and a string value, not " +
                 shortDump(value));
          continue;
        }
        conf.labels[key] = value.get<std::string>();
      }
    }
  }
  if (config.contains("bridge")) {
    if (config["bridge"].is_string()) {
      conf.bridge = config["bridge"].get<std::string>();
    } else {
      reject("bridge must be a string (the bridge's name), not " + shortDump(config["bridge"]));
    }
  }
  if (config.contains("prevResult") && !config["prevResult"].is_null()) {
    if (config["prevResult"].is_object()) {
      conf.prevResult = config["prevResult"];
    } else {
      reject("prevResult must be an object (the previous plugin's result)");
    }
  }
  return conf;
}

// The spec's rule: a letter or digit, then letters, digits, '_', '.' or '-'.
bool validContainerId(const std::string& id) {
  if (id.empty() || !std::isalnum(static_cast<unsigned char>(id[0]))) {
    return false;
  }
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

// Linux's rule for interface names, as the spec repeats it.
bool validInterfaceName(const std::string& name) {
  if (name.empty() || name.size() > 15 || name == "." || name == "..") {
    return false;
  }
  return std::none_of(name.begin(), name.end(), [](char c) {
    return c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c));
  });
}

Invocation parseEnvironment(const Environment& env, Command command) {
  Invocation invocation;
  invocation.command = command;
  invocation.containerId = variable(env, "CNI_CONTAINERID");
  invocation.netns = variable(env, "CNI_NETNS");
  invocation.ifname = variable(env, "CNI_IFNAME");
  // DEL only needs the container ID: the endpoint is detached by name, and the runtime may have
  // lost the namespace already.
  std::vector<std::string> missing;
  if (invocation.containerId.empty()) {
    missing.push_back("CNI_CONTAINERID");
  }
  if (command != Command::Del && invocation.netns.empty()) {
    missing.push_back("CNI_NETNS");
  }
  if (command != Command::Del && invocation.ifname.empty()) {
    missing.push_back("CNI_IFNAME");
  }
  if (!missing.empty()) {
    fail(ErrorCode::InvalidEnvironment,
         "missing environment variable" + std::string(missing.size() > 1 ? "s " : " ") +
             join(missing, ", "),
         "the container runtime sets CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, "
         "CNI_ARGS and CNI_PATH");
  }
  if (!validContainerId(invocation.containerId)) {
    fail(ErrorCode::InvalidEnvironment,
         "CNI_CONTAINERID '" + invocation.containerId + "' is not a valid container ID",
         "it must start with a letter or digit, followed by letters, digits, '_', '.' or '-'");
  }
  if (command != Command::Del && !validInterfaceName(invocation.ifname)) {
    fail(ErrorCode::InvalidEnvironment,
         "CNI_IFNAME '" + invocation.ifname + "' is not a valid interface name");
  }
  const std::string args = variable(env, "CNI_ARGS");
  size_t start = 0;
  while (start <= args.size()) {
    const size_t end = std::min(args.find(';', start), args.size());
    const std::string pair = args.substr(start, end - start);
    start = end + 1;
    if (pair.empty()) {
      continue;
    }
    const size_t equals = pair.find('=');
    if (equals == std::string::npos || equals == 0) {
      fail(ErrorCode::InvalidEnvironment, "CNI_ARGS: '" + pair + "' is not KEY=VALUE",
           "CNI_ARGS is a list of KEY=VALUE pairs separated by ';'");
    }
    invocation.args[pair.substr(0, equals)] = pair.substr(equals + 1);
  }
  return invocation;
}

// The pod name when the runtime gives one (podman passes the container's name), else the
// container ID's short form as `docker ps` and `podman ps` print it.
std::string endpointName(const Invocation& invocation) {
  const auto pod = invocation.args.find("K8S_POD_NAME");
  if (pod != invocation.args.end() && !pod->second.empty()) {
    return pod->second;
  }
  return invocation.containerId.substr(0, 12);
}

struct ResultInterface {
  std::string name;
  std::string mac;
  std::string sandbox;  // empty for host interfaces
};

std::string stringField(const Json& object, const char* key) {
  const auto found = object.find(key);
  return found != object.end() && found->is_string() ? found->get<std::string>() : "";
}

std::vector<ResultInterface> interfacesOf(const Json& prevResult) {
  const auto found = prevResult.find("interfaces");
  if (found == prevResult.end() || !found->is_array() || found->empty()) {
    fail(ErrorCode::InvalidConfig, "prevResult lists no interfaces", ChainHint);
  }
  std::vector<ResultInterface> interfaces;
  for (const auto& entry : *found) {
    if (!entry.is_object() || stringField(entry, "name").empty()) {
      fail(ErrorCode::InvalidConfig,
           "prevResult.interfaces[" + std::to_string(interfaces.size()) + "] has no name");
    }
    interfaces.push_back(
        {stringField(entry, "name"), stringField(entry, "mac"), stringField(entry, "sandbox")});
  }
  return interfaces;
}

// CNI_IFNAME inside a sandbox; when several sandboxes list one, the one in CNI_NETNS.
size_t containerInterface(const std::vector<ResultInterface>& interfaces,
                          const Invocation& invocation) {
  std::optional<size_t> byName;
  for (size_t i = 0; i < interfaces.size(); ++i) {
    if (interfaces[i].name != invocation.ifname || interfaces[i].sandbox.empty()) {
      continue;
    }
    if (interfaces[i].sandbox == invocation.netns) {
      return i;
    }
    if (!byName) {
      byName = i;
    }
  }
  if (!byName) {
    fail(ErrorCode::InvalidConfig,
         "prevResult has no interface '" + invocation.ifname + "' inside the container", ChainHint);
  }
  return *byName;
}

// A Linux bridge has a `bridge` directory in sysfs; an interface sysfs does not know (another
// machine's result, a test) is not known to be one.
bool sysfsSaysBridge(const Options& options, const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    return false;
  }
  std::error_code ignored;
  return std::filesystem::is_directory(std::filesystem::path(options.sysClassNet) / name / "bridge",
                                       ignored);
}

// The host end of the container's veth among the result's host interfaces (no sandbox): not the
// interface named by the `bridge` key, not one sysfs shows to be a bridge, and of those left the
// last listed, because the reference plugins list the host veth after the bridge (bridge:
// [bridge, host veth, container], ptp: [host veth, container]).
std::string hostVeth(const std::vector<ResultInterface>& interfaces, const NetConf& conf,
                     const Invocation& invocation, const Options& options) {
  std::vector<std::string> candidates;
  for (const auto& entry : interfaces) {
    if (entry.sandbox.empty() && entry.name != conf.bridge &&
        !sysfsSaysBridge(options, entry.name)) {
      candidates.push_back(entry.name);
    }
  }
  if (candidates.empty()) {
    fail(ErrorCode::InvalidConfig,
         "prevResult has no host-side veth for '" + invocation.ifname + "'",
         "bulkhead-cni needs the host end of the container's veth in prevResult, as the bridge "
         "and ptp plugins report it");
  }
  return candidates.back();
}

// The bridge the previous plugin put the veth on, as a hint for the agent (it asks the kernel
// first): the `bridge` key, else a host interface sysfs shows to be a bridge; "" for ptp.
std::string bridgeOf(const std::vector<ResultInterface>& interfaces, const NetConf& conf,
                     const Options& options) {
  if (!conf.bridge.empty()) {
    return conf.bridge;
  }
  for (const auto& entry : interfaces) {
    if (entry.sandbox.empty() && sysfsSaysBridge(options, entry.name)) {
      return entry.name;
    }
  }
  return "";
}

// The container's addresses, without prefix length. An address without an interface index
// (an IPAM-style result) is taken as the container's: leaving it out would make the agent's
// anti-spoofing drop the container's own traffic.
nlohmann::json containerIps(const Json& prevResult, size_t containerIndex) {
  nlohmann::json ips = nlohmann::json::array();
  const auto found = prevResult.find("ips");
  if (found == prevResult.end() || !found->is_array()) {
    return ips;
  }
  for (size_t i = 0; i < found->size(); ++i) {
    const Json& entry = (*found)[i];
    const std::string where = "prevResult.ips[" + std::to_string(i) + "]";
    if (!entry.is_object() || stringField(entry, "address").empty()) {
      fail(ErrorCode::InvalidConfig, where + " has no address");
    }
    if (entry.contains("interface")) {
      if (!entry["interface"].is_number_integer()) {
        fail(ErrorCode::InvalidConfig, where + ".interface must be an index into interfaces");
      }
      if (entry["interface"].get<int64_t>() != static_cast<int64_t>(containerIndex)) {
        continue;
      }
    }
    const std::string address = stringField(entry, "address");
    ips.push_back(address.substr(0, address.find('/')));
  }
  return ips;
}

// The previous result as this plugin's result, in the configuration's cniVersion.
Json resultOf(const NetConf& conf) {
  Json result = Json::object();
  result["cniVersion"] = conf.cniVersion;
  for (const auto& [key, value] : conf.prevResult.items()) {
    if (key != "cniVersion") {
      result[key] = value;
    }
  }
  return result;
}

// The agent's reason when it says no.
std::string agentError(const nlohmann::json& reply) {
  if (reply.is_object() && reply.contains("error") && reply["error"].is_string()) {
    return reply["error"].get<std::string>();
  }
  return "no reason given";
}

bool agentOk(const nlohmann::json& reply) {
  return text::boolMember(reply, "ok").value_or(false);
}

struct Target {
  std::string name;
  std::string hostVeth;
  size_t containerIndex = 0;
  std::vector<ResultInterface> interfaces;
};

Target targetOf(const NetConf& conf, const Invocation& invocation, const Options& options) {
  if (conf.prevResult.is_null()) {
    fail(ErrorCode::InvalidConfig, "no prevResult in the network configuration", ChainHint);
  }
  Target target;
  target.name = endpointName(invocation);
  target.interfaces = interfacesOf(conf.prevResult);
  target.containerIndex = containerInterface(target.interfaces, invocation);
  target.hostVeth = hostVeth(target.interfaces, conf, invocation, options);
  return target;
}

Outcome add(const NetConf& conf, const Invocation& invocation, const Options& options) {
  const Target target = targetOf(conf, invocation, options);
  nlohmann::json labels = nlohmann::json::object();
  for (const auto& [key, value] : conf.labels) {
    labels[key] = value;
  }
  // What the runtime says about the pod is a fact; it wins over a configured label.
  const auto podNamespace = invocation.args.find("K8S_POD_NAMESPACE");
  if (podNamespace != invocation.args.end() && !podNamespace->second.empty()) {
    labels[PodNamespaceLabel] = podNamespace->second;
  }
  nlohmann::json macs = nlohmann::json::array();
  if (const std::string mac = target.interfaces[target.containerIndex].mac; !mac.empty()) {
    macs.push_back(mac);
  }
  const nlohmann::json request = {{"command", "attach"},
                                  {"endpoint",
                                   {{"name", target.name},
                                    {"interface", target.hostVeth},
                                    {"labels", labels},
                                    {"networks", nlohmann::json::array({conf.name})},
                                    {"ips", containerIps(conf.prevResult, target.containerIndex)},
                                    {"macs", macs},
                                    {"bridge", bridgeOf(target.interfaces, conf, options)},
                                    {"netns", invocation.netns},
                                    {"containerInterface", invocation.ifname},
                                    {"containerId", invocation.containerId}}}};
  std::string error;
  const nlohmann::json reply =
      api::callApi(conf.agentSocket, request, &error, options.apiTimeoutSeconds);
  Outcome outcome;
  if (reply.is_null() || !agentOk(reply)) {
    const bool unreachable = reply.is_null();
    const std::string problem = unreachable
                                    ? "the bulkhead agent is not reachable: " + error
                                    : "the bulkhead agent refused endpoint '" + target.name +
                                          "' on " + target.hostVeth + ": " + agentError(reply);
    if (conf.failurePolicy == FailurePolicy::Closed) {
      fail(unreachable ? ErrorCode::TryAgainLater : ErrorCode::Failed, problem,
           "failurePolicy is closed: the container does not start unprotected");
    }
    outcome.err = "bulkhead-cni: warning: " + problem + "; container '" + target.name +
                  "' runs unprotected (failurePolicy open)\n";
  }
  outcome.out = dump(resultOf(conf));
  return outcome;
}

Outcome del(const NetConf& conf, const Invocation& invocation, const Options& options) {
  const std::string name = endpointName(invocation);
  std::string error;
  // One network's DEL takes away that network's interface; the endpoint goes with its last.
  const nlohmann::json reply = api::callApi(
      conf.agentSocket, {{"command", "detach"}, {"name", name}, {"interface", invocation.ifname}},
      &error, options.apiTimeoutSeconds);
  Outcome outcome;
  if (reply.is_null()) {
    // No agent, no endpoint: whatever it held went with it, and a restarted agent starts empty.
    outcome.err = "bulkhead-cni: the bulkhead agent is not reachable (" + error +
                  "); nothing to detach for '" + name + "'\n";
    return outcome;
  }
  if (agentOk(reply)) {
    return outcome;
  }
  // The agent's wording for an unknown name or interface (Agent::detach): DEL must be
  // idempotent.
  const std::string reason = agentError(reply);
  if (reason.starts_with("no endpoint named ") ||
      reason.find("has no interface") != std::string::npos) {
    return outcome;
  }
  const std::string problem = "the bulkhead agent could not detach '" + name + "': " + reason;
  if (conf.failurePolicy == FailurePolicy::Closed) {
    fail(ErrorCode::Failed, problem);
  }
  outcome.err = "bulkhead-cni: warning: " + problem + " (failurePolicy open)\n";
  return outcome;
}

Outcome check(const NetConf& conf, const Invocation& invocation, const Options& options) {
  const Target target = targetOf(conf, invocation, options);
  std::string error;
  const nlohmann::json reply =
      api::callApi(conf.agentSocket, {{"command", "status"}}, &error, options.apiTimeoutSeconds);
  Outcome outcome;
  if (reply.is_null()) {
    const std::string problem = "the bulkhead agent is not reachable: " + error;
    if (conf.failurePolicy == FailurePolicy::Closed) {
      fail(ErrorCode::TryAgainLater, problem,
           "failurePolicy is closed: a container the agent cannot vouch for fails CHECK");
    }
    outcome.err = "bulkhead-cni: warning: " + problem + "; container '" + target.name +
                  "' is not checked (failurePolicy open)\n";
    return outcome;
  }
  if (!agentOk(reply)) {
    fail(ErrorCode::Failed, "the bulkhead agent's status failed: " + agentError(reply));
  }
  static const nlohmann::json none = nlohmann::json::array();
  const auto* endpoints = text::arrayMember(reply, "endpoints");
  for (const auto& endpoint : endpoints != nullptr ? *endpoints : none) {
    if (text::stringMember(endpoint, "name") != target.name) {
      continue;
    }
    std::string interfaces;
    const auto* attachments = text::arrayMember(endpoint, "attachments");
    for (const auto& attachment : attachments != nullptr ? *attachments : none) {
      const std::string interface = text::stringMember(attachment, "interface");
      if (interface == target.hostVeth) {
        return outcome;
      }
      interfaces += (interfaces.empty() ? "'" : ", '") + interface + "'";
    }
    fail(ErrorCode::Failed,
         "endpoint '" + target.name + "' is attached on " + interfaces + ", not on '" +
             target.hostVeth + "'",
         "another container's endpoint has this name, or the agent was given it by hand");
  }
  fail(ErrorCode::Failed, "endpoint '" + target.name + "' is not attached to the bulkhead agent",
       "expected on " + target.hostVeth +
           "; was the agent restarted since ADD, or did ADD pass under failurePolicy open?");
}

Outcome versionOutcome() {
  Json answer = Json::object();
  answer["cniVersion"] = CurrentVersion;
  answer["supportedVersions"] = SupportedVersions;
  return {dump(answer), "", 0};
}

}  // namespace

Outcome run(const Environment& env, const std::string& input, const Options& options) {
  // Errors are reported in the configuration's version once it is known to be one we speak.
  std::string errorVersion = CurrentVersion;
  try {
    const std::string commandName = variable(env, "CNI_COMMAND");
    if (commandName.empty()) {
      fail(ErrorCode::InvalidEnvironment, "CNI_COMMAND is not set",
           "bulkhead-cni is run by a container runtime with CNI_COMMAND set to ADD, DEL, CHECK "
           "or VERSION; see docs/cni.md");
    }
    if (commandName == "VERSION") {
      return versionOutcome();
    }
    Command command = Command::Add;
    if (commandName == "ADD") {
      command = Command::Add;
    } else if (commandName == "DEL") {
      command = Command::Del;
    } else if (commandName == "CHECK") {
      command = Command::Check;
    } else {
      fail(ErrorCode::InvalidEnvironment, "CNI_COMMAND '" + commandName + "' is not supported",
           "bulkhead-cni implements ADD, DEL, CHECK and VERSION");
    }
    const Json config = parseInput(input);
    if (!config.is_object()) {
      fail(ErrorCode::DecodeFailure,
           "the network configuration must be a JSON object, not " + shortDump(config));
    }
    errorVersion = checkVersion(config);
    const NetConf conf = parseNetConf(config, errorVersion, command != Command::Del);
    const Invocation invocation = parseEnvironment(env, command);
    switch (command) {
      case Command::Add:
        return add(conf, invocation, options);
      case Command::Del:
        return del(conf, invocation, options);
      case Command::Check:
        return check(conf, invocation, options);
    }
    fail(ErrorCode::Failed, "unreachable command");
  } catch (const CniError& error) {
    return errorOutcome(errorVersion, error);
  } catch (const std::exception& e) {
    return errorOutcome(errorVersion, {ErrorCode::Failed, "bulkhead-cni failed", e.what()});
  }
}

}  // namespace bulkhead::cni
