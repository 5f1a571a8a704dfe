#include "controlplane/cluster_policy.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>

#include "kvstore/endpoint_directory.h"
#include "rules/yaml_reader.h"

namespace bulkhead::controlplane {

std::optional<std::vector<rules::PolicyText>> documentsToApply(
    const std::vector<rules::PolicyText>& files, const std::vector<std::string>& localFiles,
    const std::vector<rules::PolicyText>& otherDocuments, const std::string& keyPrefix,
    const rules::ProtocolCatalog& catalog, std::vector<std::string>* errors) {
  // First as the operator wrote them, so that every error points into their files.
  const auto asWritten = rules::loadPolicies({}, files, catalog);
  for (const auto& error : asWritten.errors) {
    errors->push_back(rules::format(error));
  }
  if (!asWritten.ok()) {
    return std::nullopt;
  }
  if (asWritten.set.policies.empty()) {
    errors->push_back("no policy document to apply");
    return std::nullopt;
  }
  // Then one document each, written out again, under the name of the policy it holds.
  std::vector<rules::PolicyText> documents;
  for (const auto& file : files) {
    rules::Diagnostics ignored;
    for (const auto& document : rules::parseYamlDocuments(file.text, file.name, ignored)) {
      if (document.node.IsNull()) {
        continue;
      }
      YAML::Emitter out;
      out << document.node;
      const std::string text = std::string(out.c_str()) + "\n";
      const auto one = rules::loadPolicyText(text, file.name, catalog);
      if (!one.ok() || one.set.policies.size() != 1) {
        errors->push_back(file.name + ":" + std::to_string(document.lineOffset + 1) +
                          ": this document does not read back as one policy once written out");
        return std::nullopt;
      }
      documents.push_back({one.set.policies.front().name, text});
    }
  }
  // Last, what every host would load: its files, the cluster's other documents and these.
  std::vector<rules::PolicyText> combined;
  for (const auto& other : otherDocuments) {
    const bool replaced = std::any_of(documents.begin(), documents.end(), [&](const auto& d) {
      return other.name == "etcd:" + kvstore::policyKey(keyPrefix, d.name);
    });
    if (!replaced) {
      combined.push_back(other);
    }
  }
  for (const auto& document : documents) {
    combined.push_back({"etcd:" + kvstore::policyKey(keyPrefix, document.name), document.text});
  }
  const auto together = rules::loadPolicies(localFiles, combined, catalog);
  for (const auto& error : together.errors) {
    errors->push_back(rules::format(error));
  }
  if (!together.ok()) {
    return std::nullopt;
  }
  return documents;
}

}  // namespace bulkhead::controlplane
