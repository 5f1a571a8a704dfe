#include "rules/yaml_reader.h"

#include <algorithm>
#include <vector>

#include "rules/suggest.h"

namespace bulkhead::rules {
namespace {

const char* typeName(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing (null)";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Undefined:
      return "nothing";
  }
  return "something else";
}

}  // namespace

std::string quote(std::string_view text) {
  return "'" + std::string(text) + "'";
}

std::string lowerCase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

namespace {

// A line that starts or ends a document: `---` or `...` at its start, alone or before a blank.
bool isMarker(std::string_view line) {
  if (!line.starts_with("---") && !line.starts_with("...")) {
    return false;
  }
  return line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r';
}

// Each document's text and the line it starts on. What follows `---` on its own line stays, with
// the marker blanked so that columns do not move.
std::vector<std::pair<std::string, int>> splitDocuments(const std::string& text) {
  std::vector<std::pair<std::string, int>> out;
  std::string current;
  int start = 0;
  int line = 0;
  size_t begin = 0;
  while (begin <= text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) {
      end = text.size();
    }
    const std::string_view content(text.data() + begin, end - begin);
    if (isMarker(content)) {
      out.emplace_back(std::move(current), start);
      current = "   ";
      current.append(content.substr(3));
      current += '\n';
      start = line;
    } else {
      current.append(content);
      if (end < text.size()) {
        current += '\n';
      }
    }
    ++line;
    begin = end + 1;
  }
  out.emplace_back(std::move(current), start);
  return out;
}

// The line and column (1-based) of the first tab in a line's leading whitespace.
std::optional<std::pair<int, int>> indentationTab(const std::string& text) {
  int line = 1;
  int column = 1;
  bool leading = true;
  for (const char c : text) {
    if (c == '\n') {
      ++line;
      column = 1;
      leading = true;
      continue;
    }
    if (leading && c == '\t') {
      return std::pair{line, column};
    }
    leading = leading && c == ' ';
    ++column;
  }
  return std::nullopt;
}

