// bulkhead policy explain: the verdict of the policy in force on a described flow, and why.
#include <boost/program_options.hpp>

#include <iostream>

#include "cli/agent_call.h"
#include "cli/commands.h"
#include "controlplane/endpoint_loader.h"
#include "controlplane/flow_question.h"
#include "dpi/protocol_catalog.h"
#include "rules/policy_loader.h"
#include "text/json_text.h"
#include "text/untrusted_json.h"
#include "text/utf8_escape.h"

namespace bulkhead::cli {
namespace po = boost::program_options;

int explainCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  po::options_description options(
      "bulkhead policy explain --from ENDPOINT --to ENDPOINT --port P [options]\n"
      "The policy in force's verdict on such a flow (or, with --policy, that of policy files), "
      "and\n"
      "for a denial the rule that came closest and what it did not match. ENDPOINT: an\n"
      "endpoint's name, labels (app=web,tier=front), world or host");
  options.add_options()("from", po::value<std::string>(), "the initiator (required)")(
      "policy,p", po::value<std::vector<std::string>>(),
      "judge by these policy files or directories instead of asking the agent (repeatable)")(
      "endpoints,e", po::value<std::string>(),
      "with --policy: an endpoints file (as simulate's) naming endpoints and their labels")(
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
  const bool offline = parsed.vm.count("policy") > 0;
  if (parsed.vm.count("endpoints") && !offline) {
    err << "bulkhead policy explain: --endpoints goes with --policy (the agent knows its own)\n";
    return ExitUsage;
  }
  nlohmann::json reply;
  if (offline) {
    const dpi::NdpiProtocolCatalog catalog;
    const auto loaded =
        rules::loadPolicies(parsed.vm["policy"].as<std::vector<std::string>>(), catalog);
    for (const auto& error : loaded.errors) {
      err << rules::format(error) << "\n";
    }
    if (!loaded.ok()) {
      return loaded.ioFailure ? ExitUsage : ExitInvalid;
    }
    std::vector<controlplane::KnownEndpoint> endpoints;
    if (parsed.vm.count("endpoints")) {
      const auto file = controlplane::loadEndpoints(parsed.vm["endpoints"].as<std::string>());
      for (const auto& error : file.errors) {
        err << rules::format(error) << "\n";
      }
      if (!file.ok()) {
        return file.ioFailure ? ExitUsage : ExitInvalid;
      }
      for (const auto& endpoint : file.endpoints) {
        endpoints.push_back(
            {endpoint.name, endpoint.labels,
             endpoint.ips.empty() ? std::nullopt : std::optional(endpoint.ips.front())});
      }
    }
    reply = controlplane::answerFlowQuestion(request, loaded.set, endpoints, catalog, 0);
  } else {
    reply = call(parsed.vm, request, err, "policy explain");
    if (reply.is_null()) {
      return ExitUsage;
    }
  }
  std::string verdict = reply.value("verdict", "");
  std::string line =
      verdict + " by " + reply.value("rule", "") + " (" + reply.value("mode", "") +
      (offline ? ", policy files"
               : ", generation " + std::to_string(reply.value("policyGeneration", 0))) +
      ")";
  if (reply.contains("deniedBy")) {
    line += ", denied by " + reply.value("deniedBy", "");
  }
  if (reply.contains("reason")) {
    line += ": " + reply.value("reason", "");
  }
  return finish(reply, parsed.vm, out, err, "policy explain",
                text::escapeBytes(line, text::Escape::InvalidUtf8AndControls));
}

}  // namespace bulkhead::cli
