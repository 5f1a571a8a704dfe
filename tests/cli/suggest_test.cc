// Learning from captures: `bulkhead simulate --suggest` writes the allow-list of a capture's
// flows, and the real binary applying it in enforce mode allows every recorded flow and denies
// flows nobody made -- over generated captures.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "dataplane/pcap_writer.h"
#include "tests/support/frames.h"
#include "tests/support/paths.h"
#include "tests/support/protocol_payloads.h"
#include "tests/support/run_command.h"
#include "tests/support/temp_dir.h"

namespace bulkhead {
namespace {

using nlohmann::json;

// One generated conversation: its frames, and what it is for the checks.
struct Conversation {
  std::vector<testing::Bytes> frames;
  uint16_t clientPort = 0;
};

class Capture {
 public:
  explicit Capture(std::string path) : path_(std::move(path)) {}

  void http(const std::string& client, uint16_t clientPort, const std::string& server,
            uint16_t port, const std::string& host) {
    testing::TcpSession session(client.c_str(), clientPort, server.c_str(), port);
    add({session.syn(), session.synAck(), session.ack(),
         session.fromClient(testing::httpRequest(host, "GET")),
         session.fromServer(testing::HttpOkResponse), session.clientFin(), session.serverFin()});
  }
  void tls(const std::string& client, uint16_t clientPort, const std::string& server,
           const std::string& sni) {
    testing::TcpSession session(client.c_str(), clientPort, server.c_str(), 443);
    add({session.syn(), session.synAck(), session.ack(),
         session.fromClient(testing::asText(testing::tlsClientHello(sni))),
         session.fromServer(testing::asText(testing::tlsServerHello())), session.clientFin(),
         session.serverFin()});
  }
  void ssh(const std::string& client, uint16_t clientPort, const std::string& server,
           uint16_t port) {
    testing::TcpSession session(client.c_str(), clientPort, server.c_str(), port);
    add({session.syn(), session.synAck(), session.ack(),
         session.fromServer(std::string(testing::SshServerBanner)),
         session.fromClient(std::string(testing::SshClientBanner)), session.clientFin(),
         session.serverFin()});
  }
  void dns(const std::string& client, uint16_t clientPort, const std::string& server,
           const std::string& name) {
    const testing::Ipv4Header header{client.c_str(), server.c_str(), 17};
    add({testing::ipv4Frame(
        header, testing::udp(clientPort, 53, testing::dnsQuery(name, clientPort, false)))});
  }
  // Bytes no dissector claims: nDPI says Unknown, and only the port can be allowed.
  void opaque(const std::string& client, uint16_t clientPort, const std::string& server,
              uint16_t port) {
    testing::TcpSession session(client.c_str(), clientPort, server.c_str(), port);
    add({session.syn(), session.synAck(), session.ack(),
         session.fromClient(std::string("\x01\x02\x03\x04 opaque \xfe\xfd", 16)),
         session.fromServer(std::string("\x7f\x00\x11 reply", 9)), session.clientFin(),
         session.serverFin()});
  }

  void write() {
    std::string error;
    auto writer = dataplane::PcapWriter::open(path_, &error);
    ASSERT_TRUE(writer) << error;
    uint64_t now = 1700000000ull * 1000000000ull;
    for (const auto& frame : frames_) {
      writer->write(frame.data(), uint32_t(frame.size()), uint32_t(frame.size()), now += 1000000);
    }
    ASSERT_TRUE(writer->close(&error)) << error;
  }