std::optional<SourceLocation> tooDeep(const std::string& text, const std::string& fileName) {
  int line = 1;
  int column = 0;
  size_t depth = 0;
  char quote = 0;
  bool comment = false;
  char previous = '\n';
  for (const char c : text) {
    ++column;
    if (c == '\n') {
      ++line;
      column = 0;
      comment = false;
      quote = quote == '"' ? quote : 0;  // a single-quoted scalar may span lines too, rarely
    } else if (comment) {
    } else if (quote != 0) {
      if (c == quote && previous != '\\') {
        quote = 0;
      }
    } else if (c == '#' && (previous == ' ' || previous == '\t' || previous == '\n')) {
      comment = true;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '[' || c == '{') {
      if (++depth > MaxYamlNesting) {
        return SourceLocation{fileName, line, column};
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
    previous = c;
  }
  return std::nullopt;
}

}  // namespace

std::vector<YamlDocument> parseYamlDocuments(const std::string& text, const std::string& fileName,
                                             Diagnostics& errors) {
  // yaml-cpp builds and copies nodes recursively: nesting beyond any real document is refused
  // before it can exhaust the stack (or, as it did, end as "bad file").
  if (text.size() > MaxYamlBytes) {
    errors.push_back({{fileName, 0, 0},
                      "the file is larger than " + std::to_string(MaxYamlBytes >> 20) + " MiB"});
    return {};
  }
  if (const auto where = tooDeep(text, fileName)) {
    errors.push_back({*where, "lists and mappings are nested deeper than " +
                                  std::to_string(MaxYamlNesting) + " levels"});
    return {};
  }
  std::vector<YamlDocument> documents;
  for (const auto& [chunk, offset] : splitDocuments(text)) {
    try {
      YAML::Node node = YAML::Load(chunk);
      if (!node.IsNull()) {
        documents.push_back({std::move(node), offset});
      }
    } catch (const YAML::Exception& e) {
      // A tab in the indentation is never YAML, and yaml-cpp's word on it names something else.
      if (const auto tab = indentationTab(chunk)) {
        errors.push_back({{fileName, tab->first + offset, tab->second},
                          "a tab in the indentation: YAML indents with spaces only"});
        return {};
      }
      const int line = e.mark.is_null() ? 0 : e.mark.line + 1 + offset;
      const int column = e.mark.is_null() ? 0 : e.mark.column + 1;
      std::string message = "YAML syntax error: " + e.msg;
      if (e.msg == YAML::ErrorMsg::END_OF_MAP || e.msg == YAML::ErrorMsg::END_OF_SEQ ||
          e.msg == YAML::ErrorMsg::BLOCK_ENTRY || e.msg == YAML::ErrorMsg::MAP_VALUE) {
        message +=
            " (is this line indented like the keys of the mapping it belongs to? every "
            "key of one mapping starts in the same column)";
      }
      errors.push_back({{fileName, line, column}, std::move(message)});
      return {};
    }
  }
  return documents;
}

SourceLocation YamlReader::at(const YAML::Node& node) const {
  const YAML::Mark mark = node.Mark();
  if (mark.is_null()) {
    return {file_, 0, 0};
  }
  return {file_, mark.line + 1 + lineOffset_, mark.column + 1};
}

void YamlReader::error(const SourceLocation& where, std::string message) {
  errors_.push_back({where, std::move(message)});
}

bool YamlReader::expectMap(const YAML::Node& node, std::string_view what) {
  if (node.IsMap()) {
    return true;
  }
  error(node, std::string(what) + " must be a mapping, got " + typeName(node));
  return false;
}

bool YamlReader::expectList(const YAML::Node& node, std::string_view what) {
  if (node.IsSequence()) {
    return true;
  }
  error(node, quote(what) + " must be a list, got " + typeName(node));
  return false;
}

std::optional<std::string> YamlReader::scalar(const YAML::Node& node, std::string_view what) {
  if (node.IsScalar()) {
    return node.Scalar();
  }
  error(node, quote(what) + " must be a string, got " + typeName(node));
  return std::nullopt;
}

YamlReader::Fields YamlReader::fields(const YAML::Node& map,
                                      const std::vector<std::string_view>& allowed,
                                      std::string_view context) {
  Fields out;
  // Misspelt keys by the key they were meant to be: read as that key once the mapping is done
  // (the misspelling is still an error), so a typo is one error, not a second "missing" one.
  std::vector<std::pair<std::string, Field>> meant;
  const std::vector<std::string> names(allowed.begin(), allowed.end());
  for (const auto& entry : map) {
    const YAML::Node& key = entry.first;
    if (!key.IsScalar()) {
      error(key, "keys in " + std::string(context) + " must be strings, got " + typeName(key));
      continue;
    }
    const std::string& name = key.Scalar();
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      std::string message = "unknown key " + quote(name) + " in " + std::string(context);
      if (const auto hint = nearest(name, names)) {
        message += " (did you mean " + quote(*hint) + "?)";
        meant.emplace_back(*hint, Field{key, entry.second});
      } else {
        message += " (valid keys:";
        for (const auto& valid : names) {
          message += " " + valid;
        }
        message += ")";
      }
      error(key, std::move(message));
      continue;
    }
    if (const auto found = out.find(name); found != out.end()) {
      const SourceLocation first = at(found->second.key);
      error(key,
            "duplicate key " + quote(name) + " (first at line " + std::to_string(first.line) + ")");
      continue;
    }
    out.emplace(name, Field{key, entry.second});
  }
  for (auto& [name, field] : meant) {
    out.emplace(name, std::move(field));  // never over the key itself, when it is there too
  }
  return out;
}

const YamlReader::Field* YamlReader::require(const Fields& fields, std::string_view key,
                                             const YAML::Node& parent) {
  const auto found = fields.find(key);
  if (found == fields.end()) {
    error(parent, "missing required key " + quote(key));
    return nullptr;
  }
  return &found->second;
}

const YamlReader::Field* YamlReader::optional(const Fields& fields, std::string_view key) {
  const auto found = fields.find(key);
  return found == fields.end() ? nullptr : &found->second;
}

Labels YamlReader::labels(const YAML::Node& node, std::string_view what) {
  Labels out;
  if (node.IsNull() || !expectMap(node, what)) {
    return out;
  }
  for (const auto& entry : node) {
    const auto key = scalar(entry.first, "label key");
    const auto value = scalar(entry.second, "label value");
    if (!key || !value) {
      continue;
    }
    if (key->empty() || key->find_first_of(" \t\n") != std::string::npos) {
      error(entry.first, "label key " + quote(*key) + " must be non-empty without spaces");
      continue;
    }
    if (!out.emplace(*key, *value).second) {
      error(entry.first, "duplicate label key " + quote(*key));
    }
  }
  return out;
}

}  // namespace bulkhead::rules
