#include "dpi/detector.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "dpi/ndpi_guess.h"
#include "tests/support/frames.h"

namespace bulkhead {
namespace {

using dpi::Classification;
using dpi::Confidence;
using dpi::Detector;
using dpi::DetectorConfig;
using dpi::DpiFlowState;
using testing::Bytes;
using testing::Framing;
using testing::ipv4;
using testing::TcpSession;
using testing::udp;
namespace ip_protocol = dataplane::ip_protocol;

constexpr const char* Client = "10.0.0.1";
constexpr const char* Server = "10.0.0.2";

Bytes udpPacket(const char* src, uint16_t srcPort, const char* dst, uint16_t dstPort,
                const Bytes& payload) {
  return ipv4({.src = src, .dst = dst, .protocol = ip_protocol::UDP, .id = 1},
              udp(srcPort, dstPort, payload));
}

constexpr std::string_view HttpRequest =
    "GET / HTTP/1.1\r\nHost: api.shop.local\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n";
constexpr std::string_view HttpResponse =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";

// Feeds packets until the detector reports a final classification; returns how many it took
// (0 if it never did).
size_t feed(Detector& detector, DpiFlowState& state, const std::vector<Bytes>& packets,
            Classification& out, uint64_t startMs = 1000) {
  for (size_t i = 0; i < packets.size(); ++i) {
    const Bytes& packet = packets[i];
    if (detector.process(state, packet.data(), static_cast<uint16_t>(packet.size()), startMs + i,
                         out)) {
      return i + 1;
    }
  }
  return 0;
}

std::vector<Bytes> httpConversation(uint16_t clientPort, uint16_t serverPort) {
  TcpSession session(Client, clientPort, Server, serverPort, Framing::IpOnly);
  std::vector<Bytes> packets;
  packets.push_back(session.syn());
  packets.push_back(session.synAck());
  packets.push_back(session.ack());
  packets.push_back(session.fromClient(HttpRequest));
  packets.push_back(session.fromServer(HttpResponse));
  packets.push_back(session.ack());
  packets.push_back(session.clientFin());
  return packets;
}

TEST(Detector, ClassifiesAnHttpRequestWithItsHost) {
  Detector detector;
  const auto http = detector.catalog().find("HTTP");
  ASSERT_TRUE(http.has_value());
  DpiFlowState state;
  Classification result;
  const size_t packets = feed(detector, state, httpConversation(40000, 8080), result);
  ASSERT_GT(packets, 0u) << "never classified";
  EXPECT_GE(packets, 4u);  // nothing to see before the request
  EXPECT_TRUE(result.protocol.app == *http || result.protocol.master == *http)
      << result.protocol.master << "." << result.protocol.app;
  EXPECT_EQ(result.hostName(), "api.shop.local");
  EXPECT_EQ(result.confidence, Confidence::Dpi);
  EXPECT_TRUE(state.done);
  EXPECT_EQ(state.ndpi, nullptr);
  // Classified flows go back to the pool at once.
  EXPECT_EQ(detector.stats().inUse, 0u);
  EXPECT_EQ(detector.stats().classified, 1u);
  EXPECT_EQ(detector.stats().gaveUp, 0u);
  EXPECT_GE(detector.stats().pooled, 1u);
  // The policy sees the protocol because it came from inspection.
  EXPECT_EQ(result.policyProtocol().app, result.protocol.app);
  EXPECT_EQ(result.policyProtocol().master, result.protocol.master);
}

TEST(Detector, FurtherPacketsAfterClassificationAreFree) {
  Detector detector;
  DpiFlowState state;
  Classification result;
  auto packets = httpConversation(40001, 80);
  ASSERT_GT(feed(detector, state, packets, result), 0u);
  const auto before = detector.stats();
  Classification again;
  EXPECT_TRUE(detector.process(state, packets.back().data(),
                               static_cast<uint16_t>(packets.back().size()), 5000, again));
  EXPECT_EQ(detector.stats().classified, before.classified);
  EXPECT_EQ(detector.stats().inUse, 0u);
}

TEST(Detector, PoolStructsAreReused) {
  Detector detector;
  for (uint16_t i = 0; i < 5; ++i) {
    DpiFlowState state;
    Classification result;
    ASSERT_GT(
        feed(detector, state, httpConversation(static_cast<uint16_t>(41000 + i), 8080), result),
        0u);
    EXPECT_EQ(detector.stats().inUse, 0u);
  }
  EXPECT_EQ(detector.stats().classified, 5u);
  // One chunk was carved once; classified flows returned their structs to it.
  const size_t pooled = detector.stats().pooled;
  DpiFlowState state;
  Classification result;
  feed(detector, state, httpConversation(42000, 8080), result);
  EXPECT_EQ(detector.stats().pooled, pooled);
}

TEST(Detector, GivesUpAfterExactlyThePacketBudget) {
  DetectorConfig config;
  config.packetBudget = 6;
  Detector detector(config);
  std::mt19937 random(7);
  DpiFlowState state;
  Classification result;
  for (int i = 1; i <= 6; ++i) {
    Bytes noise(120);
    for (auto& byte : noise) {
      byte = static_cast<uint8_t>(random());
    }
    // Alternate directions, like a real exchange, between two unremarkable high ports.
    const Bytes packet = i % 2 ? udpPacket(Client, 47123, Server, 51234, noise)
                               : udpPacket(Server, 51234, Client, 47123, noise);
    const bool final = detector.process(state, packet.data(), static_cast<uint16_t>(packet.size()),
                                        1000 + static_cast<uint64_t>(i), result);
    if (i < 6) {
      ASSERT_FALSE(final) << "random bytes classified after " << i << " packets as "
                          << result.protocol.master << "." << result.protocol.app;
      EXPECT_EQ(detector.stats().inUse, 1u);
    } else {
      EXPECT_TRUE(final) << "the budget of 6 packets was not enforced";
    }
  }
  EXPECT_EQ(state.packets, 6);
  EXPECT_TRUE(state.done);
  EXPECT_EQ(state.ndpi, nullptr);
  EXPECT_EQ(detector.stats().gaveUp, 1u);
  EXPECT_EQ(detector.stats().classified, 0u);
  EXPECT_EQ(detector.stats().inUse, 0u);
  EXPECT_NE(result.confidence, Confidence::Dpi);
  EXPECT_EQ(result.policyProtocol().app, 0);
  EXPECT_EQ(result.policyProtocol().master, 0);
}

TEST(Detector, GiveUpEndsDetectionEarly) {
  Detector detector;
  DpiFlowState state;
  Classification result;
  TcpSession session(Client, 40002, Server, 8080, Framing::IpOnly);
  const Bytes syn = session.syn();
  ASSERT_FALSE(detector.process(state, syn.data(), static_cast<uint16_t>(syn.size()), 1, result));
  EXPECT_EQ(detector.stats().inUse, 1u);
  detector.giveUp(state, result);
  EXPECT_TRUE(state.done);
  EXPECT_EQ(state.ndpi, nullptr);
  EXPECT_EQ(detector.stats().inUse, 0u);
  EXPECT_EQ(detector.stats().gaveUp, 1u);
  // Giving up twice counts once.
  detector.giveUp(state, result);
  EXPECT_EQ(detector.stats().gaveUp, 1u);
}

TEST(Detector, PoolExhaustionClassifiesUnknownAtOnce) {
  DetectorConfig config;
  config.maxClassifyingFlows = 2;
  Detector detector(config);
  TcpSession a(Client, 40010, Server, 8080, Framing::IpOnly);
  TcpSession b(Client, 40011, Server, 8080, Framing::IpOnly);
  TcpSession c(Client, 40012, Server, 8080, Framing::IpOnly);
  DpiFlowState stateA;
  DpiFlowState stateB;
  DpiFlowState stateC;
  Classification result;
  const Bytes synA = a.syn();
  const Bytes synB = b.syn();
  const Bytes synC = c.syn();
  EXPECT_FALSE(
      detector.process(stateA, synA.data(), static_cast<uint16_t>(synA.size()), 1, result));
  EXPECT_FALSE(
      detector.process(stateB, synB.data(), static_cast<uint16_t>(synB.size()), 1, result));
  EXPECT_EQ(detector.stats().inUse, 2u);
  EXPECT_EQ(detector.stats().pooled, 2u);

  Classification third;
  third.protocol = {99, 99};
  third.confidence = Confidence::Dpi;
  EXPECT_TRUE(detector.process(stateC, synC.data(), static_cast<uint16_t>(synC.size()), 1, third));
  EXPECT_EQ(third.protocol.master, 0);
  EXPECT_EQ(third.protocol.app, 0);
  EXPECT_EQ(third.confidence, Confidence::Unknown);
  EXPECT_EQ(third.hostName(), "");
  EXPECT_TRUE(stateC.done);
  EXPECT_EQ(stateC.ndpi, nullptr);
  EXPECT_EQ(detector.stats().poolExhausted, 1u);
  EXPECT_EQ(detector.stats().inUse, 2u);

  // A released struct serves the next new flow.
  detector.release(stateA);
  EXPECT_EQ(detector.stats().inUse, 1u);
  TcpSession d(Client, 40013, Server, 8080, Framing::IpOnly);
  DpiFlowState stateD;
  const Bytes synD = d.syn();
  EXPECT_FALSE(
      detector.process(stateD, synD.data(), static_cast<uint16_t>(synD.size()), 2, result));
  EXPECT_EQ(detector.stats().inUse, 2u);
  EXPECT_EQ(detector.stats().poolExhausted, 1u);
  EXPECT_EQ(detector.stats().pooled, 2u);
  detector.release(stateB);
  detector.release(stateD);
  EXPECT_EQ(detector.stats().inUse, 0u);
}

TEST(Detector, ReleaseFreesTheState) {
  Detector detector;
  DpiFlowState state;
  Classification result;
  auto packets = httpConversation(40020, 8080);
  // Handshake only: detection is still running.
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_FALSE(detector.process(state, packets[i].data(),
                                  static_cast<uint16_t>(packets[i].size()), 1 + i, result));
  }
  EXPECT_NE(state.ndpi, nullptr);
  EXPECT_EQ(detector.stats().inUse, 1u);
  detector.release(state);
  EXPECT_EQ(state.ndpi, nullptr);
  EXPECT_TRUE(state.done);
  EXPECT_EQ(detector.stats().inUse, 0u);
  EXPECT_EQ(detector.stats().classified, 0u);
  EXPECT_EQ(detector.stats().gaveUp, 0u);
  // Releasing again is harmless.
  detector.release(state);
  EXPECT_EQ(detector.stats().inUse, 0u);
}

TEST(Detector, ReleasedStateIsCleanForTheNextFlow) {
  // A struct that held a half-seen flow must not leak into the HTTP flow that reuses it.
  DetectorConfig config;
  config.maxClassifyingFlows = 1;
  Detector detector(config);
  {
    TcpSession other(Client, 40030, Server, 8080, Framing::IpOnly);
    DpiFlowState state;
    Classification result;
    for (const Bytes& packet :
         {other.syn(), other.synAck(), other.ack(), other.fromClient("\x01")}) {
      ASSERT_FALSE(
          detector.process(state, packet.data(), static_cast<uint16_t>(packet.size()), 1, result));
    }
    detector.release(state);
  }
  DpiFlowState state;
  Classification result;
  ASSERT_GT(feed(detector, state, httpConversation(40031, 8080), result), 0u);
  const auto http = detector.catalog().find("HTTP");
  ASSERT_TRUE(http.has_value());
  EXPECT_TRUE(result.protocol.app == *http || result.protocol.master == *http);
  EXPECT_EQ(result.hostName(), "api.shop.local");
  EXPECT_EQ(detector.stats().pooled, 1u);
}

TEST(Detector, ClassifiesSsh) {
  Detector detector;
  const auto ssh = detector.catalog().find("SSH");
  ASSERT_TRUE(ssh.has_value());
  // Not the SSH port: inspection, not a guess.
  TcpSession session(Client, 40040, Server, 8080, Framing::IpOnly);
  std::vector<Bytes> packets{session.syn(), session.synAck(), session.ack(),
                             session.fromClient("SSH-2.0-OpenSSH_9.2\r\n"),
                             session.fromServer("SSH-2.0-OpenSSH_9.2\r\n")};
  DpiFlowState state;
  Classification result;
  ASSERT_GT(feed(detector, state, packets, result), 0u);
  EXPECT_TRUE(result.protocol.app == *ssh || result.protocol.master == *ssh);
  EXPECT_EQ(result.confidence, Confidence::Dpi);
  EXPECT_EQ(detector.stats().inUse, 0u);
}

TEST(Detector, CatalogNamesAndIds) {
  Detector detector;
  const auto http = detector.catalog().find("HTTP");
  ASSERT_TRUE(http.has_value());
  EXPECT_EQ(detector.catalog().find("http"), http);  // case-insensitive
  EXPECT_EQ(detector.catalog().name(*http), "HTTP");
  EXPECT_FALSE(detector.catalog().find("NoSuchProtocol").has_value());
  EXPECT_EQ(detector.catalog().find("Unknown"), std::optional<uint16_t>(0));
}

// nDPI guesses from the port and fills half a label with it ("PostgreSQL.HTTP"); the Detector
// keeps it from guessing at all, so what it reports is what the dissectors read.
TEST(Detector, ThePortDoesNotNameWhatTheBytesAre) {
  Detector detector;
  const auto http = detector.catalog().find("HTTP");
  for (uint16_t port : {5432, 3306, 6379, 22, 53}) {
    DpiFlowState state;
    Classification result;
    ASSERT_GT(feed(detector, state, httpConversation(40000, port), result), 0u) << port;
    EXPECT_EQ(result.protocol.app, *http) << port;
    EXPECT_EQ(result.protocol.master, 0) << port << ": master "
                                         << detector.catalog().name(result.protocol.master);
    EXPECT_EQ(result.inspected.app, *http) << port;
    EXPECT_EQ(result.confidence, Confidence::Dpi);
  }
}

// What nDPI would have guessed is still there for reports, from nDPI's own guess functions.
TEST(NdpiGuess, ThePortAndTheAddressesAlone) {
  Detector detector;
  const dpi::NdpiGuess guess;
  const auto& catalog = detector.catalog();
  const auto v4 = [](const char* text) { return *rules::IpAddress::parse(text); };
  auto guessed = guess.guess(6, v4("10.0.0.1"), 40000, v4("10.0.0.2"), 5432);
  EXPECT_EQ(catalog.name(guessed.app), "PostgreSQL");
  // google_ssl.pcap's server: TLS by port, Google by address, as ndpiReader labels it.
  guessed = guess.guess(6, v4("172.31.3.224"), 42835, v4("216.58.212.100"), 443);
  EXPECT_EQ(catalog.name(guessed.master), "TLS");
  EXPECT_EQ(catalog.name(guessed.app), "Google");
  guessed = guess.guess(6, v4("10.0.0.1"), 40000, v4("10.0.0.2"), 41234);
  EXPECT_EQ(guessed.app, 0);
  EXPECT_EQ(guessed.master, 0);
}

TEST(Classification, HostNameStopsAtNul) {
  Classification classification;
  EXPECT_EQ(classification.hostName(), "");
  const std::string host = "api.shop.local";
  std::copy(host.begin(), host.end(), classification.host.begin());
  EXPECT_EQ(classification.hostName(), host);
}

TEST(Classification, ConfidenceNames) {
  EXPECT_STREQ(dpi::toString(Confidence::Unknown), "Unknown");
  EXPECT_STREQ(dpi::toString(Confidence::MatchByPort), "Match by port");
  EXPECT_STREQ(dpi::toString(Confidence::Dpi), "DPI");
}

}  // namespace
}  // namespace bulkhead
