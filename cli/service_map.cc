#include "cli/service_map.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <tuple>

#include "text/untrusted_json.h"
#include "text/utf8_escape.h"

extern char** environ;

namespace bulkhead::cli {
namespace {

// A DOT double-quoted string of `lines` (joined by DOT's line break): quotes and backslashes
// escaped, control bytes and invalid UTF-8 as \xNN (whose backslash is escaped in turn), so
// nothing a container names can end the string or start a line of its own.
std::string dotString(const std::vector<std::string>& lines) {
  std::string out = "\"";
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) {
      out += "\\n";
    }
    for (const char c : text::escapeBytes(lines[i], text::Escape::InvalidUtf8AndControls)) {
      if (c == '"' || c == '\\') {
        out += '\\';
      }
      out += c;
    }
  }
  return out + "\"";
}

std::string dotString(const std::string& value) {
  return dotString(std::vector<std::string>{value});
}

struct Node {
  std::string label;
  bool entity = false;
  std::set<std::string> endpoints;
};

struct EdgeKey {
  std::string src;
  std::string dst;
  std::string l4;
  uint64_t port = 0;
  std::string protocol;
  std::string verdict;  // allow, deny, monitor, pending
  bool operator<(const EdgeKey& other) const {
    return std::tie(src, dst, l4, port, protocol, verdict) <
           std::tie(other.src, other.dst, other.l4, other.port, other.protocol, other.verdict);
  }
};

struct EdgeCount {
  uint64_t flows = 0;
  uint64_t bytes = 0;
};

bool hasPorts(const std::string& l4) {
  return l4 == "TCP" || l4 == "UDP" || l4 == "SCTP";
}

}  // namespace

std::string serviceMapDot(const nlohmann::json& flows, const EndpointLabels& labels,
                          const std::vector<std::string>& groupLabels) {
  std::map<std::string, Node> nodes;
  std::map<EdgeKey, EdgeCount> edges;
  // The node of one side of a flow: its workload group, or the entity.
  const auto nodeOf = [&](const nlohmann::json* peer) {
    static const nlohmann::json none = nlohmann::json::object();
    const nlohmann::json& side = peer != nullptr ? *peer : none;
    const std::string name = text::stringMember(side, "endpoint");
    const auto found = labels.find(name);
    if (name.empty() || name == "world" || name == "host" || found == labels.end()) {
      const std::string entity = name == "host" ? "host" : "world";
      Node& node = nodes["entity:" + entity];
      node.label = entity;
      node.entity = true;
      return "entity:" + entity;
    }
    const learning::Workload workload = learning::workloadOf(
        rules::Labels(found->second.begin(), found->second.end()), groupLabels);
    std::string group;
    for (const auto& [key, value] : workload.selector) {
      group += (group.empty() ? "" : ",") + key + "=" + value;
    }
    const std::string& shownAs = workload.name;
    Node& node = nodes["group:" + group];
    node.label = shownAs;
    node.endpoints.insert(name);
    return "group:" + group;
  };
  if (flows.is_array()) {
    for (const auto& flow : flows) {
      if (!flow.is_object()) {
        continue;
      }
      EdgeKey key;
      key.src = nodeOf(text::objectMember(flow, "src"));
      key.dst = nodeOf(text::objectMember(flow, "dst"));
      key.l4 = text::stringMember(flow, "l4");
      if (const auto* dst = text::objectMember(flow, "dst"); dst != nullptr && hasPorts(key.l4)) {
        key.port = text::unsignedMember(*dst, "port").value_or(0);
      }
      key.protocol = text::stringMember(flow, "protocol");
      const std::string verdict = text::stringMember(flow, "verdict");
      key.verdict = verdict == "deny" && !text::boolMember(flow, "enforced").value_or(true)
                        ? "monitor"
                        : verdict;
      EdgeCount& count = edges[key];
      count.flows += text::unsignedMember(flow, "flows").value_or(1);
      count.bytes += text::unsignedMember(flow, "bytes").value_or(0);
    }
  }

  std::string out =
      "digraph bulkhead {\n"
      "  rankdir=LR;\n"
      "  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n"
      "  edge [fontname=\"Helvetica\", fontsize=10];\n";
  for (const auto& [id, node] : nodes) {
    std::vector<std::string> label = {node.label};
    if (node.endpoints.size() > 1) {
      label.push_back(std::to_string(node.endpoints.size()) + " endpoints");
    }
    out += "  " + dotString(id) + " [label=" + dotString(label) +
           (node.entity ? ", shape=ellipse, style=dashed" : "") + "];\n";
  }
  for (const auto& [key, count] : edges) {
    std::string label = key.protocol.empty() || key.protocol == "Unknown" ? key.l4 : key.protocol;
    if (key.port != 0) {
      label += " " + std::to_string(key.port) + "/" + key.l4;
    }
    std::string counted = std::to_string(count.flows) + (count.flows == 1 ? " flow" : " flows");
    if (key.verdict != "allow") {
      counted += ", " + (key.verdict == "monitor" ? std::string("denied (monitor)") : key.verdict);
    }
    const char* style = key.verdict == "allow"     ? "color=darkgreen"
                        : key.verdict == "monitor" ? "color=orange, style=dotted"
                        : key.verdict == "deny"    ? "color=red, style=dashed"
                                                   : "color=gray";
    out += "  " + dotString(key.src) + " -> " + dotString(key.dst) +
           " [label=" + dotString(std::vector<std::string>{label, counted}) + ", " + style + "];\n";
  }
  out += "}\n";
  return out;
}

