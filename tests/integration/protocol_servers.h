#pragma once

#include <cstdint>
#include <string>

#include "tests/integration/lab.h"

namespace bulkhead::testing {

// Real servers from Debian's packages, for protocol tests: each runs inside one lab host on that
// host's address, as a lab process (stopped by PID at cleanup, even when the test failed), with
// its files in the lab's directory, and each call returns once the server accepts connections.
// A server that does not come up within its time bound throws std::runtime_error with its log.
class ProtocolServers {
 public:
  ProtocolServers(Lab& lab, const Host& host);

  // The Debian programs these servers and their clients need, for a loud skip when one is
  // missing ("" when all are there).
  static std::string missingProgram();

  void http(uint16_t port);                          // nginx, serving "hello from nginx"
  void tls(uint16_t port, const std::string& name);  // openssl s_server -www, a cert for `name`
  void dns(uint16_t port);       // dnsmasq, UDP and TCP: *.matrix.test is 10.9.9.9
  void ssh(uint16_t port);       // OpenSSH's sshd; sshClientKey() logs in as root
  void postgres(uint16_t port);  // PostgreSQL 15, trust authentication, user postgres
  void mariadb(uint16_t port);   // MariaDB, without grant tables: any user
  void redis(uint16_t port);
  void memcached(uint16_t port);
  void mqtt(uint16_t port);  // mosquitto, anonymous clients
  void smtp(uint16_t port);  // OpenSMTPD, delivering to a maildir in the lab
  void amqp(uint16_t port);  // RabbitMQ (and the epmd it needs), user guest from anywhere

  const std::string& sshClientKey() const { return sshKey_; }

 private:
  // Waits until a TCP connection to the host's address and `port` succeeds from inside it.
  void awaitTcp(uint16_t port, int timeoutSeconds, Process& process, const std::string& what);
  std::string directory(const std::string& name);  // under the lab's directory, created

  Lab& lab_;
  const Host& host_;
  std::string sshKey_;
};

}  // namespace bulkhead::testing
