#include <boost/program_options.hpp>

#include <iostream>

#include "cli/commands.h"
#include "dpi/protocol_catalog.h"
#include "rules/policy_loader.h"

namespace bulkhead::cli {
namespace po = boost::program_options;

namespace {

std::string describePorts(const rules::PortRule& rule) {
  std::string out;
  for (const auto& port : rule.ports) {
    out += out.empty() ? "" : ",";
    if (port.first == 0 && port.last == 65535) {
      out += "any";
    } else if (port.first == port.last) {
      out += std::to_string(port.first);
    } else {
      out += std::to_string(port.first) + "-" + std::to_string(port.last);
    }
    out += std::string("/") + rules::toString(port.protocol);
  }
  if (rule.l7) {
    for (const auto& protocol : rule.l7->protocols) {
      out += (out.empty() ? "" : " ") + protocol;
    }
    for (const auto& host : rule.l7->hosts) {
      out += " host=" + host;
    }
  }
  return out.empty() ? "any" : out;
}

void summarise(const rules::Policy& policy, std::ostream& out) {
  out << "  " << policy.name << " (" << rules::toString(policy.mode)
      << "): selects {" << policy.endpointSelector.toString() << "}\n";
  const auto directions = {std::pair{"ingress", &policy.ingress},
                           std::pair{"egress", &policy.egress}};
  for (const auto& [name, rulesOf] : directions) {
    if (!*rulesOf) {
      continue;
    }
    if ((*rulesOf)->empty()) {
      out << "    " << name << ": deny all\n";
    }
    for (size_t index = 0; index < (*rulesOf)->size(); ++index) {
      const auto& rule = (**rulesOf)[index];
      std::string peers;
      for (const auto& selector : rule.endpoints) {
        peers += (peers.empty() ? "" : " ") + std::string("{") + selector.toString() + "}";
      }
      for (const auto entity : rule.entities) {
        peers += (peers.empty() ? "" : " ") + std::string(rules::toString(entity));
      }
      for (const auto& cidr : rule.cidrs) {
        peers += (peers.empty() ? "" : " ") + cidr.toString();
      }
      std::string ports;
      for (const auto& portRule : rule.toPorts) {
        ports += (ports.empty() ? "" : "; ") + describePorts(portRule);
      }
      out << "    " << name << "[" << index << "]: " << (peers.empty() ? "any peer" : peers)
          << " on " << (ports.empty() ? "any port" : ports) << "\n";
    }
  }
}

}  // namespace

int policyCheckCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  po::options_description options("bulkhead policy check PATH... (files or directories)");
  options.add_options()("help,h", "show this help")(
      "quiet,q", "print nothing when the policy is valid");
  po::options_description hidden;
  hidden.add_options()("path", po::value<std::vector<std::string>>(), "policy path");
  po::options_description all;
  all.add(options).add(hidden);
  po::positional_options_description positional;
  positional.add("path", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    err << "bulkhead policy check: " << e.what() << "\n" << options;
    return ExitUsage;
  }
  if (vm.count("help")) {
    out << options;
    return ExitOk;
  }
  if (!vm.count("path")) {
    err << "bulkhead policy check: give at least one policy file or directory\n" << options;
    return ExitUsage;
  }
  const dpi::NdpiProtocolCatalog catalog;
  const auto result = rules::loadPolicies(vm["path"].as<std::vector<std::string>>(), catalog);
  for (const auto& error : result.errors) {
    err << rules::format(error) << "\n";
  }
  if (result.ioFailure) {
    return ExitUsage;
  }
  if (!result.ok()) {
    err << result.errors.size() << (result.errors.size() == 1 ? " error" : " errors") << "\n";
    return ExitInvalid;
  }
  if (!vm.count("quiet")) {
    out << "valid: " << result.set.policies.size() << " "
        << (result.set.policies.size() == 1 ? "policy" : "policies") << " in "
        << result.set.sources.size() << (result.set.sources.size() == 1 ? " file" : " files")
        << "\n";
    for (const auto& policy : result.set.policies) {
      summarise(policy, out);
    }
  }
  return ExitOk;
}

}  // namespace bulkhead::cli
