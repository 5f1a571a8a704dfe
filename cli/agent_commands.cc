// Commands that talk to a running bulkheadd over its API socket.
#include <boost/program_options.hpp>

#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <thread>

#include "api/client.h"
#include "cli/commands.h"
#include "cli/policy_summary.h"
#include "cli/service_map.h"
#include "dpi/protocol_catalog.h"
#include "rules/policy_loader.h"
#include "text/json_text.h"
#include "text/untrusted_json.h"
#include "text/utf8_escape.h"

namespace bulkhead::cli {
namespace po = boost::program_options;

namespace {

// $BULKHEAD_SOCKET, so that an operator of an agent elsewhere need not repeat --socket.
std::string defaultSocket() {
  const char* fromEnvironment = std::getenv("BULKHEAD_SOCKET");
  return fromEnvironment != nullptr && *fromEnvironment != '\0' ? fromEnvironment
                                                                : "/run/bulkhead/api.sock";
}

struct Parsed {
  po::variables_map vm;
  int exitCode = -1;  // set when parsing already decided the outcome
};

Parsed parse(const std::vector<std::string>& args, po::options_description& options,
             const po::positional_options_description& positional, std::ostream& out,
             std::ostream& err, const std::string& name) {
  options.add_options()("help,h", "show this help")(
      "socket", po::value<std::string>()->default_value(defaultSocket()),
      "the agent's API socket ($BULKHEAD_SOCKET overrides the default)")(
      "json", "print the agent's answer as JSON");
  Parsed parsed;
  try {
    po::store(po::command_line_parser(args).options(options).positional(positional).run(),
              parsed.vm);
    po::notify(parsed.vm);
  } catch (const po::error& e) {
    err << "bulkhead " << name << ": " << e.what() << "\n" << options;
    parsed.exitCode = ExitUsage;
    return parsed;
  }
  if (parsed.vm.count("help")) {
    out << options;
    parsed.exitCode = ExitOk;
  }
  return parsed;
}

// Sends the request; prints errors. Null when the agent could not be asked.
nlohmann::json call(const po::variables_map& vm, const nlohmann::json& request, std::ostream& err,
                    const std::string& name) {
  std::string error;
  auto reply = api::callApi(vm["socket"].as<std::string>(), request, &error);
  if (reply.is_null()) {
    err << "bulkhead " << name << ": " << error << "\n";
  }
  return reply;
}

int finish(const nlohmann::json& reply, const po::variables_map& vm, std::ostream& out,
           std::ostream& err, const std::string& name, const std::string& done) {
  if (vm.count("json")) {
    out << text::dumpJson(reply) << "\n";
  }
  if (!reply.value("ok", false)) {
    err << "bulkhead " << name << ": " << reply.value("error", std::string("failed")) << "\n";
    for (const auto& line : reply.value("errors", nlohmann::json::array())) {
      err << line.get<std::string>() << "\n";
    }
    return ExitInvalid;
  }
  if (!vm.count("json")) {
    out << done << "\n";
  }
  return ExitOk;
}

}  // namespace

int statusCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  po::options_description options("bulkhead status [--json] [--socket PATH]");
  const auto parsed = parse(args, options, {}, out, err, "status");
  if (parsed.exitCode >= 0) {
    return parsed.exitCode;
  }
  const auto reply = call(parsed.vm, {{"command", "status"}}, err, "status");
  if (reply.is_null()) {
    return ExitUsage;
  }
  if (parsed.vm.count("json")) {
    out << text::dumpJson(reply) << "\n";
    return ExitOk;
  }
  out << "bulkheadd " << reply.value("version", "?") << " (pid " << reply.value("pid", 0) << "), "
      << reply.value("workers", 0) << " worker(s), policy generation "
      << reply.value("policyGeneration", 0) << "\n";
  const auto& counters = reply["counters"];
  const auto count = [&](const char* key) { return counters.value(key, uint64_t{0}); };
  // Every counter the JSON has, in words: what is dropped must not hide behind the totals.
  out << "packets: " << count("rxPackets") << " received, " << count("txPackets") << " sent, "
      << count("txDropped") << " lost on the way out, " << count("flooded") << " flooded ("
      << count("floodCopiesLost") << " copies lost)\n";
  out << "dropped:";
  uint64_t droppedTotal = 0;
  const auto dropped = counters.value("dropped", nlohmann::json::object());
  for (const auto& [reason, value] : dropped.items()) {
    if (value.is_number_unsigned() && value.get<uint64_t>() != 0) {
      out << " " << text::escapeBytes(reason, text::Escape::InvalidUtf8AndControls) << " "
          << value.get<uint64_t>() << ",";
      droppedTotal += value.get<uint64_t>();
    }
  }
  out << (droppedTotal == 0 ? " nothing by policy," : "") << " spoofed " << count("spoofDropped")
      << ", blocked endpoint " << count("blockedDropped") << ", no route " << count("noRoute")
      << ", untagged " << count("untagged") << ", the host's own " << count("hostFrames") << "\n";
  out << "verdicts: " << count("resetsSent") << " TCP resets sent, " << count("rejectsSent")
      << " rejected senders told (" << count("rejectsLimited") << " held back by the rate limit), "
      << count("monitoredViolations") << " violations passed in monitor mode, "
      << count("violationsQueued") << " violation events (" << count("violationsLost") << " lost, "
      << count("violationsSuppressed") << " held back by the interval)\n";
  out << "flows: " << count("flows") << " tracked, " << count("flowsCreated") << " created, "
      << count("flowsEvicted") << " evicted; held for inspection " << count("held") << " ("
      << count("heldReleasedLate") << " released late, " << count("holdFull")
      << " with the hold full)\n";
  out << "idle: " << count("doorbellWaits") << " sleeps on the doorbell, " << count("doorbellRings")
      << " woken by traffic\n";
  if (const auto& log = reply["violationLog"]; log.is_object()) {
    out << "violation log: "
        << text::escapeBytes(log.value("path", ""), text::Escape::InvalidUtf8AndControls) << ", "
        << log.value("lines", uint64_t{0}) << " lines, " << log.value("writeErrors", uint64_t{0})
        << " write errors\n";
  }
  if (const auto& log = reply["flowLog"]; log.is_object()) {
    out << "flow log: "
        << text::escapeBytes(log.value("path", ""), text::Escape::InvalidUtf8AndControls) << ", "
        << log.value("lines", uint64_t{0}) << " lines, " << log.value("writeErrors", uint64_t{0})
        << " write errors, " << count("flowRecordsLost") << " records lost\n";
  }
  if (const auto& metrics = reply["metrics"]; metrics.is_object()) {
    if (metrics["address"].is_string()) {
      out << "metrics: http://"
          << text::escapeBytes(metrics["address"].get<std::string>(),
                               text::Escape::InvalidUtf8AndControls)
          << "/metrics, " << metrics.value("scrapes", uint64_t{0}) << " scrapes\n";
    } else if (metrics["error"].is_string()) {
      out << "metrics: none ("
          << text::escapeBytes(metrics["error"].get<std::string>(),
                               text::Escape::InvalidUtf8AndControls)
          << ")\n";
    } else {
      out << "metrics: off\n";
    }
  }
  if (const auto workers = reply.value("perWorker", nlohmann::json::array()); workers.size() > 1) {
    for (size_t i = 0; i < workers.size(); ++i) {
      out << "worker " << i << ": " << workers[i].value("rxPackets", 0) << " received, "
          << workers[i].value("flows", 0) << " flows, " << workers[i].value("handedOff", 0)
          << " handed to their owner, " << workers[i].value("fromPeers", 0)
          << " taken from the others\n";
    }
  }
  if (const auto& wire = reply["wire"]; wire.is_object()) {
    out << "wire: trunk " << wire["trunk"].value("kernelEnd", "") << " / "
        << wire["trunk"].value("port", "");
    if (const auto trunks = wire.value("trunks", nlohmann::json::array()); trunks.size() > 1) {
      out << " and " << trunks.size() - 1 << " more, one per worker";
    }
    out << " (" << wire.value("trunkDriver", "") << "), " << wire.value("tagsInUse", 0)
        << " tags in use, quarantine table bridge " << wire.value("quarantine", "") << "\n";
    const auto panel = wire.value("counters", nlohmann::json::object());
    out << "offload: " << wire.value("offload", "none") << ", "
        << panel.value("offloaded", uint64_t{0}) << " frames carried by the wire past the trunk ("
        << panel.value("offloadStale", uint64_t{0}) << " of voided flows sent to the trunk), "
        << count("offloadInstalled") << " directions offloaded, " << count("offloadFailed")
        << " refused, " << count("offloadWithdrawn") << " taken back\n";
  }
  for (const auto& segment : reply.value("segments", nlohmann::json::array())) {
    const std::string bridge = segment.value("bridge", "");
    const std::string uplink = segment.value("uplink", "");
    out << "segment " << segment.value("id", 0) << ": "
        << (bridge.empty() ? std::string("no bridge") : "bridge " + bridge)
        << (uplink.empty() ? std::string(", no uplink")
                           : ", uplink " + uplink + " (tag " +
                                 std::to_string(segment.value("uplinkTag", 0)) + ")")
        << "\n";
  }
  if (const auto& docker = reply["docker"]; docker.is_object()) {
    const auto& networks = docker["networks"];
    std::string scope = "every network";
    if (networks.is_array()) {
      scope = "networks";
      for (const auto& network : networks) {
        scope += " " + network.get<std::string>();
      }
    }
    out << "docker: " << scope << " of " << docker.value("socket", "") << ", "
        << (docker.value("connected", false)
                ? "connected (API " + docker.value("apiVersion", "") + ")"
                : std::string("not connected (retrying)"))
        << "\n";
  }
  out << "fail mode: " << (reply.value("failOpen", false) ? "open" : "closed") << "\n";
  out << "endpoints:\n";
  for (const auto& endpoint : reply["endpoints"]) {
    out << "  "
        << text::escapeBytes(endpoint.value("name", ""), text::Escape::InvalidUtf8AndControls)
        << "  identity " << endpoint.value("identity", 0);
    for (const auto& attachment : endpoint.value("attachments", nlohmann::json::array())) {
      const std::string bridge = attachment.value("bridge", "");
      out << "  " << attachment.value("interface", "") << " (tag " << attachment.value("tag", 0)
          << (bridge.empty() ? std::string("") : ", bridge " + bridge) << ")";
    }
    out << "\n";
  }
  return ExitOk;
}

int reloadCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  po::options_description options("bulkhead policy reload [--socket PATH]");
  const auto parsed = parse(args, options, {}, out, err, "policy reload");
  if (parsed.exitCode >= 0) {
    return parsed.exitCode;
  }
  const auto reply = call(parsed.vm, {{"command", "reload"}}, err, "policy reload");
  if (reply.is_null()) {
    return ExitUsage;
  }
  return finish(
      reply, parsed.vm, out, err, "policy reload",
      "policy reloaded (generation " + std::to_string(reply.value("policyGeneration", 0)) + ")");
}

int explainCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  po::options_description options(
      "bulkhead policy explain --from ENDPOINT --to ENDPOINT --port P [options]\n"
      "The policy in force's verdict on such a flow, and for a denial the rule that came closest\n"
      "and what it did not match. ENDPOINT: an endpoint's name, world or host");
  options.add_options()("from", po::value<std::string>(), "the initiator (required)")(
      "to", po::value<std::string>(), "the responder (required)")(
      "to-ip", po::value<std::string>(), "the responder's address (for world: a CIDR rule)")(
      "port", po::value<unsigned>(), "the destination port")(
      "l4", po::value<std::string>()->default_value("TCP"), "TCP, UDP, SCTP, ICMP or ICMPv6")(
      "protocol", po::value<std::string>(), "the protocol nDPI would prove (HTTP, TLS, ...)")(
      "host", po::value<std::string>(), "with --protocol: the HTTP Host, TLS SNI or DNS name");
  const auto parsed = parse(args, options, {}, out, err, "policy explain");
  if (parsed.exitCode >= 0) {
    return parsed.exitCode;
  }
  if (!parsed.vm.count("from") || !parsed.vm.count("to")) {
    err << "bulkhead policy explain: --from and --to are required\n";
    return ExitUsage;
  }
  if (parsed.vm.count("port") && parsed.vm["port"].as<unsigned>() > 65535) {
    err << "bulkhead policy explain: --port must be 0..65535\n";
    return ExitUsage;
  }
  nlohmann::json request = {{"command", "explain"},
                            {"from", parsed.vm["from"].as<std::string>()},
                            {"to", parsed.vm["to"].as<std::string>()},
                            {"l4", parsed.vm["l4"].as<std::string>()}};
  for (const char* key : {"protocol", "host"}) {
    if (parsed.vm.count(key)) {
      request[key] = parsed.vm[key].as<std::string>();
    }
  }
  if (parsed.vm.count("to-ip")) {
    request["toIp"] = parsed.vm["to-ip"].as<std::string>();
  }
  if (parsed.vm.count("port")) {
    request["port"] = parsed.vm["port"].as<unsigned>();
  }
  const auto reply = call(parsed.vm, request, err, "policy explain");
  if (reply.is_null()) {
    return ExitUsage;
  }
  std::string verdict = reply.value("verdict", "");
  std::string line = verdict + " by " + reply.value("rule", "") + " (" + reply.value("mode", "") +
                     ", generation " + std::to_string(reply.value("policyGeneration", 0)) + ")";
  if (reply.contains("deniedBy")) {
    line += ", denied by " + reply.value("deniedBy", "");
  }
  if (reply.contains("reason")) {
    line += ": " + reply.value("reason", "");
  }
  return finish(reply, parsed.vm, out, err, "policy explain",
                text::escapeBytes(line, text::Escape::InvalidUtf8AndControls));
}

int endpointCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty() || (args[0] != "attach" && args[0] != "detach")) {
    err << "usage: bulkhead endpoint attach NAME --interface IF [--label K=V]... [--ip A]... "
           "[--mac M]...\n       bulkhead endpoint detach NAME [--interface IF]\n";
    return ExitUsage;
  }
  const std::string verb = args[0];
  po::options_description options("bulkhead endpoint " + verb + " NAME [options]");
  options.add_options()("interface,i", po::value<std::string>(),
                        verb == "attach" ? "the endpoint's host-side interface (required)"
                                         : "only this interface of the endpoint (default: all)");
  if (verb == "attach") {
    options.add_options()("label,l", po::value<std::vector<std::string>>(),
                          "label KEY=VALUE (repeatable)")(
        "ip", po::value<std::vector<std::string>>(), "an address the endpoint owns (repeatable)")(
        "mac", po::value<std::vector<std::string>>(), "a MAC the endpoint owns (repeatable)");
  }
  options.add_options()("name", po::value<std::string>(), "endpoint name");
  po::positional_options_description positional;
  positional.add("name", 1);
  const auto parsed =
      parse({args.begin() + 1, args.end()}, options, positional, out, err, "endpoint " + verb);
  if (parsed.exitCode >= 0) {
    return parsed.exitCode;
  }
  const auto& vm = parsed.vm;
  if (!vm.count("name")) {
    err << "bulkhead endpoint " << verb << ": give the endpoint's NAME\n";
    return ExitUsage;
  }
  nlohmann::json request;
  if (verb == "detach") {
    request = {{"command", "detach"}, {"name", vm["name"].as<std::string>()}};
    if (vm.count("interface")) {
      request["interface"] = vm["interface"].as<std::string>();
    }
  } else {
    if (!vm.count("interface")) {
      err << "bulkhead endpoint attach: --interface is required\n";
      return ExitUsage;
    }
    nlohmann::json labels = nlohmann::json::object();
    if (vm.count("label")) {
      for (const auto& label : vm["label"].as<std::vector<std::string>>()) {
        const size_t equals = label.find('=');
        if (equals == std::string::npos || equals == 0) {
          err << "bulkhead endpoint attach: label '" << label << "' is not KEY=VALUE\n";
          return ExitUsage;
        }
        labels[label.substr(0, equals)] = label.substr(equals + 1);
      }
    }
    const auto list = [&](const char* key) {
      return vm.count(key) ? nlohmann::json(vm[key].as<std::vector<std::string>>())
                           : nlohmann::json::array();
    };
    request = {{"command", "attach"},
               {"endpoint",
                {{"name", vm["name"].as<std::string>()},
                 {"interface", vm["interface"].as<std::string>()},
                 {"labels", labels},
                 {"ips", list("ip")},
                 {"macs", list("mac")}}}};
  }
  const auto reply = call(vm, request, err, "endpoint " + verb);
  if (reply.is_null()) {
    return ExitUsage;
  }
  return finish(reply, vm, out, err, "endpoint " + verb,
                "endpoint '" + vm["name"].as<std::string>() + "' " + verb + "ed");
}

