// A client must not be able to pick the protocol a policy sees by picking the port. Generated
// from nDPI's own protocol table: for every protocol nDPI 4.2 associates with a default TCP or
// UDP port, HTTP (with a Host), TLS (with an SNI), SSH and DNS are sent to that port, each flow
// to a server of its own whose only rule allows the port's protocol there. The whole class runs
// through `simulate`'s pipeline (cli::Simulation) as one generated capture.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "cli/simulation.h"
#include "dataplane/pcap_reader.h"
#include "dataplane/pcap_writer.h"
#include "dpi/protocol_catalog.h"
#include "dpi/protocol_evidence.h"
#include "tests/support/frames.h"
#include "tests/support/protocol_payloads.h"
#include "tests/support/temp_dir.h"

namespace bulkhead {
namespace {

using testing::Bytes;

constexpr const char* ClientIp = "10.50.0.1";
constexpr uint64_t Millisecond = 1000000ull;

// The bytes one flow of a case carries, in order, with who sends each.
struct Message {
  bool fromClient;
  Bytes payload;
};

struct Case {
  uint16_t portProtocol = 0;  // nDPI id of the protocol the port belongs to
  bool tcp = true;
  uint16_t port = 0;
  std::string payloadKind;      // HTTP, TLS, SSH, DNS, or "opaque N"
  std::string payloadProtocol;  // what the bytes are ("Unknown" for opaque bytes)
  std::vector<Message> messages;
  std::string serverIp;
};

std::vector<Message> conversation(const std::string& kind, bool tcp) {
  using namespace testing;
  if (kind == "HTTP") {
    return {{true, text(httpRequest("exfil.evil.com"))}, {false, text(HttpOkResponse)}};
  }
  if (kind == "TLS") {
    return {{true, tlsClientHello("exfil.evil.com")}, {false, tlsServerHello()}};
  }
  if (kind == "SSH") {
    // OpenSSH's server speaks first.
    return {{false, text(SshServerBanner)}, {true, text(SshClientBanner)}};
  }
  return {{true, dnsQuery("exfil.evil.com", 0x1234, tcp)}};
}

// Bytes with no protocol in them: what a client that wants to pass as anything would send.
std::vector<Message> opaque(size_t length, uint32_t seed) {
  std::mt19937 random(seed);
  const auto bytes = [&](size_t n) {
    Bytes out(n);
    for (auto& byte : out) {
      byte = static_cast<uint8_t>(random());
    }
    return out;
  };
  return {
      {true, bytes(length)}, {false, bytes(length)}, {true, bytes(length)}, {false, bytes(length)}};
}

// Every (protocol, transport, default port) nDPI knows.
struct PortOwner {
  uint16_t protocol;
  bool tcp;
  uint16_t port;
};

std::vector<PortOwner> defaultPorts(const dpi::NdpiProtocolCatalog& catalog) {
  std::vector<PortOwner> owners;
  for (uint16_t id = 1; id < catalog.count(); ++id) {
    for (uint16_t port : catalog.defaultPorts(id).tcp) {
      owners.push_back({id, true, port});
    }
    for (uint16_t port : catalog.defaultPorts(id).udp) {
      owners.push_back({id, false, port});
    }
  }
  return owners;
}

std::string serverAddress(size_t index) {
  return "10." + std::to_string(60 + index / 65536) + "." + std::to_string((index / 256) % 256) +
         "." + std::to_string(index % 256);
}

// Writes every case as one capture: handshake (TCP), the conversation, 1 ms between packets.
void writeCapture(const std::string& path, std::vector<Case>& cases) {
  std::string error;
  auto writer = dataplane::PcapWriter::open(path, &error);
  ASSERT_TRUE(writer) << error;
  uint64_t now = 1700000000ull * 1000000000ull;
  const auto emit = [&](const Bytes& frame) {
    writer->write(frame.data(), static_cast<uint32_t>(frame.size()),
                  static_cast<uint32_t>(frame.size()), now);
    now += Millisecond;
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    Case& c = cases[i];
    c.serverIp = serverAddress(i);
    const uint16_t clientPort = static_cast<uint16_t>(20000 + i % 40000);
    if (c.tcp) {
      testing::TcpSession session(ClientIp, clientPort, c.serverIp.c_str(), c.port);
      emit(session.syn());
      emit(session.synAck());
      emit(session.ack());
      for (const auto& message : c.messages) {
        const std::string payload = testing::asText(message.payload);
        emit(message.fromClient ? session.fromClient(payload) : session.fromServer(payload));
      }
      emit(session.clientFin());
      emit(session.serverFin());
    } else {
      for (const auto& message : c.messages) {
        const char* src = message.fromClient ? ClientIp : c.serverIp.c_str();
        const char* dst = message.fromClient ? c.serverIp.c_str() : ClientIp;
        const uint16_t srcPort = message.fromClient ? clientPort : c.port;
        const uint16_t dstPort = message.fromClient ? c.port : clientPort;
        emit(testing::ipv4Frame({.src = src, .dst = dst, .protocol = 17, .id = 1},
                                testing::udp(srcPort, dstPort, message.payload)));
      }
    }
  }
  ASSERT_TRUE(writer->close(&error)) << error;
}

// One server endpoint per case, each with its own policy: ingress from the client only on the
// case's port, only for the port's protocol. The policies are built as the model (not YAML):
// the loader refuses to name a protocol nDPI decides by port, and this class must show what
// such a rule would do anyway.
cli::SimulationInput simulationInput(const std::vector<Case>& cases,
                                     const dpi::NdpiProtocolCatalog& catalog) {
  cli::SimulationInput input;
  dataplane::Endpoint client;
  client.name = "client";
  client.labels = {{"role", "client"}};
  client.ips = {*rules::IpAddress::parse(ClientIp)};
  input.endpoints.push_back(client);
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    dataplane::Endpoint server;
    server.name = "server" + std::to_string(i);
    server.labels = {{"case", std::to_string(i)}};
    server.ips = {*rules::IpAddress::parse(c.serverIp)};
    input.endpoints.push_back(server);

    rules::Policy policy;
    policy.name = "case-" + std::to_string(i);
    policy.endpointSelector.matchLabels = {{"case", std::to_string(i)}};
    rules::PeerRule rule;
    rules::EndpointSelector from;
    from.matchLabels = {{"role", "client"}};
    rule.endpoints.push_back(from);
    rules::PortRule ports;
    ports.ports.push_back(
        {c.port, c.port, c.tcp ? rules::L4Protocol::TCP : rules::L4Protocol::UDP});
    ports.l7 = rules::L7Rule{{catalog.name(c.portProtocol)}, {}, {}};
    rule.toPorts.push_back(ports);
    policy.ingress = std::vector<rules::PeerRule>{rule};
    input.policies.policies.push_back(std::move(policy));
  }
  input.pipeline.flows.capacity = 16384;
  return input;
}

std::vector<cli::FlowRecord> simulate(std::vector<Case>& cases,
                                      const dpi::NdpiProtocolCatalog& catalog) {
  testing::TempDir dir;
  const std::string capture = dir.file("class.pcap");
  writeCapture(capture, cases);
  std::string error;
  auto reader = dataplane::PcapReader::open(capture, &error);
  EXPECT_TRUE(reader) << error;
  if (!reader) {
    return {};
  }
  cli::Simulation simulation(simulationInput(cases, catalog));
  return simulation.run(*reader, nullptr).flows;
}

const cli::FlowRecord* recordFor(const std::vector<cli::FlowRecord>& flows, const Case& c) {
  for (const auto& flow : flows) {
    if (flow.dstIp == c.serverIp) {
      return &flow;
    }
  }
  return nullptr;
}

class SteeringClass : public ::testing::Test {
 protected:
  const dpi::NdpiProtocolCatalog catalog_;
};

TEST_F(SteeringClass, ThePortNeverPicksTheProtocolAPolicySees) {
  std::vector<Case> cases;
  for (const auto& owner : defaultPorts(catalog_)) {
    const std::vector<std::string> kinds =
        owner.tcp ? std::vector<std::string>{"HTTP", "TLS", "SSH", "DNS"}
                  : std::vector<std::string>{"DNS"};
    for (const auto& kind : kinds) {
      cases.push_back(
          {owner.protocol, owner.tcp, owner.port, kind, kind, conversation(kind, owner.tcp), ""});
    }
  }
  ASSERT_GT(cases.size(), 400u) << "nDPI's table of default ports looks empty";
  const auto flows = simulate(cases, catalog_);

  size_t denied = 0;
  size_t allowed = 0;
  size_t namedAsFound = 0;
  std::map<std::string, size_t> judgedAs;
  std::set<std::string> portProtocols;
  for (const Case& c : cases) {
    const std::string portProtocol = catalog_.name(c.portProtocol);
    portProtocols.insert(portProtocol);
    const std::string where = c.payloadKind + " to " + (c.tcp ? "TCP " : "UDP ") +
                              std::to_string(c.port) + " (" + portProtocol + "'s port)";
    const cli::FlowRecord* flow = recordFor(flows, c);
    ASSERT_NE(flow, nullptr) << where << ": no flow in the report";
    ++judgedAs[c.payloadKind + " -> " + flow->protocol];
    // What the policy judged is either what the bytes are, or Unknown: never the port's guess.
    EXPECT_TRUE(flow->protocol == c.payloadProtocol || flow->protocol == "Unknown")
        << where << ": judged as " << flow->protocol << " (nDPI: " << flow->masterProtocol << "."
        << flow->appProtocol << ")";
    if (flow->protocol == "Unknown") {
      // Only a dissector that decides by port may take the bytes for something else.
      const auto found = catalog_.find(flow->appProtocol);
      ASSERT_TRUE(found.has_value()) << flow->appProtocol;
      const auto evidence = dpi::evidenceFor(*found, c.tcp ? 6 : 17);
      EXPECT_TRUE(*found == 0 || evidence == dpi::Evidence::DecidedByPort ||
                  evidence == dpi::Evidence::DecidedByAddress)
          << where << ": nDPI named it " << flow->appProtocol << " (" << dpi::toString(evidence)
          << ") yet the policy judged Unknown";
    } else {
      ++namedAsFound;
    }
    if (flow->protocol == portProtocol) {
      // The bytes really are the port's protocol: the rule allows them.
      ++allowed;
      EXPECT_EQ(flow->verdict, "allow") << where;
      continue;
    }
    ++denied;
    EXPECT_EQ(flow->verdict, "deny") << where << ": judged as " << flow->protocol;
    EXPECT_TRUE(flow->enforced) << where;
  }
  std::cout << "steering class: " << cases.size() << " cases (" << portProtocols.size()
            << " protocols with default ports), " << denied << " denied, " << allowed
            << " allowed as their own protocol; " << namedAsFound
            << " named as what the bytes are\n";
  for (const auto& [outcome, count] : judgedAs) {
    std::cout << "  " << outcome << ": " << count << "\n";
  }
  // HTTP, TLS and SSH are recognised on any port but those a port-decided dissector takes first;
  // DNS only on nDPI's DNS ports.
  EXPECT_GE(judgedAs["HTTP -> HTTP"], 90u);
  EXPECT_GE(judgedAs["TLS -> TLS"], 90u);
  EXPECT_GE(judgedAs["SSH -> SSH"], 90u);
}

// Bytes of no protocol at all, to every default port: whatever nDPI names them, the policy must
// judge Unknown. A failure here is a dissector that decides by port and is missing from
// dpi/protocol_evidence.cc.
TEST_F(SteeringClass, OpaqueBytesNeverCountAsAProtocol) {
  std::vector<Case> cases;
  uint32_t seed = 1;
  for (const auto& owner : defaultPorts(catalog_)) {
    for (size_t length : {24u, 64u, 100u, 300u}) {
      cases.push_back({owner.protocol, owner.tcp, owner.port, "opaque " + std::to_string(length),
                       "Unknown", opaque(length, seed++), ""});
    }
  }
  const auto flows = simulate(cases, catalog_);
  std::map<std::string, size_t> namedByNdpi;
  for (const Case& c : cases) {
    const cli::FlowRecord* flow = recordFor(flows, c);
    ASSERT_NE(flow, nullptr);
    if (flow->appProtocol != "Unknown") {
      ++namedByNdpi[flow->masterProtocol + "." + flow->appProtocol];
    }
    EXPECT_EQ(flow->protocol, "Unknown")
        << c.payloadKind << " bytes to " << (c.tcp ? "TCP " : "UDP ") << c.port << " ("
        << catalog_.name(c.portProtocol) << "'s port): nDPI named them " << flow->masterProtocol
        << "." << flow->appProtocol;
  }
  std::cout << "opaque class: " << cases.size() << " flows; nDPI named some anyway:";
  for (const auto& [label, count] : namedByNdpi) {
    std::cout << " " << label << "=" << count;
  }
  std::cout << "\n";
}

}  // namespace
}  // namespace bulkhead