 private:
  void add(std::initializer_list<testing::Bytes> frames) {
    frames_.insert(frames_.end(), frames.begin(), frames.end());
  }
  std::string path_;
  std::vector<testing::Bytes> frames_;
};

std::vector<json> simulate(const std::vector<std::string>& extra, std::string* err) {
  std::vector<std::string> argv = {testing::bulkheadBinary(), "simulate", "--json"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  const auto result = testing::runCommand(argv, 120);
  *err = result.err;
  EXPECT_EQ(result.exitCode, 0) << result.err;
  std::vector<json> flows;
  std::istringstream lines(result.out);
  std::string line;
  while (std::getline(lines, line)) {
    json object = json::parse(line);
    if (!object.value("summary", false)) {
      flows.push_back(object);
    }
  }
  return flows;
}

TEST(SimulateSuggest, PropertyTheSuggestionAllowsEveryRecordedFlowAndDeniesNewOnes) {
  const std::vector<std::string> apps = {"web", "api", "db", "cache", "worker"};
  for (uint32_t seed = 1; seed <= 6; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 random(seed);
    testing::TempDir dir;
    // Endpoints: some share a workload (the same app label), one has only its name.
    std::vector<std::string> ips;
    std::string endpoints = "endpoints:\n";
    const size_t count = 3 + random() % 3;
    for (size_t i = 0; i < count; ++i) {
      ips.push_back("10.20.0." + std::to_string(10 + i));
      endpoints += "  - {name: c" + std::to_string(i) + ", ips: [" + ips.back() + "]";
      if (i + 1 < count) {
        endpoints += ", labels: {app: " + apps[random() % apps.size()] + "}";
      }
      endpoints += "}\n";
    }
    const std::string endpointsFile = dir.write("endpoints.yaml", endpoints);
    // The policy the package installs: every container in monitor mode.
    const std::string monitor =
        testing::sourceDir() + "/packaging/policies/00-monitor-everything.yaml";

    Capture recorded(dir.file("recorded.pcap"));
    uint16_t clientPort = 30000;
    for (size_t n = 4 + random() % 10; n > 0; --n) {
      const std::string& client = ips[random() % ips.size()];
      const std::string& server = ips[random() % ips.size()];
      switch (random() % 5) {
        case 0:
          recorded.http(client, ++clientPort, server, static_cast<uint16_t>(8000 + random() % 4),
                        "svc" + std::to_string(random() % 3) + ".test");
          break;
        case 1:
          recorded.tls(client, ++clientPort, "203.0.113." + std::to_string(1 + random() % 5),
                       "s" + std::to_string(random() % 4) + ".example.test");
          break;
        case 2:
          recorded.dns(client, ++clientPort, "198.51.100.53",
                       "q" + std::to_string(random() % 4) + ".example.test");
          break;
        case 3:
          recorded.ssh(client, ++clientPort, server, 22);
          break;
        default:
          recorded.opaque(client, ++clientPort, server, static_cast<uint16_t>(7000 + random() % 3));
          break;
      }
    }
    recorded.write();

    const std::string suggested = dir.file("suggested");
    std::string err;
    const auto learned = simulate({"--policy", monitor, "--endpoints", endpointsFile, "--pcap",
                                   dir.file("recorded.pcap"), "--suggest", suggested},
                                  &err);
    ASSERT_NE(err.find("suggested policies to"), std::string::npos) << err;
    const auto check =
        testing::runCommand({testing::bulkheadBinary(), "policy", "check", suggested}, 60);
    ASSERT_EQ(check.exitCode, 0) << check.err << check.out;

    // Every recorded flow, replayed under the suggestion in enforce mode: allowed.
    const auto replayed = simulate(
        {"--policy", suggested, "--endpoints", endpointsFile, "--pcap", dir.file("recorded.pcap")},
        &err);
    ASSERT_EQ(replayed.size(), learned.size());
    for (const auto& flow : replayed) {
      EXPECT_EQ(flow["verdict"], "allow") << flow.dump();
    }

    // Flows nobody made: a port no flow used to an endpoint that was seen as a server or a
    // client, and a TLS name nobody asked for. Each is denied, and dropped.
    Capture unseen(dir.file("unseen.pcap"));
    const std::string& client = ips[random() % ips.size()];
    unseen.http(client, 50001, ips[random() % ips.size()], 9999, "svc0.test");
    unseen.tls(client, 50002, "203.0.113.1", "never.example.test");
    unseen.ssh(client, 50003, ips[random() % ips.size()], 2222);
    unseen.write();
    const auto fresh = simulate(
        {"--policy", suggested, "--endpoints", endpointsFile, "--pcap", dir.file("unseen.pcap")},
        &err);
    ASSERT_EQ(fresh.size(), 3u);
    for (const auto& flow : fresh) {
      EXPECT_EQ(flow["verdict"], "deny") << flow.dump();
      EXPECT_EQ(flow["enforced"], true) << flow.dump();
    }
    if (HasFailure()) {
      for (const auto& file : std::filesystem::directory_iterator(suggested)) {
        ADD_FAILURE() << file.path() << ":\n" << testing::readFile(file.path().string());
      }
      return;
    }
  }
}

}  // namespace
}  // namespace bulkhead
