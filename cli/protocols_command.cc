// `bulkhead protocols`: the application protocols a rule may name, and what a rule naming each
// one can rely on (docs/policy.md, "What a protocol rule matches").
#include <boost/program_options.hpp>

#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "dpi/protocol_catalog.h"
#include "dpi/proven_protocols.h"
#include "text/json_text.h"

namespace bulkhead::cli {
namespace po = boost::program_options;

namespace {

std::string ports(const std::vector<uint16_t>& list) {
  std::string out;
  for (uint16_t port : list) {
    out += (out.empty() ? "" : ",") + std::to_string(port);
  }
  return out;
}

struct Row {
  std::string name;
  std::string judged;    // "as itself", "as TLS", "never (decided by port)"
  std::string standing;  // inspected | named-by-port | decided-by-port
  std::string how;
  bool namedByHost = false;
  const dpi::ProvenProtocol* proven = nullptr;
  std::string tcp;
  std::string udp;
};

Row describe(const dpi::NdpiProtocolCatalog& catalog, uint16_t id) {
  Row row;
  row.name = catalog.name(id);
  const rules::ProtocolStanding standing = catalog.standing(id, 0);
  row.how = standing.how;
  row.namedByHost = standing.namedByHost;
  switch (standing.kind) {
    case rules::ProtocolStanding::Kind::Inspected:
      row.standing = "inspected";
      row.judged = "itself";
      break;
    case rules::ProtocolStanding::Kind::NamedByPort:
      row.standing = "named-by-port";
      row.judged = standing.provenAs;
      break;
    case rules::ProtocolStanding::Kind::DecidedByPort:
      row.standing = "decided-by-port";
      row.judged = standing.namedByHost ? "host names only" : "never";
      break;
  }
  row.proven = dpi::findProven(row.name);
  row.tcp = ports(catalog.defaultPorts(id).tcp);
  row.udp = ports(catalog.defaultPorts(id).udp);
  return row;
}

}  // namespace

int protocolsCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  po::options_description options(
      "bulkhead protocols [NAME...]: the protocols a rule's l7.protocols may name, how nDPI 4.2 "
      "reaches each, and which were proven against real servers");
  options.add_options()("help,h", "show this help")("json", "one JSON object per protocol")(
      "proven", "only the protocols proven against real servers");
  po::options_description hidden;
  hidden.add_options()("name", po::value<std::vector<std::string>>(), "protocol");
  po::options_description all;
  all.add(options).add(hidden);
  po::positional_options_description positional;
  positional.add("name", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    err << "bulkhead protocols: " << e.what() << "\n" << options;
    return ExitUsage;
  }
  if (vm.count("help")) {
    out << options;
    return ExitOk;
  }
  const dpi::NdpiProtocolCatalog catalog;
  std::vector<uint16_t> ids;
  if (vm.count("name")) {
    for (const auto& name : vm["name"].as<std::vector<std::string>>()) {
      const auto id = catalog.find(name);
      if (!id) {
        err << "bulkhead protocols: unknown protocol '" << name << "'\n";
        return ExitInvalid;
      }
      ids.push_back(*id);
    }
  } else {
    for (const auto& name : catalog.names()) {
      if (const auto id = catalog.find(name); id && *id != 0) {
        ids.push_back(*id);
      }
    }
  }
  const bool json = vm.count("json") > 0;
  if (!json) {
    out << std::left << std::setw(22) << "NAME" << std::setw(17) << "EVIDENCE" << std::setw(17)
        << "JUDGED AS" << std::setw(8) << "PROVEN"
        << "DEFAULT PORTS / NOTES\n";
  }
  for (uint16_t id : ids) {
    const Row row = describe(catalog, id);
    if (vm.count("proven") && row.proven == nullptr) {
      continue;
    }
    if (json) {
      nlohmann::json line = {{"name", row.name},
                             {"evidence", row.standing},
                             {"judged_as", row.judged},
                             {"how", row.how.empty() ? nlohmann::json() : nlohmann::json(row.how)},
                             {"named_by_host", row.namedByHost},
                             {"proven", row.proven != nullptr},
                             {"tcp_ports", catalog.defaultPorts(id).tcp},
                             {"udp_ports", catalog.defaultPorts(id).udp}};
      if (row.proven != nullptr) {
        line["proven_with"] = {{"server", row.proven->server}, {"client", row.proven->client}};
        line["limits"] =
            row.proven->limits.empty() ? nlohmann::json() : nlohmann::json(row.proven->limits);
      }
      out << text::dumpJson(line) << "\n";
      continue;
    }
    std::string notes;
    if (!row.tcp.empty()) {
      notes += "tcp " + row.tcp;
    }
    if (!row.udp.empty()) {
      notes += std::string(notes.empty() ? "" : "; ") + "udp " + row.udp;
    }
    if (!row.how.empty()) {
      notes += std::string(notes.empty() ? "" : "; ") + "nDPI: " + row.how;
    }
    if (row.proven != nullptr) {
      notes += std::string(notes.empty() ? "" : "; ") + "proven with " +
               std::string(row.proven->server) + " and " + std::string(row.proven->client);
      if (!row.proven->limits.empty()) {
        notes += "; limits: " + std::string(row.proven->limits);
      }
    }
    out << std::left << std::setw(22) << row.name << std::setw(17) << row.standing << std::setw(17)
        << row.judged << std::setw(8) << (row.proven ? "yes" : "-") << notes << "\n";
  }
  return ExitOk;
}

}  // namespace bulkhead::cli
