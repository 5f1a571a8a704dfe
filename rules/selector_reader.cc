#include "rules/selector_reader.h"

#include "rules/suggest.h"

namespace bulkhead::rules {
namespace {

std::optional<LabelRequirement> readRequirement(YamlReader& reader, const YAML::Node& node) {
  if (!reader.expectMap(node, "a matchExpressions entry")) {
    return std::nullopt;
  }
  const YamlReader::Fields parts =
      reader.fields(node, {"key", "operator", "values"}, "a matchExpressions entry");
  LabelRequirement requirement;
  bool ok = true;
  if (const auto* key = reader.require(parts, "key", node)) {
    const auto text = reader.scalar(key->value, "key");
    ok = ok && text.has_value();
    requirement.key = text.value_or("");
  } else {
    ok = false;
  }
  if (const auto* op = reader.require(parts, "operator", node)) {
    const auto text = reader.scalar(op->value, "operator");
    static const std::vector<std::string> operators = {"In", "NotIn", "Exists", "DoesNotExist"};
    if (!text) {
      ok = false;
    } else if (*text == "In") {
      requirement.op = LabelRequirement::Operator::In;
    } else if (*text == "NotIn") {
      requirement.op = LabelRequirement::Operator::NotIn;
    } else if (*text == "Exists") {
      requirement.op = LabelRequirement::Operator::Exists;
    } else if (*text == "DoesNotExist") {
      requirement.op = LabelRequirement::Operator::DoesNotExist;
    } else {
      std::string message = "unknown operator " + quote(*text);
      if (const auto hint = nearest(*text, operators)) {
        message += " (did you mean " + quote(*hint) + "?)";
      } else {
        message += " (valid: In, NotIn, Exists, DoesNotExist)";
      }
      reader.error(op->value, std::move(message));
      ok = false;
    }
  } else {
    ok = false;
  }
  if (const auto* values = YamlReader::optional(parts, "values")) {
    if (reader.expectList(values->value, "values")) {
      for (const auto& value : values->value) {
        if (const auto text = reader.scalar(value, "values entry")) {
          requirement.values.push_back(*text);
        }
      }
    }
  }
  if (ok) {
    const bool takesValues = requirement.op == LabelRequirement::Operator::In ||
                             requirement.op == LabelRequirement::Operator::NotIn;
    if (takesValues && requirement.values.empty()) {
      reader.error(node, "operator In/NotIn needs a non-empty 'values' list");
      ok = false;
    } else if (!takesValues && YamlReader::optional(parts, "values")) {
      reader.error(YamlReader::optional(parts, "values")->key,
                   "operator Exists/DoesNotExist takes no 'values'");
      ok = false;
    }
  }
  return ok ? std::optional(requirement) : std::nullopt;
}

}  // namespace

EndpointSelector readSelector(YamlReader& reader, const YAML::Node& node, std::string_view what) {
  EndpointSelector selector;
  selector.where = reader.at(node);
  if (!reader.expectMap(node, what)) {
    return selector;
  }
  const YamlReader::Fields parts =
      reader.fields(node, {"matchLabels", "matchExpressions"}, std::string(what));
  if (const auto* field = YamlReader::optional(parts, "matchLabels")) {
    selector.matchLabels = reader.labels(field->value, "matchLabels");
  }
  if (const auto* expressions = YamlReader::optional(parts, "matchExpressions")) {
    if (reader.expectList(expressions->value, "matchExpressions")) {
      for (const auto& expression : expressions->value) {
        if (auto requirement = readRequirement(reader, expression)) {
          selector.matchExpressions.push_back(std::move(*requirement));
        }
      }
    }
  }
  return selector;
}

// {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}: every exception must lie inside the prefix, or
// it would except nothing and hide a mistake.
std::optional<CidrSet> readCidrSet(YamlReader& reader, const YAML::Node& node,
                                   const std::string& key) {
  if (!reader.expectMap(node, key + " entry")) {
    return std::nullopt;
  }
  const YamlReader::Fields parts = reader.fields(node, {"cidr", "except"}, "a " + key + " entry");
  const auto* cidrField = reader.require(parts, "cidr", node);
  if (cidrField == nullptr) {
    return std::nullopt;
  }
  const auto text = reader.scalar(cidrField->value, "cidr");
  std::string reason;
  const auto cidr = text ? Cidr::parse(*text, &reason) : std::nullopt;
  if (!cidr) {
    if (text) {
      reader.error(cidrField->value, reason);
    }
    return std::nullopt;
  }
  CidrSet set{*cidr, {}};
  bool ok = true;
  if (const auto* except = YamlReader::optional(parts, "except")) {
    if (!reader.expectList(except->value, "except")) {
      return std::nullopt;
    }
    for (const auto& entry : except->value) {
      const auto hole = reader.scalar(entry, "except entry");
      const auto parsed = hole ? Cidr::parse(*hole, &reason) : std::nullopt;
      if (!parsed) {
        if (hole) {
          reader.error(entry, reason);
        }
        ok = false;
        continue;
      }
      if (parsed->prefixLength() < cidr->prefixLength() || !cidr->contains(parsed->network())) {
        reader.error(entry, "except " + quote(*hole) + " is not inside " + quote(*text) +
                                ": an exception must be a part of the prefix it is taken from");
        ok = false;
        continue;
      }
      set.except.push_back(*parsed);
    }
  }
  if (!ok) {
    return std::nullopt;
  }
  return set;
}

}  // namespace bulkhead::rules
