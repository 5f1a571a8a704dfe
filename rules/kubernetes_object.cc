#include "rules/kubernetes_object.h"

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
