#pragma once

#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rules/diagnostic.h"
#include "rules/labels.h"

namespace bulkhead::rules {

std::string quote(std::string_view text);
std::string lowerCase(std::string_view text);

// Limits on what an operator's file may be: far beyond any real document, and within what
// yaml-cpp's recursive nodes can take.
inline constexpr size_t MaxYamlBytes = 16u << 20;
inline constexpr size_t MaxYamlNesting = 64;

// One document of a file, parsed on its own: its marks count from its first line, which is
// `lineOffset` lines into the file (YamlReader::setLineOffset puts them back in place).
struct YamlDocument {
  YAML::Node node;
  int lineOffset = 0;
};

// All documents of a YAML text, split at their `---` and `...` marker lines and parsed one by
// one (yaml-cpp 0.7's LoadAll never returns on some inputs, a lone ',' among them); empty
// documents are left out. A syntax error, or a text beyond the limits above, becomes a
// diagnostic and yields nothing.
std::vector<YamlDocument> parseYamlDocuments(const std::string& text, const std::string& fileName,
                                             Diagnostics& errors);

// Reads operator-written YAML with the checks every bulkhead file needs (types, unknown and
// duplicate keys with "did you mean", required keys), collecting each problem as a
// file:line:col diagnostic instead of stopping at the first.
class YamlReader {
 public:
  struct Field {
    YAML::Node key;
    YAML::Node value;
  };
  using Fields = std::map<std::string, Field, std::less<>>;

  YamlReader(std::string file, Diagnostics& errors) : file_(std::move(file)), errors_(errors) {}

  SourceLocation at(const YAML::Node& node) const;
  void setLineOffset(int lines) { lineOffset_ = lines; }
  void error(const SourceLocation& where, std::string message);
  void error(const YAML::Node& node, std::string message) { error(at(node), std::move(message)); }
  size_t errorCount() const { return errors_.size(); }

  bool expectMap(const YAML::Node& node, std::string_view what);
  bool expectList(const YAML::Node& node, std::string_view what);
  std::optional<std::string> scalar(const YAML::Node& node, std::string_view what);
  // The entries of a mapping; unknown and duplicate keys are reported here, once.
  Fields fields(const YAML::Node& map, std::initializer_list<std::string_view> allowed,
                std::string_view context) {
    return fields(map, std::vector<std::string_view>(allowed), context);
  }
  Fields fields(const YAML::Node& map, const std::vector<std::string_view>& allowed,
                std::string_view context);
  const Field* require(const Fields& fields, std::string_view key, const YAML::Node& parent);
  static const Field* optional(const Fields& fields, std::string_view key);
  // A string-to-string mapping (labels, annotations); null is an empty set.
  Labels labels(const YAML::Node& node, std::string_view what);

 private:
  std::string file_;
  int lineOffset_ = 0;
  Diagnostics& errors_;
};

}  // namespace bulkhead::rules
