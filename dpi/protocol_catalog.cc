#include "dpi/protocol_catalog.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "dpi/ndpi.h"
#include "dpi/protocol_evidence.h"
#include "dpi/proven_protocols.h"

namespace bulkhead::dpi {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

NdpiProtocolCatalog::NdpiProtocolCatalog(ndpi_detection_module_struct* module) { load(module); }

NdpiProtocolCatalog::NdpiProtocolCatalog() {
  ndpi_detection_module_struct* module = ndpi_init_detection_module(ndpi_no_prefs);
  if (module == nullptr) {
    throw std::runtime_error("nDPI: cannot initialise a detection module");
  }
  ndpi_finalize_initialization(module);
  load(module);
  ndpi_exit_detection_module(module);
}

void NdpiProtocolCatalog::load(ndpi_detection_module_struct* module) {
  const unsigned count = ndpi_get_num_supported_protocols(module);
  byId_.resize(count);
  ports_.resize(count);
  const ndpi_proto_defaults_t* defaults = ndpi_get_proto_defaults(module);
  for (unsigned id = 0; id < count; ++id) {
    const auto collect = [](const u_int16_t* ports, std::vector<uint16_t>& out) {
      for (int i = 0; i < MAX_DEFAULT_PORTS; ++i) {
        if (ports[i] != 0 && std::find(out.begin(), out.end(), ports[i]) == out.end()) {
          out.push_back(ports[i]);
        }
      }
    };
    collect(defaults[id].tcp_default_ports, ports_[id].tcp);
    collect(defaults[id].udp_default_ports, ports_[id].udp);
    const char* name = ndpi_get_proto_name(module, static_cast<u_int16_t>(id));
    if (name == nullptr || *name == '\0') {
      continue;
    }
    byId_[id] = name;
    // Unknown and a few placeholders share names; the first (lowest) id is the canonical one.
    if (byLowerName_.emplace(lower(name), static_cast<uint16_t>(id)).second) {
      names_.push_back(name);
    }
  }
}

std::optional<uint16_t> NdpiProtocolCatalog::find(std::string_view name) const {
  const auto found = byLowerName_.find(lower(name));
  if (found == byLowerName_.end()) {
    return std::nullopt;
  }
  return found->second;
}

const NdpiProtocolCatalog::DefaultPorts& NdpiProtocolCatalog::defaultPorts(uint16_t id) const {
  static const DefaultPorts None;
  return id < ports_.size() ? ports_[id] : None;
}

rules::ProtocolStanding NdpiProtocolCatalog::standing(uint16_t id, uint8_t ipProtocol) const {
  rules::ProtocolStanding standing;
  uint16_t alias = 0;
  const Evidence evidence = evidenceFor(id, ipProtocol, &alias);
  for (const auto& rule : evidenceRules()) {
    const bool covers = rule.transport == Transport::Any ||
                        (rule.transport == Transport::Tcp && ipProtocol == IPPROTO_TCP) ||
                        (rule.transport == Transport::Udp && ipProtocol == IPPROTO_UDP) ||
                        ipProtocol == 0;
    if (rule.protocol == id && rule.evidence == evidence && covers) {
      standing.how = rule.how;
    }
  }
  switch (evidence) {
    case Evidence::Payload:
      break;
    case Evidence::NamedByPort:
      standing.kind = rules::ProtocolStanding::Kind::NamedByPort;
      standing.provenAs = name(alias);
      break;
    case Evidence::DecidedByPort:
    case Evidence::DecidedByAddress:
      standing.kind = rules::ProtocolStanding::Kind::DecidedByPort;
      standing.namedByHost = namedByHost(id);
      break;
  }
  if (const ProvenProtocol* proven = findProven(name(id))) {
    standing.proven = true;
    standing.provenWith = std::string(proven->server) + " and " + std::string(proven->client);
    standing.limits = proven->limits;
  }
  return standing;
}

std::string NdpiProtocolCatalog::name(uint16_t id) const {
  if (id < byId_.size() && !byId_[id].empty()) {
    return byId_[id];
  }
  return "Unknown";
}

}  // namespace bulkhead::dpi
