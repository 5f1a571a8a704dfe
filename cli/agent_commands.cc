// Commands that talk to a running bulkheadd over its API socket.
#include <boost/program_options.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "api/client.h"
#include "cli/agent_call.h"
#include "cli/commands.h"
#include "cli/policy_summary.h"
#include "dpi/protocol_catalog.h"
#include "rules/policy_loader.h"
#include "text/json_text.h"
#include "text/untrusted_json.h"
#include "text/utf8_escape.h"

namespace bulkhead::cli {
namespace po = boost::program_options;

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

// bulkhead policy apply PATH...: the documents, validated here first for errors in the operator's
// own terms, then sent whole to the agent, which validates them against the cluster's and puts
// them in etcd for every host (docs/multihost.md, "Cluster policy").
int policyApplyCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  po::options_description options("bulkhead policy apply PATH... [--socket PATH]");
  options.add_options()("path", po::value<std::vector<std::string>>(),
                        "policy files or directories (*.yaml, *.yml)");
  po::positional_options_description positional;
  positional.add("path", -1);
  const auto parsed = parse(args, options, positional, out, err, "policy apply");
  if (parsed.exitCode >= 0) {
    return parsed.exitCode;
  }
  if (!parsed.vm.count("path")) {
    err << "bulkhead policy apply: give the policy files or directories to apply\n";
    return ExitUsage;
  }
  std::vector<std::string> files;
  for (const auto& path : parsed.vm["path"].as<std::vector<std::string>>()) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      const auto inside = rules::policyFilesIn(path, ec);
      files.insert(files.end(), inside.begin(), inside.end());
    } else {
      files.push_back(path);
    }
  }
  const dpi::NdpiProtocolCatalog catalog;
  const auto checked = rules::loadPolicies(files, catalog);
  for (const auto& error : checked.errors) {
    err << text::escapeBytes(rules::format(error), text::Escape::InvalidUtf8AndControls) << "\n";
  }
  if (!checked.ok()) {
    return checked.ioFailure ? ExitUsage : ExitInvalid;
  }
  nlohmann::json request{{"command", "policy-apply"}, {"files", nlohmann::json::array()}};
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    request["files"].push_back({{"name", file}, {"text", text.str()}});
  }
  if (request.dump().size() > text::ApiRequestLimits.maxBytes) {
    err << "bulkhead policy apply: the documents are larger than one request may be ("
        << text::ApiRequestLimits.maxBytes << " bytes); apply them in parts\n";
    return ExitInvalid;
  }
  const auto reply = call(parsed.vm, request, err, "policy apply");
  if (reply.is_null()) {
    return ExitUsage;
  }
  std::string names;
  for (const auto& name : reply.value("policies", nlohmann::json::array())) {
    names += (names.empty() ? "" : ", ") + (name.is_string() ? name.get<std::string>() : "?");
  }
  return finish(reply, parsed.vm, out, err, "policy apply",
                "applied to the cluster at revision " +
                    std::to_string(reply.value("revision", int64_t{0})) + ": " + names);
}

int policyDeleteCommand(const std::vector<std::string>& args, std::ostream& out,
                        std::ostream& err) {
  po::options_description options("bulkhead policy delete NAME [--socket PATH]");
  options.add_options()("name", po::value<std::string>(), "the policy's name");
  po::positional_options_description positional;
  positional.add("name", 1);
  const auto parsed = parse(args, options, positional, out, err, "policy delete");
  if (parsed.exitCode >= 0) {
    return parsed.exitCode;
  }
  if (!parsed.vm.count("name")) {
    err << "bulkhead policy delete: give the name of the cluster policy to delete\n";
    return ExitUsage;
  }
  const std::string name = parsed.vm["name"].as<std::string>();
  const auto reply =
      call(parsed.vm, {{"command", "policy-delete"}, {"name", name}}, err, "policy delete");
  if (reply.is_null()) {
    return ExitUsage;
  }
  return finish(reply, parsed.vm, out, err, "policy delete",
                "deleted from the cluster at revision " +
                    std::to_string(reply.value("revision", int64_t{0})) + ": " + name);
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
    if (const std::string reason = text::stringMember(flow, "reason"); !reason.empty()) {
      line += ": " + reason;
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
