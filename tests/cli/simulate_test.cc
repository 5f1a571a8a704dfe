// End-to-end: the real `bulkhead simulate` binary on real captures and policies.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "dataplane/packet_parser.h"
#include "dataplane/pcap_reader.h"
#include "dataplane/pcap_writer.h"
#include "tests/support/frames.h"
#include "tests/support/paths.h"
#include "tests/support/run_command.h"
#include "tests/support/temp_dir.h"

namespace bulkhead {
namespace {

using nlohmann::json;
using testing::runCommand;

struct SimulateOutput {
  testing::CommandResult command;
  std::vector<json> flows;
  json summary;
};

SimulateOutput simulate(std::vector<std::string> extra) {
  std::vector<std::string> argv = {testing::bulkheadBinary(), "simulate", "--json"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  SimulateOutput output;
  output.command = runCommand(argv, 120);
  std::istringstream lines(output.command.out);
  std::string line;
  while (std::getline(lines, line)) {
    json object = json::parse(line);  // every stdout line must be JSON
    if (object.value("summary", false)) {
      output.summary = object;
    } else {
      output.flows.push_back(object);
    }
  }
  return output;
}

std::string example(const std::string& name) {
  return testing::sourceDir() + "/examples/" + name;
}

SimulateOutput simulateShop(std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {"--policy",    example("policies"),
                                   "--endpoints", example("endpoints.yaml"),
                                   "--pcap",      example("shop.pcap")};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return simulate(argv);
}

const json& flowTo(const std::vector<json>& flows, int srcPort) {
  for (const auto& flow : flows) {
    if (flow["src_port"] == srcPort) {
      return flow;
    }
  }
  static const json none;
  ADD_FAILURE() << "no flow from source port " << srcPort;
  return none;
}

TEST(Simulate, ShopCaptureGetsTheVerdictOfEachFlow) {
  const auto output = simulateShop();
  ASSERT_EQ(output.command.exitCode, 0) << output.command.err;
  ASSERT_EQ(output.flows.size(), 8u) << output.command.out;

  const json& http = flowTo(output.flows, 40001);
  EXPECT_EQ(http["src_endpoint"], "web");
  EXPECT_EQ(http["dst_endpoint"], "api");
  EXPECT_EQ(http["l4"], "TCP");
  EXPECT_EQ(http["src_ip"], "10.10.0.10");
  EXPECT_EQ(http["dst_ip"], "10.10.0.11");
  EXPECT_EQ(http["dst_port"], 8080);
  EXPECT_EQ(http["app_protocol"], "HTTP");
  EXPECT_EQ(http["host"], "api.shop.local");
  EXPECT_EQ(http["verdict"], "allow");
  EXPECT_EQ(http["rule"], "shop-api/ingress/0");
  EXPECT_EQ(http["packets"], 10);
  EXPECT_EQ(http["packets_dropped"], 0);
  EXPECT_TRUE(http["denied_by"].is_null());

  const json& wrongPort = flowTo(output.flows, 40002);  // L4: no rule opens 9090
  EXPECT_EQ(wrongPort["verdict"], "deny");
  EXPECT_EQ(wrongPort["rule"], "default-deny");
  EXPECT_EQ(wrongPort["enforced"], true);
  EXPECT_EQ(wrongPort["denied_by"], "ingress");  // api's enforce ingress (web's egress monitors)

  EXPECT_EQ(wrongPort["packets_dropped"], 10);

  const json& ssh = flowTo(output.flows, 40003);  // L7: SSH where only HTTP is allowed
  EXPECT_EQ(ssh["app_protocol"], "SSH");
  EXPECT_EQ(ssh["verdict"], "deny");
  EXPECT_GT(ssh["packets_dropped"].get<int>(), 0);
  EXPECT_LT(ssh["packets_dropped"].get<int>(), 10);  // passed while being classified

  const json& postgres = flowTo(output.flows, 40004);
  EXPECT_EQ(postgres["app_protocol"], "PostgreSQL");
  EXPECT_EQ(postgres["verdict"], "allow");
  EXPECT_EQ(postgres["rule"], "shop-db/ingress/0");

  const json& dnsAllowed = flowTo(output.flows, 40005);
  EXPECT_EQ(dnsAllowed["dst_endpoint"], "world");
  EXPECT_EQ(dnsAllowed["host"], "www.example.com");
  EXPECT_EQ(dnsAllowed["verdict"], "allow");
  EXPECT_EQ(dnsAllowed["rule"], "shop-api/egress/1");

  const json& dnsDenied = flowTo(output.flows, 40006);  // L7 host not allowed
  EXPECT_EQ(dnsDenied["host"], "exfil.attacker.test");
  EXPECT_EQ(dnsDenied["verdict"], "deny");
  EXPECT_EQ(dnsDenied["denied_by"], "egress");

  const json& monitored = flowTo(output.flows, 40007);  // web's policy is in monitor mode
  EXPECT_EQ(monitored["verdict"], "deny");
  EXPECT_EQ(monitored["enforced"], false);
  EXPECT_EQ(monitored["packets_dropped"], 0);
  EXPECT_EQ(monitored["denied_by"], "egress");

  const json& reverse = flowTo(output.flows, 40008);  // db -> api: api takes only web
  EXPECT_EQ(reverse["src_endpoint"], "db");
  EXPECT_EQ(reverse["verdict"], "deny");

  ASSERT_TRUE(output.summary.is_object());
  EXPECT_EQ(output.summary["flows"], 8);
  EXPECT_EQ(output.summary["flows_allowed"], 3);
  EXPECT_EQ(output.summary["flows_denied"], 4);
  EXPECT_EQ(output.summary["flows_denied_monitor"], 1);
  EXPECT_TRUE(output.summary["capture_error"].is_null());
}

TEST(Simulate, AHostNameThatIsNotUtf8IsEscapedInEveryOutput) {
  // What a container may put in a Host header: a byte that is not UTF-8 and a terminal escape.
  // `simulate --json` aborted on the first (nlohmann type_error 316).
  testing::TempDir dir;
  const std::string capture = dir.file("host.pcap");
  {
    std::string error;
    auto writer = dataplane::PcapWriter::open(capture, &error);
    ASSERT_TRUE(writer) << error;
    uint64_t now = 1700000000ull * 1000000000ull;
    testing::TcpSession session("10.10.0.10", 40000, "10.10.0.11", 8080);
    const std::string request =
        "GET / HTTP/1.1\r\nHost: ex\xff\x1b[2jfil.evil.com\r\nUser-Agent: x\r\n\r\n";
    for (const auto& frame :
         {session.syn(), session.synAck(), session.ack(), session.fromClient(request),
          session.fromServer("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")}) {
      writer->write(frame.data(), uint32_t(frame.size()), uint32_t(frame.size()), now += 1000000);
    }
  }
  const std::string endpoints = dir.write("endpoints.yaml", R"(endpoints:
  - {name: web, labels: {app: web}, ips: [10.10.0.10]}
  - {name: api, labels: {app: api}, ips: [10.10.0.11]}
)");
  const auto output =
      simulate({"--policy", example("policies"), "--endpoints", endpoints, "--pcap", capture});
  ASSERT_EQ(output.command.exitCode, 0) << output.command.err;
  ASSERT_EQ(output.flows.size(), 1u);
  EXPECT_EQ(output.flows[0]["host"].get<std::string>(), "ex\\xff\x1b[2jfil.evil.com");
  const auto text = runCommand({testing::bulkheadBinary(), "simulate", "--policy",
                                example("policies"), "--endpoints", endpoints, "--pcap", capture},
                               120);
  EXPECT_NE(text.out.find("host=ex\\xff\\x1b[2jfil.evil.com"), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find('\x1b'), std::string::npos);
}

TEST(Simulate, WriteAllowedKeepsExactlyTheForwardedPackets) {
  testing::TempDir dir;
  const std::string out = dir.file("allowed.pcap");
  const auto output = simulateShop({"--write-allowed", out});
  ASSERT_EQ(output.command.exitCode, 0) << output.command.err;

  std::string error;
  auto reader = dataplane::PcapReader::open(out, &error);
  ASSERT_TRUE(reader) << error;
  dataplane::CapturedFrame frame;
  uint64_t written = 0;
  uint64_t toPort9090 = 0;
  while (reader->next(frame) == dataplane::PcapReader::Status::Frame) {
    ++written;
    const auto meta = dataplane::parsePacket(frame.frame.data(), frame.frame.size());
    toPort9090 += meta.dstPort == 9090 || meta.srcPort == 9090;
  }
  EXPECT_EQ(written, output.summary["packets_forwarded"].get<uint64_t>());
  EXPECT_EQ(toPort9090, 0u);
  EXPECT_LT(written, 64u);
}

// --graph draws the capture's flows as bulkhead graph draws the agent's (cli/service_map.h).
TEST(Simulate, GraphWritesTheServiceMapOfTheCapture) {
  testing::TempDir dir;
  const std::string out = dir.file("shop.dot");
  const auto output = simulateShop({"--graph", out});
  ASSERT_EQ(output.command.exitCode, 0) << output.command.err;
  std::ifstream in(out);
  const std::string dot((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const char* edge :
       {"\"group:app=web\" -> \"group:app=api\" [label=\"HTTP 8080/TCP\\n1 flow\", "
        "color=darkgreen]",
        "\"group:app=web\" -> \"group:app=api\" [label=\"SSH 8080/TCP\\n1 flow, deny\", color=red, "
        "style=dashed]",
        "\"group:app=api\" -> \"group:app=db\" [label=\"PostgreSQL 5432/TCP\\n1 flow\", "
        "color=darkgreen]",
        "\"group:app=web\" -> \"entity:world\" [label=\"HTTP 80/TCP\\n1 flow, denied (monitor)\", "
        "color=orange, style=dotted]"}) {
    EXPECT_NE(dot.find(edge), std::string::npos) << edge << "\n" << dot;
  }
}

TEST(Simulate, TextOutputNamesEndpointsProtocolsAndRules) {
  const auto result =
      runCommand({testing::bulkheadBinary(), "simulate", "--policy", example("policies"),
                  "--endpoints", example("endpoints.yaml"), "--pcap", example("shop.pcap")});
  ASSERT_EQ(result.exitCode, 0) << result.err;
  EXPECT_NE(result.out.find("TCP 10.10.0.10:40001 (web) -> 10.10.0.11:8080 (api) HTTP.HTTP "
                            "host=api.shop.local allow shop-api/ingress/0"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("deny(monitor) by egress default-deny"), std::string::npos);
  EXPECT_NE(result.out.find("summary: 64 frames, 8 flows: 3 allowed, 4 denied, 1 would be"),
            std::string::npos)
      << result.out;
}

TEST(Simulate, TruncatedCaptureReportsPacketIndexAndFlowsSoFar) {
  testing::TempDir dir;
  std::ifstream in(example("shop.pcap"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 3000u);
  const std::string cut = dir.write("cut.pcap", bytes.substr(0, 3000));  // mid-packet
  const auto output = simulate(
      {"--policy", example("policies"), "--endpoints", example("endpoints.yaml"), "--pcap", cut});
  EXPECT_EQ(output.command.exitCode, 1);
  EXPECT_NE(output.command.err.find("truncated or corrupt at packet "), std::string::npos)
      << output.command.err;
  EXPECT_FALSE(output.flows.empty());
  ASSERT_TRUE(output.summary.is_object());
  EXPECT_TRUE(output.summary["capture_error"].is_string());
  EXPECT_GT(output.summary["frames"].get<int>(), 0);
  EXPECT_LT(output.summary["frames"].get<int>(), 64);
}

TEST(Simulate, GarbageCaptureIsAClearUsageError) {
  testing::TempDir dir;
  const std::string garbage = dir.write("garbage.pcap", std::string(100, 'x'));
  const auto result = runCommand(
      {testing::bulkheadBinary(), "simulate", "--policy", example("policies"), "--pcap", garbage});
  EXPECT_EQ(result.exitCode, 2);
  EXPECT_NE(result.err.find("garbage.pcap"), std::string::npos) << result.err;

  const auto missing = runCommand({testing::bulkheadBinary(), "simulate", "--policy",
                                   example("policies"), "--pcap", dir.file("nope.pcap")});
  EXPECT_EQ(missing.exitCode, 2);
  EXPECT_NE(missing.err.find("nope.pcap"), std::string::npos) << missing.err;
}

TEST(Simulate, MissingRequiredFlagsIsAUsageError) {
  const auto result = runCommand({testing::bulkheadBinary(), "simulate", "--json"});
  EXPECT_EQ(result.exitCode, 2);
  EXPECT_NE(result.err.find("--policy and --pcap are required"), std::string::npos);
  const auto unknown = runCommand({testing::bulkheadBinary(), "simulate", "--frobnicate"});
  EXPECT_EQ(unknown.exitCode, 2);
  EXPECT_NE(unknown.err.find("frobnicate"), std::string::npos) << unknown.err;
}

TEST(Simulate, InvalidPolicyOrEndpointsStopBeforeAnyPacket) {
  testing::TempDir dir;
  const std::string policy =
      dir.write("bad.yaml",
                "apiVersion: bulkhead.io/v1\n"
                "kind: SegmentationPolicy\n"
                "metadata: {name: x}\n"
                "spec:\n"
                "  endpointSelector: {}\n"
                "  ingress: [{toPorts: [{ports: [{port: 80, protocl: TCP}]}]}]\n");
  const auto bad = runCommand(
      {testing::bulkheadBinary(), "simulate", "--policy", policy, "--pcap", example("shop.pcap")});
  EXPECT_EQ(bad.exitCode, 1);
  EXPECT_NE(bad.err.find("bad.yaml:6:44: unknown key 'protocl' in a ports entry (did you mean "
                         "'protocol'?)"),
            std::string::npos)
      << bad.err;
  EXPECT_TRUE(bad.out.empty());

  const std::string endpoints = dir.write("endpoints.yaml",
                                          "endpoints:\n"
                                          "  - name: a\n"
                                          "    ips: [10.0.0.300]\n");
  const auto badEndpoints =
      runCommand({testing::bulkheadBinary(), "simulate", "--policy", example("policies"),
                  "--endpoints", endpoints, "--pcap", example("shop.pcap")});
  EXPECT_EQ(badEndpoints.exitCode, 1);
  EXPECT_NE(badEndpoints.err.find("endpoints.yaml:3:11: '10.0.0.300' is not an IPv4 or IPv6 "
                                  "address"),
            std::string::npos)
      << badEndpoints.err;
}

class SharedCapture : public ::testing::TestWithParam<std::string> {};

// Deliberately broken real traffic must never crash the pipeline.
TEST_P(SharedCapture, RunsToTheEndWithoutCrashing) {
  if (!testing::havePcaps()) {
    GTEST_SKIP() << "shared captures not found at " << testing::pcapDir();
  }
  const auto output =
      simulate({"--policy", example("policies"), "--pcap", testing::pcapDir() + "/" + GetParam()});
  EXPECT_EQ(output.command.exitCode, 0) << output.command.err;
  ASSERT_TRUE(output.summary.is_object()) << output.command.out;
  EXPECT_GT(output.summary["frames"].get<int>(), 0);
}

INSTANTIATE_TEST_SUITE_P(Broken, SharedCapture,
                         ::testing::Values("badpackets.pcap", "ip_fragmented_garbage.pcap",
                                           "malformed_dns.pcap", "dns_fragmented.pcap",
                                           "mongodb.pcap", "http_ipv6.pcap"));

TEST(Simulate, L7VerdictOnARealCapture) {
  if (!testing::havePcaps()) {
    GTEST_SKIP() << "shared captures not found at " << testing::pcapDir();
  }
  testing::TempDir dir;
  // The client of http.pcapng may only speak TLS to the world: its plain HTTP is cut once nDPI
  // has seen it, while a policy allowing HTTP lets the same flow through.
  const auto policy = [&](const std::string& protocol) {
    return dir.write("policy-" + protocol + ".yaml",
                     "apiVersion: bulkhead.io/v1\nkind: SegmentationPolicy\n"
                     "metadata: {name: laptop}\nspec:\n"
                     "  endpointSelector: {matchLabels: {role: laptop}}\n"
                     "  egress:\n"
                     "    - toEntities: [world]\n"
                     "      toPorts: [{ports: [{port: 80, protocol: TCP}], l7: {protocols: [" +
                         protocol + "]}}]\n");
  };
  const std::string endpoints = dir.write(
      "endpoints.yaml",
      "endpoints:\n  - name: laptop\n    labels: {role: laptop}\n    ips: [192.168.1.128]\n");
  const std::string capture = testing::pcapDir() + "/http.pcapng";
  const auto denied =
      simulate({"--policy", policy("TLS"), "--endpoints", endpoints, "--pcap", capture});
  ASSERT_EQ(denied.command.exitCode, 0) << denied.command.err;
  ASSERT_EQ(denied.flows.size(), 1u);
  EXPECT_EQ(denied.flows[0]["src_endpoint"], "laptop");
  EXPECT_EQ(denied.flows[0]["master_protocol"], "HTTP");
  EXPECT_EQ(denied.flows[0]["app_protocol"], "Google");
  EXPECT_EQ(denied.flows[0]["host"], "google.com");
  EXPECT_EQ(denied.flows[0]["verdict"], "deny");

  const auto allowed =
      simulate({"--policy", policy("HTTP"), "--endpoints", endpoints, "--pcap", capture});
  ASSERT_EQ(allowed.flows.size(), 1u);
  EXPECT_EQ(allowed.flows[0]["verdict"], "allow");
  EXPECT_EQ(allowed.flows[0]["rule"], "laptop/egress/0");
}

}  // namespace
}  // namespace bulkhead

namespace bulkhead {
namespace {

// A deny rule beside the example allow-lists: what it names is denied and named in the report,
// what it does not name keeps its verdict.
TEST(Simulate, ADenyRuleBesideTheAllowListsDeniesWhatItNames) {
  testing::TempDir dir;
  const std::string deny = dir.write("no-dns.yaml", R"(apiVersion: bulkhead.io/v1
kind: SegmentationPolicy
metadata: {name: no-dns}
spec:
  endpointSelector: {matchLabels: {app: api}}
  egressDeny:
    - toEntities: [world]
      toPorts: [{ports: [{port: 53, protocol: UDP}], l7: {protocols: [DNS]}}]
  enableDefaultDeny: {egress: false}
)");
  const auto output = simulate({"--policy", example("policies"), "--policy", deny, "--endpoints",
                                example("endpoints.yaml"), "--pcap", example("shop.pcap")});
  ASSERT_EQ(output.command.exitCode, 0) << output.command.err;
  const json& dns = flowTo(output.flows, 40005);  // api -> world DNS www.example.com
  EXPECT_EQ(dns["verdict"], "deny") << dns.dump();
  EXPECT_EQ(dns["rule"], "no-dns/egressDeny/0") << dns.dump();
  EXPECT_EQ(dns["denied_by"], "egress") << dns.dump();
  EXPECT_EQ(flowTo(output.flows, 40001)["verdict"], "allow");  // web -> api HTTP
  EXPECT_EQ(flowTo(output.flows, 40004)["verdict"], "allow");  // api -> db PostgreSQL
}

}  // namespace
}  // namespace bulkhead
