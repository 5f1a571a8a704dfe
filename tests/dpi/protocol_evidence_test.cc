#include "dpi/protocol_evidence.h"

#include <gtest/gtest.h>

#include <set>

#include "dpi/protocol_catalog.h"

namespace bulkhead {
namespace {

using dpi::Confidence;
using dpi::Evidence;
using dpi::inspectedProtocol;
using rules::AppProtocol;

constexpr uint8_t Tcp = 6;
constexpr uint8_t Udp = 17;

class ProtocolEvidence : public ::testing::Test {
 protected:
  uint16_t id(const char* name) const {
    const auto found = catalog_.find(name);
    EXPECT_TRUE(found.has_value()) << name;
    return found.value_or(0);
  }
  std::string judged(const char* master, const char* app, uint8_t transport,
                     Confidence confidence = Confidence::Dpi, bool malformed = false) const {
    const AppProtocol found{master ? id(master) : uint16_t{0}, id(app)};
    const AppProtocol out = inspectedProtocol(found, confidence, malformed, transport);
    if (out.app == 0 && out.master == 0) {
      return "Unknown";
    }
    return out.master == 0 ? catalog_.name(out.app)
                           : catalog_.name(out.master) + "." + catalog_.name(out.app);
  }

  const dpi::NdpiProtocolCatalog catalog_;
};

TEST_F(ProtocolEvidence, OnlyInspectionCounts) {
  EXPECT_EQ(judged(nullptr, "HTTP", Tcp), "HTTP");
  EXPECT_EQ(judged("HTTP", "HTTP", Tcp), "HTTP");
  EXPECT_EQ(judged(nullptr, "HTTP", Tcp, Confidence::MatchByPort), "Unknown");
  EXPECT_EQ(judged("TLS", "Google", Tcp, Confidence::MatchByIp), "Unknown");
  EXPECT_EQ(judged(nullptr, "PostgreSQL", Tcp, Confidence::Unknown), "Unknown");
}

TEST_F(ProtocolEvidence, NamesFromTheFlowsOwnNameStay) {
  // The app part under HTTP, TLS, QUIC or DNS came from a Host, an SNI or a query name.
  EXPECT_EQ(judged("HTTP", "Google", Tcp), "HTTP.Google");
  EXPECT_EQ(judged("TLS", "YouTube", Tcp), "TLS.YouTube");
  EXPECT_EQ(judged("DNS", "Google", Udp), "DNS.Google");
  EXPECT_EQ(judged("QUIC", "Google", Udp), "QUIC.Google");
  // ... even for a protocol whose own dissector decides by port or address.
  EXPECT_EQ(judged("TLS", "TeamViewer", Tcp), "TLS.TeamViewer");
}

TEST_F(ProtocolEvidence, NamesThePortPicksBecomeWhatTheBytesProve) {
  EXPECT_EQ(judged(nullptr, "IMAPS", Tcp), "TLS");
  EXPECT_EQ(judged("IMAPS", "IMAPS", Tcp), "TLS");
  EXPECT_EQ(judged(nullptr, "POPS", Tcp), "TLS");
  EXPECT_EQ(judged(nullptr, "SMTPS", Tcp), "TLS");
  EXPECT_EQ(judged(nullptr, "MDNS", Udp), "DNS");
  EXPECT_EQ(judged("MDNS", "DNS", Udp), "DNS");
  EXPECT_EQ(judged(nullptr, "LLMNR", Udp), "DNS");
}

TEST_F(ProtocolEvidence, WhatThePortOrAddressDecidesProvesNothing) {
  EXPECT_EQ(judged(nullptr, "TargusDataspeed", Tcp), "Unknown");
  EXPECT_EQ(judged(nullptr, "NTP", Udp), "Unknown");
  EXPECT_EQ(judged(nullptr, "FTP_DATA", Tcp), "Unknown");
  EXPECT_EQ(judged(nullptr, "TeamViewer", Tcp), "Unknown");
  // A pair whose code path decided by address: no STUN bytes were seen either.
  EXPECT_EQ(judged("STUN", "GoogleHangoutDuo", Udp), "Unknown");
  EXPECT_EQ(judged("NetBIOS", "SMBv23", Tcp), "Unknown");
  // The transport matters where only one path is weak: RDP over UDP is, over TCP it is not.
  EXPECT_EQ(judged(nullptr, "RDP", Udp), "Unknown");
  EXPECT_EQ(judged(nullptr, "RDP", Tcp), "RDP");
}

TEST_F(ProtocolEvidence, StunKeepsItsOwnNameOnly) {
  EXPECT_EQ(judged(nullptr, "STUN", Udp), "STUN");
  EXPECT_EQ(judged("STUN", "WhatsAppCall", Udp), "STUN");
}

TEST_F(ProtocolEvidence, ACachedNameKeepsOnlyTheMasterThisFlowProved) {
  EXPECT_EQ(judged("TLS", "Google", Tcp, Confidence::DpiCache), "TLS");
  EXPECT_EQ(judged(nullptr, "Ookla", Tcp, Confidence::DpiCache), "Unknown");
  EXPECT_EQ(judged(nullptr, "BitTorrent", Tcp, Confidence::DpiCache), "Unknown");
}

TEST_F(ProtocolEvidence, MalformedBytesAreNotDns) {
  EXPECT_EQ(judged(nullptr, "DNS", Tcp, Confidence::Dpi, true), "Unknown");
  EXPECT_EQ(judged(nullptr, "MDNS", Udp, Confidence::Dpi, true), "Unknown");
  // Another dissector's complaint does not undo SSH that its own dissector saw.
  EXPECT_EQ(judged(nullptr, "SSH", Tcp, Confidence::Dpi, true), "SSH");
}

TEST_F(ProtocolEvidence, EveryRuleNamesAProtocolOfTheLinkedNdpi) {
  std::set<uint16_t> seen;
  for (const auto& rule : dpi::evidenceRules()) {
    EXPECT_NE(catalog_.name(rule.protocol), "Unknown") << rule.protocol;
    EXPECT_NE(std::string(rule.how), "");
    if (rule.evidence == Evidence::NamedByPort) {
      EXPECT_NE(rule.alias, 0) << catalog_.name(rule.protocol);
      EXPECT_EQ(dpi::evidenceFor(rule.alias, 0), Evidence::Payload) << catalog_.name(rule.alias);
    }
    seen.insert(rule.protocol);
  }
  EXPECT_GE(seen.size(), 40u);
  EXPECT_EQ(dpi::evidenceFor(id("HTTP"), Tcp), Evidence::Payload);
  EXPECT_EQ(dpi::evidenceFor(id("NTP"), Udp), Evidence::DecidedByPort);
  EXPECT_EQ(dpi::evidenceFor(id("NTP"), Tcp), Evidence::Payload);  // no TCP rule: nothing known
  EXPECT_EQ(dpi::evidenceFor(id("NTP"), 0), Evidence::DecidedByPort);
}

}  // namespace
}  // namespace bulkhead
