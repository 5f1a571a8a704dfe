// bulkhead policy explain: the verdict of the policy in force on a described flow, and why.
#include <boost/program_options.hpp>

#include <iostream>

#include "cli/agent_call.h"
#include "cli/commands.h"
#include "text/json_text.h"
#include "text/untrusted_json.h"
#include "text/utf8_escape.h"

namespace bulkhead::cli {
namespace po = boost::program_options;

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

}  // namespace bulkhead::cli
