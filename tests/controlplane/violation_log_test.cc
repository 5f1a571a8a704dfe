#include "controlplane/violation_log.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "dataplane/packet_meta.h"
#include "dpi/protocol_catalog.h"
#include "dpi/protocol_evidence.h"
#include "dpi/protocol_report.h"
#include "tests/support/temp_dir.h"

namespace bulkhead::controlplane {
namespace {

using dataplane::ViolationEvent;
using dataplane::ViolationKind;
using nlohmann::json;

constexpr uint32_t WebSlot = 0;
constexpr uint32_t ApiSlot = 1;
constexpr uint32_t GoneSlot = 5;  // an endpoint removed before its event was written
constexpr rules::IdentityId WebIdentity = 256;
constexpr rules::IdentityId ApiIdentity = 257;

// Building nDPI's catalogue takes a while: once for the whole binary.
const dpi::NdpiProtocolCatalog& catalog() {
  static const dpi::NdpiProtocolCatalog instance;
  return instance;
}

const dpi::ProtocolReporter& reporter() {
  static const dpi::ProtocolReporter instance(catalog());
  return instance;
}

uint16_t protocolId(const char* name) {
  const auto id = catalog().find(name);
  EXPECT_TRUE(id.has_value()) << name;
  return id.value_or(0);
}

std::optional<EndpointInfo> lookupEndpoint(uint32_t slot) {
  switch (slot) {
    case WebSlot:
      return EndpointInfo{"web", {{"app", "web"}, {"bulkhead.io/name", "web"}}};
    case ApiSlot:
      return EndpointInfo{"api", {{"app", "api"}, {"tier", "backend"}}};
    default:
      return std::nullopt;
  }
}

rules::IpAddress ip(const char* text) { return rules::IpAddress::parse(text).value(); }

template <size_t N>
void copyText(std::array<char, N>& out, const char* text) {
  std::strncpy(out.data(), text, N - 1);
}

// What the Detector would have made of nDPI naming the flow `master`.`app` after inspection.
void classify(ViolationEvent& event, const char* master, const char* app) {
  event.classified = true;
  event.classification.protocol = {master ? protocolId(master) : uint16_t{0}, protocolId(app)};
  event.classification.confidence = dpi::Confidence::Dpi;
  event.classification.inspected = dpi::inspectedProtocol(
      event.classification.protocol, event.classification.confidence, false, event.ipProtocol);
}

// web -> api on 8080, denied by api's ingress after nDPI saw plain HTTP.
ViolationEvent httpToApi() {
  ViolationEvent event;
  event.kind = ViolationKind::Policy;
  event.timeNs = 1700000000123456789ull;
  event.policyGeneration = 7;
  event.enforced = true;
  event.deniedBy = rules::Direction::Ingress;
  copyText(event.classification.host, "api.shop.local");
  copyText(event.rule, "default-deny");
  event.srcIdentity = WebIdentity;
  event.dstIdentity = ApiIdentity;
  event.srcEndpoint = WebSlot;
  event.dstEndpoint = ApiSlot;
  event.srcIp = ip("10.10.0.10");
  event.dstIp = ip("10.10.0.11");
  event.srcPort = 40001;
  event.dstPort = 8080;
  event.ipProtocol = dataplane::ip_protocol::TCP;
  event.packets = 4;
  event.bytes = 360;
  event.forwardedPackets = 3;
  classify(event, nullptr, "HTTP");
  return event;
}

json toJson(const ViolationEvent& event) {
  return violationToJson(event, lookupEndpoint, reporter());
}

std::vector<std::string> readLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  return lines;
}

TEST(ViolationJson, PolicyEventBetweenEndpoints) {
  EXPECT_EQ(toJson(httpToApi()), json::parse(R"({
    "time": "2023-11-14T22:13:20.123456789Z",
    "kind": "policy",
    "action": "drop",
    "mode": "enforce",
    "src": {"endpoint": "web", "labels": {"app": "web", "bulkhead.io/name": "web"},
            "identity": 256, "ip": "10.10.0.10", "port": 40001},
    "dst": {"endpoint": "api", "labels": {"app": "api", "tier": "backend"},
            "identity": 257, "ip": "10.10.0.11", "port": 8080},
    "l4": "TCP",
    "master_protocol": "HTTP",
    "app_protocol": "HTTP",
    "protocol": "HTTP",
    "guessed_protocol": "HTTP_Proxy",
    "host": "api.shop.local",
    "rule": "default-deny",
    "denied_by": "ingress",
    "reason": "HTTP to api port 8080 is not allowed by any rule",
    "packets": 4,
    "bytes": 360,
    "forwarded_packets": 3,
    "policy_generation": 7
  })"));
}

TEST(ViolationJson, WorldPeerNamesTheAddress) {
  ViolationEvent event = httpToApi();
  event.deniedBy = rules::Direction::Egress;
  classify(event, "TLS", "YouTube");
  copyText(event.classification.host, "www.youtube.com");
  copyText(event.rule, "default-deny");
  event.dstEndpoint = UINT32_MAX;
  event.dstIdentity = rules::reserved_identity::World;
  event.dstIp = ip("142.250.1.1");
  event.dstPort = 443;
  const json out = toJson(event);
  EXPECT_EQ(out["dst"], json::parse(R"({"endpoint": "world", "labels": {}, "identity": 2,
                                        "ip": "142.250.1.1", "port": 443})"));
  EXPECT_EQ(out["master_protocol"], "TLS");
  EXPECT_EQ(out["app_protocol"], "YouTube");
  EXPECT_EQ(out["host"], "www.youtube.com");
  EXPECT_EQ(out["denied_by"], "egress");
  EXPECT_EQ(out["reason"], "TLS.YouTube to 142.250.1.1 port 443 is not allowed by any rule");
}

TEST(ViolationJson, HostPeerAndWorldSource) {
  ViolationEvent event = httpToApi();
  event.srcEndpoint = UINT32_MAX;
  event.srcIdentity = rules::reserved_identity::World;
  event.srcIp = ip("203.0.113.9");
  event.dstEndpoint = UINT32_MAX;
  event.dstIdentity = rules::reserved_identity::Host;
  event.dstIp = ip("10.10.0.1");
  const json out = toJson(event);
  EXPECT_EQ(out["src"], json::parse(R"({"endpoint": "world", "labels": {}, "identity": 2,
                                        "ip": "203.0.113.9", "port": 40001})"));
  EXPECT_EQ(out["dst"], json::parse(R"({"endpoint": "host", "labels": {}, "identity": 1,
                                        "ip": "10.10.0.1", "port": 8080})"));
  EXPECT_EQ(out["reason"], "HTTP to 10.10.0.1 port 8080 is not allowed by any rule");
}

TEST(ViolationJson, EndpointGoneSinceIsNamedByIdentity) {
  ViolationEvent event = httpToApi();
  event.dstEndpoint = GoneSlot;
  EXPECT_EQ(toJson(event)["dst"]["endpoint"], "world");
  EXPECT_EQ(toJson(event)["dst"]["labels"], json::object());
  EXPECT_EQ(toJson(event)["dst"]["identity"], ApiIdentity);

  // No lookup at all (the agent has no endpoints yet): every peer is an entity.
  const json out = violationToJson(httpToApi(), EndpointLookup(), reporter());
  EXPECT_EQ(out["src"]["endpoint"], "world");
  EXPECT_EQ(out["dst"]["endpoint"], "world");
}

TEST(ViolationJson, MonitorModeOnlyLogs) {
  ViolationEvent event = httpToApi();
  event.enforced = false;
  const json out = toJson(event);
  EXPECT_EQ(out["action"], "log");
  EXPECT_EQ(out["mode"], "monitor");
  EXPECT_EQ(out["kind"], "policy");
}

TEST(ViolationJson, SpoofEvent) {
  ViolationEvent event;
  event.kind = ViolationKind::Spoof;
  event.timeNs = 1700000000000000000ull;
  event.policyGeneration = 3;
  event.enforced = true;
  copyText(event.rule, "anti-spoofing");
  event.srcIdentity = WebIdentity;
  event.srcEndpoint = WebSlot;
  event.dstIdentity = rules::reserved_identity::World;
  event.srcIp = ip("10.10.0.99");
  event.dstIp = ip("8.8.8.8");
  event.srcPort = 5353;
  event.dstPort = 53;
  event.ipProtocol = dataplane::ip_protocol::UDP;
  event.packets = 1;
  EXPECT_EQ(violationToJson(event, lookupEndpoint, reporter()), json::parse(R"({
    "time": "2023-11-14T22:13:20.000000000Z",
    "kind": "spoof",
    "action": "drop",
    "mode": "enforce",
    "src": {"endpoint": "web", "labels": {"app": "web", "bulkhead.io/name": "web"},
            "identity": 256, "ip": "10.10.0.99", "port": 5353},
    "dst": {"endpoint": "world", "labels": {}, "identity": 2, "ip": "8.8.8.8", "port": 53},
    "l4": "UDP",
    "master_protocol": "Unknown",
    "app_protocol": "Unknown",
    "protocol": null,
    "guessed_protocol": null,
    "host": "",
    "rule": "anti-spoofing",
    "denied_by": null,
    "reason": "source address is not the endpoint's",
    "packets": 1,
    "bytes": 0,
    "forwarded_packets": 0,
    "policy_generation": 3
  })"));
}

TEST(ViolationJson, SpoofedNonIpFrameHasNoAddress) {
  ViolationEvent event;
  event.kind = ViolationKind::Spoof;
  event.srcEndpoint = WebSlot;
  event.srcIdentity = WebIdentity;
  event.dstIdentity = rules::reserved_identity::World;
  const json out = toJson(event);
  EXPECT_TRUE(out["src"]["ip"].is_null());
  EXPECT_TRUE(out["dst"]["ip"].is_null());
  EXPECT_TRUE(out["l4"].is_null());
  EXPECT_EQ(out["reason"], "source address is not the endpoint's");
}

TEST(ViolationJson, UnclassifiedEvent) {
  ViolationEvent event = httpToApi();
  event.classified = false;
  event.classification = {};
  const json out = toJson(event);
  EXPECT_EQ(out["master_protocol"], "Unknown");
  EXPECT_EQ(out["app_protocol"], "Unknown");
  EXPECT_EQ(out["host"], "");
  EXPECT_EQ(out["reason"], "no rule allows TCP to api port 8080");
}

TEST(ViolationJson, ProtocolNdpiOnlyGuessedIsNotWhatThePolicyJudged) {
  // nDPI's names as its dissectors gave them; the reason and `protocol` name what the policy saw.
  ViolationEvent event = httpToApi();
  event.classification.confidence = dpi::Confidence::MatchByPort;
  event.classification.inspected = {};
  json out = toJson(event);
  EXPECT_EQ(out["app_protocol"], "HTTP");
  EXPECT_EQ(out["protocol"], "Unknown");
  EXPECT_EQ(out["reason"], "no rule allows TCP to api port 8080");

  // Inspection that found nothing is Unknown too.
  event.classification.confidence = dpi::Confidence::Dpi;
  event.classification.protocol = {};
  EXPECT_EQ(toJson(event)["reason"], "no rule allows TCP to api port 8080");

  // HTTP sent to PostgreSQL's port: nDPI's reader would say "PostgreSQL.HTTP"; the port's part
  // is reported apart, as the guess it is.
  event = httpToApi();
  event.dstPort = 5432;
  out = toJson(event);
  EXPECT_EQ(out["master_protocol"], "HTTP");
  EXPECT_EQ(out["app_protocol"], "HTTP");
  EXPECT_EQ(out["protocol"], "HTTP");
  EXPECT_EQ(out["guessed_protocol"], "PostgreSQL");
  EXPECT_EQ(out["reason"], "HTTP to api port 5432 is not allowed by any rule");

  // TLS on 993: nDPI names it IMAPS by the port; the policy judged TLS.
  event.dstPort = 993;
  classify(event, nullptr, "IMAPS");
  out = toJson(event);
  EXPECT_EQ(out["app_protocol"], "IMAPS");
  EXPECT_EQ(out["protocol"], "TLS");
  EXPECT_EQ(out["reason"], "TLS to api port 993 is not allowed by any rule");
}

TEST(ViolationJson, PortlessProtocolsHaveNoPortInTheReason) {
  ViolationEvent event = httpToApi();
  event.classified = false;
  event.ipProtocol = dataplane::ip_protocol::ICMP;
  event.srcPort = event.dstPort = 17;  // the echo identifier
  EXPECT_EQ(toJson(event)["l4"], "ICMP");
  EXPECT_EQ(toJson(event)["reason"], "no rule allows ICMP to api");

  event.ipProtocol = 47;  // GRE: no name, its number
  EXPECT_EQ(toJson(event)["l4"], "47");
  EXPECT_EQ(toJson(event)["reason"], "no rule allows 47 to api");
}

TEST(ViolationJson, Ipv6Addresses) {
  ViolationEvent event = httpToApi();
  event.srcIp = ip("fd00::10");
  event.dstIp = ip("2001:db8::1");
  event.dstEndpoint = UINT32_MAX;
  event.dstIdentity = rules::reserved_identity::World;
  event.dstPort = 443;
  event.classified = false;
  const json out = toJson(event);
  EXPECT_EQ(out["src"]["ip"], "fd00::10");
  EXPECT_EQ(out["dst"]["ip"], "2001:db8::1");
  EXPECT_EQ(out["reason"], "no rule allows TCP to 2001:db8::1 port 443");
}

TEST(ViolationJson, UnterminatedStringsStayInBounds) {
  ViolationEvent event = httpToApi();
  event.rule.fill('r');
  event.classification.host.fill('h');
  const json out = toJson(event);
  EXPECT_EQ(out["rule"], std::string(event.rule.size(), 'r'));
  EXPECT_EQ(out["host"], std::string(event.classification.host.size(), 'h'));
}

TEST(ViolationTime, Rfc3339WithNanoseconds) {
  EXPECT_EQ(toJson(httpToApi())["time"], "2023-11-14T22:13:20.123456789Z");
}

TEST(ViolationLogFile, AppendsOneParseableLinePerEvent) {
  testing::TempDir dir;
  const std::string path = dir.file("var/log/bulkhead/violations.log");  // parents are created
  std::string error;
  auto log = ViolationLog::open(path, lookupEndpoint, reporter(), &error);
  ASSERT_NE(log, nullptr) << error;

  ViolationEvent monitored = httpToApi();
  monitored.enforced = false;
  ASSERT_TRUE(log->write(httpToApi()));
  ASSERT_TRUE(log->write(monitored));  // seen without closing: written through, not buffered
  const auto lines = readLines(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(json::parse(lines[0]), toJson(httpToApi()));
  EXPECT_EQ(json::parse(lines[1]), toJson(monitored));
  // In the documented order, time first, for people reading `tail -f`.
  EXPECT_EQ(lines[0].rfind(R"({"time":"2023-11-14T22:13:20.123456789Z","kind":"policy",)", 0), 0u)
      << lines[0];
  EXPECT_EQ(log->linesWritten(), 2u);
  EXPECT_EQ(log->writeErrors(), 0u);

  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777 & ~0640u, 0u) << std::oct << (info.st_mode & 07777);
}

TEST(ViolationLogFile, AppendsToWhatIsThere) {
  testing::TempDir dir;
  const std::string path = dir.write("violations.log", "{\"earlier\":true}\n");
  std::string error;
  auto log = ViolationLog::open(path, lookupEndpoint, reporter(), &error);
  ASSERT_NE(log, nullptr) << error;
  ASSERT_TRUE(log->write(httpToApi()));
  const auto lines = readLines(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "{\"earlier\":true}");
  EXPECT_EQ(json::parse(lines[1])["kind"], "policy");
}

TEST(ViolationLogFile, ReopenContinuesInANewFileAfterRotation) {
  testing::TempDir dir;
  const std::string path = dir.file("violations.log");
  std::string error;
  auto log = ViolationLog::open(path, lookupEndpoint, reporter(), &error);
  ASSERT_NE(log, nullptr) << error;
  ASSERT_TRUE(log->write(httpToApi()));

  std::filesystem::rename(path, path + ".1");
  ASSERT_TRUE(log->write(httpToApi()));  // still the renamed file until reopened
  ASSERT_TRUE(log->reopen(&error)) << error;
  ViolationEvent spoof = httpToApi();
  spoof.kind = ViolationKind::Spoof;
  ASSERT_TRUE(log->write(spoof));

  EXPECT_EQ(readLines(path + ".1").size(), 2u);
  const auto lines = readLines(path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(json::parse(lines[0])["kind"], "spoof");
  EXPECT_EQ(log->linesWritten(), 3u);
}

TEST(ViolationLogFile, ReopenFailureKeepsTheOldFile) {
  testing::TempDir dir;
  const std::string path = dir.file("logs/violations.log");
  std::string error;
  auto log = ViolationLog::open(path, lookupEndpoint, reporter(), &error);
  ASSERT_NE(log, nullptr) << error;
  // The rotator moved the directory away and left a file where it was: nothing to reopen into.
  std::filesystem::rename(dir.file("logs"), dir.file("logs.old"));
  dir.write("logs", "not a directory");
  EXPECT_FALSE(log->reopen(&error));
  EXPECT_NE(error.find("logs"), std::string::npos) << error;
  ASSERT_TRUE(log->write(httpToApi()));
  EXPECT_EQ(readLines(dir.file("logs.old/violations.log")).size(), 1u);
}

TEST(ViolationLogFile, UnwritablePathFailsWithAMessage) {
  for (const std::string path : {"/proc/bulkhead-test/violations.log", "/proc/violations.log"}) {
    std::string error;
    std::unique_ptr<ViolationLog> log;
    EXPECT_NO_THROW(log = ViolationLog::open(path, lookupEndpoint, reporter(), &error));
    EXPECT_EQ(log, nullptr) << path;
    EXPECT_NE(error.find("/proc/"), std::string::npos) << error;
  }
}

TEST(ViolationLogFile, WriteErrorsAreCountedNotThrown) {
  if (!std::filesystem::exists("/dev/full")) {
    GTEST_SKIP() << "no /dev/full";
  }
  std::string error;
  auto log = ViolationLog::open("/dev/full", lookupEndpoint, reporter(), &error);
  ASSERT_NE(log, nullptr) << error;
  EXPECT_FALSE(log->write(httpToApi()));
  EXPECT_FALSE(log->write(httpToApi()));
  EXPECT_EQ(log->writeErrors(), 2u);
  EXPECT_EQ(log->linesWritten(), 0u);
}

TEST(ViolationLogFile, InvalidUtf8FromTheNetworkIsEscapedAsEverywhere) {
  testing::TempDir dir;
  const std::string path = dir.file("violations.log");
  std::string error;
  auto log = ViolationLog::open(path, lookupEndpoint, reporter(), &error);
  ASSERT_NE(log, nullptr) << error;
  ViolationEvent event = httpToApi();
  copyText(event.classification.host, "evil\xff\xfe.example");
  ASSERT_TRUE(log->write(event));
  const auto lines = readLines(path);
  ASSERT_EQ(lines.size(), 1u);
  // \xNN, as every output writes it (docs/violations.md): the bytes sent can be read back.
  EXPECT_EQ(json::parse(lines[0])["host"].get<std::string>(), R"(evil\xff\xfe.example)");
}

}  // namespace
}  // namespace bulkhead::controlplane