nlohmann::json edgesAsFlows(const nlohmann::json& edges, EndpointLabels& labels) {
  nlohmann::json flows = nlohmann::json::array();
  if (!edges.is_array()) {
    return flows;
  }
  const auto side = [&](const nlohmann::json* peer) -> std::string {
    const std::string kind = peer != nullptr ? text::stringMember(*peer, "kind") : "";
    if (kind != "endpoint") {
      return kind == "host" ? "host" : "world";
    }
    std::map<std::string, std::string> own;
    if (const auto* map = text::objectMember(*peer, "labels")) {
      for (const auto& [key, value] : map->items()) {
        if (value.is_string()) {
          own[key] = value.get<std::string>();
        }
      }
    }
    // An endpoint's name is its bulkhead.io/name; one that is gone keeps it in its labels.
    const auto name = own.find("bulkhead.io/name");
    const std::string shown = name != own.end() ? name->second : "endpoint";
    labels.emplace(shown, std::move(own));
    return shown;
  };
  for (const auto& edge : edges) {
    if (!edge.is_object()) {
      continue;
    }
    const std::string src = side(text::objectMember(edge, "src"));
    const std::string dst = side(text::objectMember(edge, "dst"));
    const uint64_t port = text::unsignedMember(edge, "port").value_or(0);
    for (const auto& [count, verdict, enforced] :
         {std::tuple{"allowed", "allow", true}, std::tuple{"monitored", "deny", false},
          std::tuple{"denied", "deny", true}}) {
      const uint64_t flowsOfVerdict = text::unsignedMember(edge, count).value_or(0);
      if (flowsOfVerdict == 0) {
        continue;
      }
      flows.push_back({{"l4", text::stringMember(edge, "l4")},
                       {"src", {{"endpoint", src}}},
                       {"dst", {{"endpoint", dst}, {"port", port}}},
                       {"protocol", text::stringMember(edge, "protocol")},
                       {"verdict", verdict},
                       {"enforced", enforced},
                       {"flows", flowsOfVerdict}});
    }
  }
  return flows;
}

bool renderGraph(const std::string& dot, const std::string& format, const std::string& outputPath,
                 std::string* error) {
  char input[] = "/tmp/bulkhead-graph-XXXXXX";
  const int fd = ::mkstemp(input);
  if (fd < 0) {
    *error = "cannot make a temporary file";
    return false;
  }
  ::close(fd);
  std::ofstream(input) << dot;
  std::vector<std::string> args = {"dot", "-T" + format};
  if (!outputPath.empty()) {
    args.push_back("-o");
    args.push_back(outputPath);
  }
  args.push_back(input);
  std::vector<char*> argv;
  for (auto& arg : args) {
    argv.push_back(arg.data());
  }
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int spawned = ::posix_spawnp(&pid, "dot", nullptr, nullptr, argv.data(), environ);
  int status = 0;
  const bool ran = spawned == 0 && ::waitpid(pid, &status, 0) == pid;
  ::unlink(input);
  if (!ran) {
    *error = "cannot run Graphviz's dot (Debian package graphviz)";
    return false;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    *error = "dot -T" + format + " failed";
    return false;
  }
  return true;
}

}  // namespace bulkhead::cli