namespace {

// "web  app=web,bulkhead.io/name=web" style label lists for tables.
std::string labelText(const nlohmann::json& labels) {
  std::string out;
  for (const auto& [key, value] : labels.items()) {
    out += (out.empty() ? "" : ",") + key + "=" + value.get<std::string>();
  }
  return out;
}

// Shown on a terminal: what a container or an engine named (an endpoint, a host in a reason)
// cannot inject control sequences or fake lines.
std::string shown(const std::string& value) {
  return text::escapeBytes(value, text::Escape::InvalidUtf8AndControls);
}

std::string peerText(const nlohmann::json* peer) {
  static const nlohmann::json none = nlohmann::json::object();
  const nlohmann::json& p = peer != nullptr ? *peer : none;
  const std::string name = text::stringMember(p, "endpoint");
  const std::string ip = text::stringMember(p, "ip");
  std::string out = (name.empty() ? "?" : name) + " " + (ip.empty() ? "-" : ip);
  if (const auto port = text::unsignedMember(p, "port"); port.value_or(0) != 0) {
    out += ":" + std::to_string(*port);
  }
  return out;
}

// One line of the violation log for people. The log is a file anyone with access may have
// edited: nothing in it is assumed to have the right type.
std::string violationText(const nlohmann::json& v) {
  const auto field = [&](const char* key, const char* absent = "") {
    const std::string value = text::stringMember(v, key);
    return value.empty() ? std::string(absent) : value;
  };
  return shown(field("time") + " " + field("action") + " " +
               peerText(text::objectMember(v, "src")) + " -> " +
               peerText(text::objectMember(v, "dst")) + " " + field("l4", "-") + " " +
               field("app_protocol") + " rule=" + field("rule") + ": " + field("reason"));
}

}  // namespace

int endpointsCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  po::options_description options("bulkhead endpoints [--json] [--socket PATH]");
  const auto parsed = parse(args, options, {}, out, err, "endpoints");
  if (parsed.exitCode >= 0) {
    return parsed.exitCode;
  }
  const auto reply = call(parsed.vm, {{"command", "status"}}, err, "endpoints");
  if (reply.is_null()) {
    return ExitUsage;
  }
  if (parsed.vm.count("json")) {
    out << text::dumpJson(reply["endpoints"]) << "\n";
    return ExitOk;
  }
  out << "NAME\tIDENTITY\tSOURCE\tINTERFACES\tTAGS\tIPS\tLABELS\n";
  for (const auto& endpoint : reply["endpoints"]) {
    std::string ips;
    for (const auto& ip : endpoint["ips"]) {
      ips += (ips.empty() ? "" : ",") + ip.get<std::string>();
    }
    std::string interfaces;
    std::string tags;
    for (const auto& attachment : endpoint.value("attachments", nlohmann::json::array())) {
      interfaces += (interfaces.empty() ? "" : ",") + attachment.value("interface", "");
      tags += (tags.empty() ? "" : ",") + std::to_string(attachment.value("tag", 0));
    }
    out << shown(endpoint.value("name", "")) << "\t" << endpoint.value("identity", 0) << "\t"
        << endpoint.value("source", "") << "\t" << shown(interfaces) << "\t" << tags << "\t"
        << (ips.empty() ? "-" : ips) << "\t" << shown(labelText(endpoint["labels"])) << "\n";
  }
  return ExitOk;
}

int graphCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  po::options_description options(
      "bulkhead graph [--format dot|svg|png|plain] [--output FILE] [--group-by LABEL]...\n"
      "The service map of the agent's flows (those open and those that ended lately)");
  options.add_options()("format", po::value<std::string>()->default_value("dot"),
                        "dot (Graphviz source), svg, png or plain (rendered by Graphviz's dot)")(
      "output,o", po::value<std::string>(), "write it here (png needs it); default stdout")(
      "group-by", po::value<std::vector<std::string>>(),
      "label that names a workload (repeatable, first found wins; default app, "
      "com.docker.compose.service, io.kubernetes.container.name)");
  const auto parsed = parse(args, options, {}, out, err, "graph");
  if (parsed.exitCode >= 0) {
    return parsed.exitCode;
  }
  const std::string format = parsed.vm["format"].as<std::string>();
  if (format != "dot" && format != "svg" && format != "png" && format != "plain") {
    err << "bulkhead graph: --format must be dot, svg, png or plain\n";
    return ExitUsage;
  }
  const std::string output = parsed.vm.count("output") ? parsed.vm["output"].as<std::string>() : "";
  if (format == "png" && output.empty()) {
    err << "bulkhead graph: --format png needs --output FILE\n";
    return ExitUsage;
  }
  const auto status = call(parsed.vm, {{"command", "status"}}, err, "graph");
  const auto flows =
      status.is_null() ? status : call(parsed.vm, {{"command", "flows"}}, err, "graph");
  if (flows.is_null()) {
    return ExitUsage;
  }
  cli::EndpointLabels labels;
  for (const auto& endpoint : status.value("endpoints", nlohmann::json::array())) {
    auto& into = labels[text::stringMember(endpoint, "name")];
    if (const auto* map = text::objectMember(endpoint, "labels")) {
      for (const auto& [key, value] : map->items()) {
        if (value.is_string()) {
          into[key] = value.get<std::string>();
        }
      }
    }
  }
  const std::string dot =
      parsed.vm.count("group-by")
          ? cli::serviceMapDot(flows["flows"], labels,
                               parsed.vm["group-by"].as<std::vector<std::string>>())
          : cli::serviceMapDot(flows["flows"], labels);
  if (format == "dot") {
    if (output.empty()) {
      out << dot;
      return ExitOk;
    }
    std::ofstream file(output);
    file << dot;
    if (!file.flush()) {
      err << "bulkhead graph: cannot write " << output << "\n";
      return ExitUsage;
    }
    return ExitOk;
  }
  out.flush();
  std::string error;
  if (!cli::renderGraph(dot, format, output, &error)) {
    err << "bulkhead graph: " << error << "\n";
    return ExitUsage;
  }
  return ExitOk;
}

int flowsCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  po::options_description options("bulkhead flows [--json] [--socket PATH]");
  const auto parsed = parse(args, options, {}, out, err, "flows");
  if (parsed.exitCode >= 0) {
    return parsed.exitCode;
  }
  const auto reply = call(parsed.vm, {{"command", "flows"}}, err, "flows");
  if (reply.is_null()) {
    return ExitUsage;
  }
  if (parsed.vm.count("json")) {
    out << text::dumpJson(reply["flows"]) << "\n";
    return ExitOk;
  }
  for (const auto& flow : reply["flows"]) {
    const std::string master = flow.value("master_protocol", "");
    const std::string app = flow.value("app_protocol", "");
    const std::string judged = flow.value("protocol", "");
    std::string line = flow.value("l4", "") + " " + peerText(text::objectMember(flow, "src")) +
                       " -> " + peerText(text::objectMember(flow, "dst")) + " " + master + "." +
                       app;
    if (!judged.empty() && judged != (master == app ? app : master + "." + app)) {
      line += " (judged as " + judged + ")";
    }
    if (const std::string host = flow.value("host", ""); !host.empty()) {
      line += " host=" + host;
    }
    // A monitor-mode denial passes: say so, as `simulate` does, not a bare "deny".
    std::string verdict = flow.value("verdict", "");
    if (verdict == "deny" && !flow.value("enforced", true)) {
      verdict = "deny(monitor)";
    }
    line += " " + flow.value("state", "") + " " + verdict + " " + flow.value("rule", "") +
            " packets=" + std::to_string(flow.value("packets", uint64_t{0})) +
            " bytes=" + std::to_string(flow.value("bytes", uint64_t{0}));
    if (flow.value("offloaded", false)) {
      line += " offloaded";
    }
    if (flow.value("ended", false)) {
      line += " (ended)";
    }
    out << shown(line) << "\n";
  }
  return ExitOk;
}

int identitiesCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  po::options_description options("bulkhead identities [--json] [--socket PATH]");
  const auto parsed = parse(args, options, {}, out, err, "identities");
  if (parsed.exitCode >= 0) {
    return parsed.exitCode;
  }
  const auto reply = call(parsed.vm, {{"command", "identities"}}, err, "identities");
  if (reply.is_null()) {
    return ExitUsage;
  }
  if (parsed.vm.count("json")) {
    out << text::dumpJson(reply["identities"]) << "\n";
    return ExitOk;
  }
  out << "IDENTITY\tENDPOINTS\tLABELS\n";
  for (const auto& identity : reply["identities"]) {
    std::string endpoints;
    for (const auto& name : identity["endpoints"]) {
      endpoints += (endpoints.empty() ? "" : ",") + name.get<std::string>();
    }
    out << identity.value("id", 0) << "\t" << shown(endpoints.empty() ? "-" : endpoints) << "\t"
        << shown(labelText(identity["labels"])) << "\n";
  }
  return ExitOk;
}

int policyShowCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  po::options_description options("bulkhead policy show [--json] [--socket PATH]");
  const auto parsed = parse(args, options, {}, out, err, "policy show");
  if (parsed.exitCode >= 0) {
    return parsed.exitCode;
  }
  const auto reply = call(parsed.vm, {{"command", "policy"}}, err, "policy show");
  if (reply.is_null()) {
    return ExitUsage;
  }
  if (parsed.vm.count("json")) {
    out << text::dumpJson(reply) << "\n";
    return ExitOk;
  }
  out << "generation " << reply.value("policyGeneration", 0) << ", sha256 "
      << reply.value("policySha256", "") << "\n";
  std::vector<std::string> files;
  for (const auto& file : reply["files"]) {
    files.push_back(file);
    out << "  " << file.get<std::string>() << "\n";
  }
  // The files as they are now; the digest above says whether they still are what is enforced.
  const dpi::NdpiProtocolCatalog catalog;
  const auto loaded = rules::loadPolicies(files, catalog);
  for (const auto& policy : loaded.set.policies) {
    summarisePolicy(policy, out);
  }
  return ExitOk;
}

int violationsCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  po::options_description options(
      "bulkhead violations [--follow] [--json] [--socket PATH]\n"
      "Prints the agent's violation log; --follow keeps printing new lines (Ctrl-C ends)");
  options.add_options()("follow,f", "keep printing lines as they are written");
  const auto parsed = parse(args, options, {}, out, err, "violations");
  if (parsed.exitCode >= 0) {
    return parsed.exitCode;
  }
  const auto reply = call(parsed.vm, {{"command", "status"}}, err, "violations");
  if (reply.is_null()) {
    return ExitUsage;
  }
  const std::string path = reply["violationLog"].value("path", "");
  if (path == "stdout" || path.starts_with("syslog ")) {
    err << "bulkhead violations: the agent writes its violations to " << path
        << ", not to a file; read them there\n";
    return ExitUsage;
  }
  const bool json = parsed.vm.count("json") > 0;
  const bool follow = parsed.vm.count("follow") > 0;
  std::ifstream in;
  ino_t inode = 0;
  const auto reopen = [&] {
    in.close();
    in.clear();
    in.open(path);
    struct stat info = {};
    inode = ::stat(path.c_str(), &info) == 0 ? info.st_ino : 0;
    return in.is_open();
  };
  if (!reopen()) {
    err << "bulkhead violations: cannot read " << path << "\n";
    return ExitUsage;
  }
  std::string line;
  for (;;) {
    while (std::getline(in, line)) {
      if (json) {
        out << line << "\n";
      } else {
        const auto parsedLine = nlohmann::json::parse(line, nullptr, false);
        out << (parsedLine.is_object() ? violationText(parsedLine) : shown(line)) << "\n";
      }
    }
    out.flush();
    if (!follow) {
      return ExitOk;
    }
    in.clear();  // at the end: wait for more, and follow a rotation to the new file
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    struct stat info = {};
    if (::stat(path.c_str(), &info) == 0 && info.st_ino != inode) {
      reopen();
    }
  }
}

}  // namespace bulkhead::cli
