#include "rules/kubernetes_object.h"

#include <cctype>
#include <charconv>

#include "rules/selector_reader.h"

namespace bulkhead::rules {
namespace {

const std::initializer_list<std::string_view> MetadataKeys = {
    "name",       "namespace",       "labels",         "annotations",   "uid",
    "generation", "resourceVersion", "selfLink",       "managedFields", "creationTimestamp",
    "finalizers", "generateName",    "ownerReferences"};

}  // namespace

std::string readKubernetesMetadata(YamlReader& reader, const YAML::Node& node, Policy& policy) {
  std::string ns;
  if (!reader.expectMap(node, "metadata")) {
    return ns;
  }
  const YamlReader::Fields meta = reader.fields(node, MetadataKeys, "metadata");
  if (const auto* field = YamlReader::optional(meta, "namespace")) {
    if (const auto text = reader.scalar(field->value, "namespace")) {
      if (!validPolicyName(*text) || text->find('.') != std::string::npos) {
        reader.error(field->value,
                     "namespace " + quote(*text) + " must be lower-case letters, digits and '-'");
      }
      ns = *text;
    }
  }
  if (const auto* name = reader.require(meta, "name", node)) {
    if (const auto text = reader.scalar(name->value, "name")) {
      if (!validPolicyName(*text)) {
        reader.error(name->value, "policy name " + quote(*text) +
                                      " must be lower-case letters, digits, '-' or '.'");
      }
      policy.name = ns.empty() ? *text : ns + "." + *text;
      policy.nameWhere = reader.at(name->value);
    }
  }
  for (const char* key : {"labels", "annotations"}) {
    if (const auto* map = YamlReader::optional(meta, key)) {
      reader.labels(map->value, key);
    }
  }
  return ns;
}

std::optional<PortProtocol> readKubernetesPort(YamlReader& reader, const YAML::Node& entry,
                                               L4Protocol defaultProtocol, bool allowAny) {
  if (!reader.expectMap(entry, "a ports entry")) {
    return std::nullopt;
  }
  const YamlReader::Fields parts =
      reader.fields(entry, {"protocol", "port", "endPort"}, "a ports entry");
  PortProtocol port;
  port.where = reader.at(entry);
  port.protocol = defaultProtocol;
  if (const auto* protocol = YamlReader::optional(parts, "protocol")) {
    const auto text = reader.scalar(protocol->value, "protocol");
    if (text == "TCP") {
      port.protocol = L4Protocol::TCP;
    } else if (text == "UDP") {
      port.protocol = L4Protocol::UDP;
    } else if (allowAny && text == "ANY") {
      port.protocol = L4Protocol::Any;
    } else if (text == "SCTP") {
      port.protocol = L4Protocol::SCTP;
    } else if (text) {
      reader.error(protocol->value, std::string("protocol must be TCP, UDP") +
                                        (allowAny ? ", ANY" : "") + " or SCTP, got " +
                                        quote(*text));
      return std::nullopt;
    }
  }
  const auto number = [&](const YAML::Node& node) -> std::optional<unsigned> {
    const auto text = reader.scalar(node, "port");
    if (!text) {
      return std::nullopt;
    }
    unsigned value = 0;
    const auto [end, failure] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (failure != std::errc() || end != text->data() + text->size()) {
      return std::nullopt;  // a name: the caller's
    }
    if (value > 65535 || (value == 0 && !allowAny)) {
      reader.error(node,
                   "port " + quote(*text) + (allowAny ? " must be 0-65535" : " must be 1-65535"));
      return std::nullopt;
    }
    return value;
  };
  const auto* value = YamlReader::optional(parts, "port");
  const auto* end = YamlReader::optional(parts, "endPort");
  if (value == nullptr) {
    if (end != nullptr) {
      reader.error(end->key, "endPort needs port");
      return std::nullopt;
    }
    return port;  // every port of the protocol
  }
  // A named port: the destination's label port.bulkhead.io/<name> gives its number.
  if (const auto text =
          value->value.IsScalar() ? std::optional(value->value.Scalar()) : std::nullopt;
      text && !text->empty() && !std::isdigit(static_cast<unsigned char>(text->front()))) {
    if (!validPortName(*text)) {
      reader.error(value->value, "port " + quote(*text) +
                                     " is neither a number nor a port name (at most 15 lower-case "
                                     "letters, digits and '-')");
      return std::nullopt;
    }
    if (end != nullptr) {
      reader.error(end->key, "endPort extends a port number, not the named port " + quote(*text));
      return std::nullopt;
    }
    port.name = *text;
    return port;
  }
  const auto first = number(value->value);
  if (!first) {
    return std::nullopt;
  }
  if (*first != 0) {  // 0 (Cilium's): every port
    port.first = port.last = static_cast<uint16_t>(*first);
  }
  if (end != nullptr) {
    const auto last = number(end->value);
    if (!last) {
      return std::nullopt;
    }
    if (*last < *first) {
      reader.error(end->value,
                   "endPort " + std::to_string(*last) + " is below port " + std::to_string(*first));
      return std::nullopt;
    }
    port.last = static_cast<uint16_t>(*last);
  }
  return port;
}

void addNamespaceSelector(YamlReader& reader, const YAML::Node& node, std::string_view what,
                          EndpointSelector& into) {
  const auto endpointKey = [](const std::string& key) {
    return key == reserved_labels::KubernetesNamespaceName
               ? std::string(reserved_labels::Namespace)
               : std::string(reserved_labels::NamespaceLabelPrefix) + key;
  };
  const EndpointSelector namespaces = readSelector(reader, node, what);
  for (const auto& [key, value] : namespaces.matchLabels) {
    into.matchLabels[endpointKey(key)] = value;
  }
  for (auto requirement : namespaces.matchExpressions) {
    requirement.key = endpointKey(requirement.key);
    into.matchExpressions.push_back(std::move(requirement));
  }
}

EndpointSelector inNamespace(EndpointSelector selector, const std::string& ns) {
  const std::string label(reserved_labels::Namespace);
  if (ns.empty() || selector.matchLabels.contains(label)) {
    return selector;
  }
  for (const auto& requirement : selector.matchExpressions) {
    if (requirement.key == label) {
      return selector;
    }
  }
  selector.matchLabels[label] = ns;
  return selector;
}

}  // namespace bulkhead::rules
