#include "controlplane/endpoint_loader.h"

#include <fstream>
#include <map>
#include <sstream>

#include "rules/policy.h"
#include "rules/yaml_reader.h"

namespace bulkhead::controlplane {
namespace {

using rules::quote;
using rules::YamlReader;

class EndpointParser {
 public:
  EndpointParser(YamlReader& reader, bool withInterfaces, EndpointFile& out)
      : reader_(reader), withInterfaces_(withInterfaces), out_(out) {}

  void parse(const YAML::Node* list, const YAML::Node* host) {
    if (list != nullptr && expectList(*list, "endpoints")) {
      for (const auto& node : *list) {
        parseEndpoint(node);
      }
    }
    if (host != nullptr && expectMap(*host, "host")) {
      const Fields parts = fields(*host, {"ips", "macs"}, "host");
      if (const auto* ips = optional(parts, "ips")) {
        addresses(ips->value, out_.hostIps);
      }
      if (const auto* macs = optional(parts, "macs")) {
        addresses(macs->value, out_.hostMacs);
      }
    }
  }

 private:
  using Fields = YamlReader::Fields;
  static const YamlReader::Field* optional(const Fields& f, std::string_view key) {
    return YamlReader::optional(f, key);
  }
  bool expectList(const YAML::Node& n, std::string_view what) {
    return reader_.expectList(n, what);
  }
  bool expectMap(const YAML::Node& n, std::string_view what) { return reader_.expectMap(n, what); }
  Fields fields(const YAML::Node& n, std::initializer_list<std::string_view> allowed,
                std::string_view context) {
    return reader_.fields(n, allowed, context);
  }
  std::optional<std::string> scalar(const YAML::Node& n, std::string_view what) {
    return reader_.scalar(n, what);
  }
  const YamlReader::Field* require(const Fields& f, std::string_view key, const YAML::Node& n) {
    return reader_.require(f, key, n);
  }
  void error(const YAML::Node& n, std::string message) { reader_.error(n, std::move(message)); }
  rules::SourceLocation at(const YAML::Node& n) const { return reader_.at(n); }
  size_t errorCount() const { return reader_.errorCount(); }

  void parseEndpoint(const YAML::Node& node) {
    if (!expectMap(node, "an endpoint")) {
      return;
    }
    const size_t errorsBefore = errorCount();
    const Fields parts =
        withInterfaces_
            ? fields(node, {"name", "interface", "labels", "image", "networks", "ips", "macs"},
                     "an endpoint")
            : fields(node, {"name", "labels", "image", "networks", "ips", "macs"}, "an endpoint");
    dataplane::Endpoint endpoint;
    std::string interface;
    if (withInterfaces_) {
      if (const auto* field = require(parts, "interface", node)) {
        interface = scalar(field->value, "interface").value_or("");
      }
    }
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
      endpoint.labels = reader_.labels(labels->value, "labels");
    }
    endpoint.labels[std::string(rules::reserved_labels::Name)] = endpoint.name;
    if (const auto project = endpoint.labels.find(rules::reserved_labels::DefaultNamespaceLabel);
        project != endpoint.labels.end()) {
      endpoint.labels[std::string(rules::reserved_labels::Namespace)] = project->second;
    }
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
      out_.interfaces.push_back(interface);
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

  YamlReader& reader_;
  bool withInterfaces_;
  EndpointFile& out_;
  std::map<std::string, rules::SourceLocation> names_;
  std::map<std::string, rules::SourceLocation> claimed_;
};

}  // namespace

rules::NamespaceLabels parseNamespaceLabels(rules::YamlReader& reader, const YAML::Node& node) {
  rules::NamespaceLabels namespaces;
  if (node.IsNull() || !reader.expectMap(node, "namespaces")) {
    return namespaces;
  }
  for (const auto& entry : node) {
    const auto name = reader.scalar(entry.first, "a namespace name");
    if (!name) {
      continue;
    }
    if (!rules::validPolicyName(*name) || name->find('.') != std::string::npos) {
      reader.error(entry.first, "namespace " + rules::quote(*name) +
                                    " must be lower-case letters, digits and '-'");
      continue;
    }
    namespaces[*name] = reader.labels(entry.second, "a namespace's labels");
  }
  return namespaces;
}

void parseEndpoints(rules::YamlReader& reader, const YAML::Node* endpoints, const YAML::Node* host,
                    bool withInterfaces, EndpointFile& out) {
  EndpointParser(reader, withInterfaces, out).parse(endpoints, host);
}

EndpointFile loadEndpointText(const std::string& text, const std::string& fileName) {
  EndpointFile out;
  const auto documents = rules::parseYamlDocuments(text, fileName, out.errors);
  if (documents.size() > 1) {
    out.errors.push_back({{fileName, 0, 0}, "an endpoints file holds one YAML document"});
    return out;
  }
  if (!documents.empty()) {
    YamlReader reader(fileName, out.errors);
    reader.setLineOffset(documents.front().lineOffset);
    const YAML::Node& document = documents.front().node;
    if (reader.expectMap(document, "an endpoints file")) {
      const auto top =
          reader.fields(document, {"namespaces", "endpoints", "host"}, "an endpoints file");
      const auto* list = YamlReader::optional(top, "endpoints");
      const auto* host = YamlReader::optional(top, "host");
      parseEndpoints(reader, list ? &list->value : nullptr, host ? &host->value : nullptr, false,
                     out);
      if (const auto* namespaces = YamlReader::optional(top, "namespaces")) {
        out.namespaces = parseNamespaceLabels(reader, namespaces->value);
        for (auto& endpoint : out.endpoints) {
          rules::addNamespaceLabels(endpoint.labels, out.namespaces);
        }
      }
    }
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
