#include "dpi/proven_protocols.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace bulkhead::dpi {
namespace {

constexpr std::array Proven = std::to_array<ProvenProtocol>({
    {"HTTP", "nginx-light", "curl", ""},
    {"TLS", "openssl s_server", "curl (HTTPS with SNI)", ""},
    {"DNS", "dnsmasq", "dig (UDP and TCP)", ""},
    {"SSH", "openssh-server", "ssh", ""},
    {"PostgreSQL", "postgresql 15", "psql", ""},
    {"MySQL", "mariadb-server 10.11", "mariadb", ""},
    {"Redis", "redis-server 7.0", "redis-cli",
     "nDPI 4.2 wants the first reply to begin with + or :, so a session whose first command is "
     "answered with a bulk string ($) or an array (*), such as a GET, stays Unknown"},
    {"Memcached", "memcached", "memcached's text protocol over TCP", ""},
    {"MQTT", "mosquitto", "mosquitto_pub", ""},
    {"SMTP", "opensmtpd", "swaks", ""},
    {"AMQP", "rabbitmq-server", "amqp-publish", ""},
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
