#include "controlplane/endpoint_loader.h"

#include <fstream>
#include <map>
#include <sstream>

#include "rules/yaml_reader.h"

namespace bulkhead::controlplane {
namespace {

using rules::quote;
using rules::YamlReader;

class EndpointParser : private YamlReader {
 public:
  EndpointParser(std::string file, EndpointFile& out) : YamlReader(std::move(file), out.errors), out_(out) {}

  void parse(const YAML::Node& document) {
    if (document.IsNull()) {
      return;
    }
    if (!expectMap(document, "an endpoints file")) {
      return;
    }
    const Fields top = fields(document, {"endpoints", "host"}, "an endpoints file");
    if (const auto* list = optional(top, "endpoints")) {
      if (expectList(list->value, "endpoints")) {
        for (const auto& node : list->value) {
          parseEndpoint(node);
        }
      }
    }
    if (const auto* host = optional(top, "host")) {
      if (expectMap(host->value, "host")) {
        const Fields parts = fields(host->value, {"ips", "macs"}, "host");
        if (const auto* ips = optional(parts, "ips")) {
          addresses(ips->value, out_.hostIps);
        }
        if (const auto* macs = optional(parts, "macs")) {
          addresses(macs->value, out_.hostMacs);
        }
      }
    }
  }

 private:
  void parseEndpoint(const YAML::Node& node) {
    if (!expectMap(node, "an endpoint")) {
      return;
    }
    const size_t errorsBefore = errorCount();
    const Fields parts =
        fields(node, {"name", "labels", "image", "networks", "ips", "macs"}, "an endpoint");
    dataplane::Endpoint endpoint;
    if (const auto* name = require(parts, "name", node)) {
      if (const auto text = scalar(name->value, "name")) {
        endpoint.name = *text;
        if (const auto [it, inserted] = names_.emplace(*text, at(name->value)); !inserted) {
          error(name->value, "duplicate endpoint name " + quote(*text) + " (first at line " +
                                 std::to_string(it->second.line) + ")");
        }
      }
    }
    if (const auto* labels = optional(parts, "labels")) {
      endpoint.labels = this->labels(labels->value, "labels");
    }
    endpoint.labels[std::string(rules::reserved_labels::Name)] = endpoint.name;
    if (const auto* image = optional(parts, "image")) {
      if (const auto text = scalar(image->value, "image")) {
        endpoint.labels[std::string(rules::reserved_labels::Image)] = *text;
      }
    }
    if (const auto* networks = optional(parts, "networks")) {
      if (expectList(networks->value, "networks")) {
        for (const auto& network : networks->value) {
          if (const auto text = scalar(network, "networks entry")) {
            endpoint.labels[std::string(rules::reserved_labels::NetworkPrefix) + *text] = "true";
          }
        }
      }
    }
    if (const auto* ips = optional(parts, "ips")) {
      addresses(ips->value, endpoint.ips);
    }
    if (const auto* macs = optional(parts, "macs")) {
      addresses(macs->value, endpoint.macs);
    }
    if (endpoint.ips.empty() && endpoint.macs.empty() && errorCount() == errorsBefore) {
      error(node, "endpoint " + quote(endpoint.name) + " needs 'ips' or 'macs' to be recognised");
    }
    if (errorCount() == errorsBefore) {
      out_.endpoints.push_back(std::move(endpoint));
    }
  }

  void addresses(const YAML::Node& node, std::vector<rules::IpAddress>& out) {
    if (!expectList(node, "ips")) {
      return;
    }
    for (const auto& entry : node) {
      if (const auto text = scalar(entry, "ips entry")) {
        const auto address = rules::IpAddress::parse(*text);
        if (!address) {
          error(entry, quote(*text) + " is not an IPv4 or IPv6 address");
          continue;
        }
        claim(*text, entry);
        out.push_back(*address);
      }
    }
  }

  void addresses(const YAML::Node& node, std::vector<dataplane::MacAddress>& out) {
    if (!expectList(node, "macs")) {
      return;
    }
    for (const auto& entry : node) {
      if (const auto text = scalar(entry, "macs entry")) {
        dataplane::MacAddress mac;
        if (!dataplane::MacAddress::parse(*text, mac)) {
          error(entry, quote(*text) + " is not a MAC address like 02:42:ac:11:00:02");
          continue;
        }
        claim(mac.toString(), entry);
        out.push_back(mac);
      }
    }
  }

  // An address owned twice would make "who sent this" ambiguous.
  void claim(const std::string& address, const YAML::Node& node) {
    const auto [it, inserted] = claimed_.emplace(address, at(node));
    if (!inserted) {
      error(node, "address " + quote(address) + " is already claimed at line " +
                      std::to_string(it->second.line));
    }
  }

  EndpointFile& out_;
  std::map<std::string, rules::SourceLocation> names_;
  std::map<std::string, rules::SourceLocation> claimed_;
};

}  // namespace

EndpointFile loadEndpointText(const std::string& text, const std::string& fileName) {
  EndpointFile out;
  const auto documents = rules::parseYamlDocuments(text, fileName, out.errors);
  if (documents.size() > 1) {
    out.errors.push_back({{fileName, 0, 0}, "an endpoints file holds one YAML document"});
    return out;
  }
  if (!documents.empty()) {
    EndpointParser(fileName, out).parse(documents.front());
  }
  rules::sortByLocation(out.errors);
  return out;
}

EndpointFile loadEndpoints(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    EndpointFile out;
    out.errors.push_back({{path, 0, 0}, "cannot read file"});
    out.ioFailure = true;
    return out;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return loadEndpointText(text.str(), path);
}

}  // namespace bulkhead::controlplane
