#include "cli/service_map.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/run_command.h"
#include "tests/support/temp_dir.h"

namespace bulkhead::cli {
namespace {

nlohmann::json flow(const std::string& src, const std::string& dst, uint64_t port,
                    const std::string& protocol, const std::string& verdict, bool enforced = true) {
  return {{"l4", "TCP"},
          {"src", {{"endpoint", src}, {"ip", "10.0.0.1"}, {"port", 40000}}},
          {"dst", {{"endpoint", dst}, {"ip", "10.0.0.2"}, {"port", port}}},
          {"protocol", protocol},
          {"verdict", verdict},
          {"enforced", enforced},
          {"bytes", 100}};
}

const EndpointLabels Labels = {
    {"web-1", {{"app", "web"}}},
    {"web-2", {{"app", "web"}}},
    {"api", {{"app", "api"}}},
    {"db", {{"com.docker.compose.service", "db"}}},
    {"odd", {{"app", "we\"ird\\\nname\xff"}}},
};

// One word of `dot -Tplain`: bare, or quoted with \" and \\ escaped; other escapes (DOT's \n
// line break) are kept as written.
std::string word(std::istream& in) {
  in >> std::ws;
  if (in.peek() != '"') {
    std::string bare;
    in >> bare;
    return bare;
  }
  in.get();
  std::string out;
  for (int c = in.get(); c != EOF && c != '"'; c = in.get()) {
    if (c == '\\') {
      const int next = in.get();
      if (next != '"' && next != '\\') {
        out += '\\';
      }
      c = next;
    }
    out += static_cast<char>(c);
  }
  return out;
}

// What Graphviz made of it, with `dot -Tplain`: node labels, and edges as (tail label, head
// label, edge label, style and colour).
struct Plain {
  std::vector<std::string> nodes;
  std::vector<std::tuple<std::string, std::string, std::string, std::string>> edges;
};

Plain renderPlain(const std::string& dot) {
  testing::TempDir dir;
  const std::string out = dir.file("map.plain");
  std::string error;
  EXPECT_TRUE(renderGraph(dot, "plain", out, &error)) << error << "\n" << dot;
  std::ifstream in(out);
  Plain plain;
  std::map<std::string, std::string> labelOf;
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    const std::string kind = word(words);
    if (kind == "node") {
      const std::string name = word(words);
      for (int i = 0; i < 4; ++i) {
        word(words);  // x, y, width, height
      }
      labelOf[name] = word(words);
      plain.nodes.push_back(labelOf[name]);
    } else if (kind == "edge") {
      const std::string tail = word(words);
      const std::string head = word(words);
      const int points = std::stoi(word(words));
      for (int i = 0; i < 2 * points; ++i) {
        word(words);
      }
      const std::string label = word(words);
      word(words);
      word(words);  // the label's position
      const std::string style = word(words);
      const std::string color = word(words);
      plain.edges.emplace_back(labelOf[tail], labelOf[head], label, style + " " + color);
    }
  }
  return plain;
}

TEST(ServiceMap, WorkloadsAreNodesAndEdgesCarryProtocolPortCountAndVerdict) {
  if (::access("/usr/bin/dot", X_OK) != 0) {
    GTEST_SKIP() << "needs Graphviz's dot (Debian package graphviz; scripts/setup.sh)";
  }
  const nlohmann::json flows = {
      flow("web-1", "api", 8080, "HTTP", "allow"), flow("web-2", "api", 8080, "HTTP", "allow"),
      flow("web-1", "api", 9090, "Unknown", "deny"), flow("db", "api", 8080, "HTTP", "deny", false),
      flow("api", "world", 443, "TLS", "allow")};
  const std::string dot = serviceMapDot(flows, Labels);
  const Plain plain = renderPlain(dot);
  // web-1 and web-2 are one workload, by their app label; db by its compose service.
  EXPECT_EQ(plain.nodes.size(), 4u) << dot;
  EXPECT_NE(std::find(plain.nodes.begin(), plain.nodes.end(), "web\\n2 endpoints"),
            plain.nodes.end())
      << dot;
  using Edge = std::tuple<std::string, std::string, std::string, std::string>;
  const auto has = [&](const Edge& edge) {
    return std::find(plain.edges.begin(), plain.edges.end(), edge) != plain.edges.end();
  };
  EXPECT_TRUE(has({"web\\n2 endpoints", "api", "HTTP 8080/TCP\\n2 flows", "solid darkgreen"}))
      << dot;
  EXPECT_TRUE(has({"web\\n2 endpoints", "api", "TCP 9090/TCP\\n1 flow, deny", "dashed red"}))
      << dot;
  EXPECT_TRUE(has({"db", "api", "HTTP 8080/TCP\\n1 flow, denied (monitor)", "dotted orange"}))
      << dot;
  EXPECT_TRUE(has({"api", "world", "TLS 443/TCP\\n1 flow", "solid darkgreen"})) << dot;
  EXPECT_EQ(plain.edges.size(), 4u) << dot;
}

// The agent's learned edges (bulkhead graph's default) draw as their flows would: one edge per
// verdict, counted by the edge's own counts; endpoints that are gone keep their labels.
TEST(ServiceMap, LearnedEdgesDrawWithTheirCountsByVerdict) {
  if (::access("/usr/bin/dot", X_OK) != 0) {
    GTEST_SKIP() << "needs Graphviz's dot (Debian package graphviz; scripts/setup.sh)";
  }
  const auto endpoint = [](const std::string& name, const std::string& app) {
    return nlohmann::json{{"kind", "endpoint"},
                          {"labels", {{"app", app}, {"bulkhead.io/name", name}}}};
  };
  const nlohmann::json edges =
      nlohmann::json::array({{{"src", endpoint("web-1", "web")},
                              {"dst", endpoint("api-1", "api")},
                              {"l4", "TCP"},
                              {"port", 8080u},
                              {"protocol", "HTTP"},
                              {"allowed", 5u},
                              {"monitored", 2u},
                              {"denied", 0u}},
                             {{"src", endpoint("web-2", "web")},
                              {"dst", endpoint("api-1", "api")},
                              {"l4", "TCP"},
                              {"port", 8080u},
                              {"protocol", "HTTP"},
                              {"allowed", 1u},
                              {"monitored", 0u},
                              {"denied", 0u}},
                             {{"src", endpoint("web-1", "web")},
                              {"dst", {{"kind", "world"}, {"address", "192.0.2.1"}}},
                              {"l4", "UDP"},
                              {"port", 53u},
                              {"protocol", "DNS"},
                              {"allowed", 0u},
                              {"monitored", 0u},
                              {"denied", 3u}}});
  EndpointLabels labels;
  const nlohmann::json flows = edgesAsFlows(edges, labels);
  EXPECT_EQ(flows.size(), 4u);
  EXPECT_EQ(labels.at("web-2").at("app"), "web");
  const std::string dot = serviceMapDot(flows, labels);
  const Plain plain = renderPlain(dot);
  using Edge = std::tuple<std::string, std::string, std::string, std::string>;
  const auto has = [&](const Edge& edge) {
    return std::find(plain.edges.begin(), plain.edges.end(), edge) != plain.edges.end();
  };
  EXPECT_TRUE(has({"web\\n2 endpoints", "api", "HTTP 8080/TCP\\n6 flows", "solid darkgreen"}))
      << dot;
  EXPECT_TRUE(has(
      {"web\\n2 endpoints", "api", "HTTP 8080/TCP\\n2 flows, denied (monitor)", "dotted orange"}))
      << dot;
  EXPECT_TRUE(has({"web\\n2 endpoints", "world", "DNS 53/UDP\\n3 flows, deny", "dashed red"}))
      << dot;
  EXPECT_EQ(plain.edges.size(), 3u) << dot;
}

// A label value from a container cannot break out of its DOT string.
TEST(ServiceMap, HostileLabelsStayInsideTheirStrings) {
  if (::access("/usr/bin/dot", X_OK) != 0) {
    GTEST_SKIP() << "needs Graphviz's dot (Debian package graphviz; scripts/setup.sh)";
  }
  const std::string dot =
      serviceMapDot(nlohmann::json::array({flow("odd", "api", 80, "HTTP", "allow")}), Labels);
  const Plain plain = renderPlain(dot);
  ASSERT_EQ(plain.nodes.size(), 2u) << dot;
  EXPECT_EQ(plain.edges.size(), 1u) << dot;
  EXPECT_NE(std::find(plain.nodes.begin(), plain.nodes.end(), "we\"ird\\\\x0aname\\xff"),
            plain.nodes.end())
      << dot;
}

TEST(ServiceMap, WithoutGraphvizRenderingSaysSo) {
  std::string error;
  const std::string saved = getenv("PATH") != nullptr ? getenv("PATH") : "";
  setenv("PATH", "/nonexistent", 1);
  EXPECT_FALSE(renderGraph("digraph {}\n", "svg", "/dev/null", &error));
  setenv("PATH", saved.c_str(), 1);
  EXPECT_NE(error.find("graphviz"), std::string::npos) << error;
}

}  // namespace
}  // namespace bulkhead::cli
