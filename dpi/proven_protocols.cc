#include "dpi/proven_protocols.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace bulkhead::dpi {
namespace {

constexpr std::array Proven = std::to_array<ProvenProtocol>({
    {"HTTP", "nginx-light", "curl", ""},
    {"TLS", "openssl s_server", "curl (HTTPS with SNI), Python's ssl with a split ClientHello", ""},
    {"DNS", "dnsmasq", "dig (UDP and TCP)", ""},
    {"SSH", "openssh-server", "ssh", ""},
    {"PostgreSQL", "postgresql 15", "psql",
     "nDPI 4.2 wants the server's one-byte answer to an SSLRequest, or an authentication request "
     "alone in its packet: a session without SSLRequest (sslmode=disable) under trust or "
     "SCRAM authentication stays Unknown"},
    {"MySQL", "mariadb-server 10.11", "mariadb", ""},
    {"Redis", "redis-server 7.0", "redis-cli",
     "nDPI 4.2 wants the first reply to begin with + or :, so a session whose first command is "
     "answered with a bulk string ($) or an array (*) stays Unknown: a GET first, or redis-cli "
     "reading commands from a terminal or stdin (it asks COMMAND DOCS first)"},
    {"Memcached", "memcached", "memccp and memcstat (libmemcached-tools)",
     "nDPI 4.2 wants two known commands or replies: a session of a single get stays Unknown"},
    {"MQTT", "mosquitto", "mosquitto_pub", ""},
    {"SMTP", "OpenSMTPD", "swaks", ""},
    {"AMQP", "rabbitmq-server", "amqp-declare-queue (amqp-tools)", ""},
});

bool sameName(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::span<const ProvenProtocol> provenProtocols() {
  return Proven;
}

const ProvenProtocol* findProven(std::string_view name) {
  const auto found = std::find_if(Proven.begin(), Proven.end(),
                                  [&](const ProvenProtocol& p) { return sameName(p.name, name); });
  return found == Proven.end() ? nullptr : &*found;
}

}  // namespace bulkhead::dpi
