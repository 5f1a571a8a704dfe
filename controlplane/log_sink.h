#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace bulkhead::controlplane {

// Where the agent's JSON-line logs (violations, flows) go, as the configuration spells it:
//   /path/file.jsonl               appended; rotated by size when maxBytes > 0, else by logrotate
//                                  (reopen() on SIGHUP)
//   stdout                         standard output (journald, a container runtime's log driver)
//   syslog                         RFC 5424 to the local syslog socket, /dev/log
//   syslog+unix:///path/socket     RFC 5424 datagrams to that Unix socket
//   syslog+udp://host:port         RFC 5424 datagrams over UDP (RFC 5426)
struct LogTarget {
  std::string spec;
  uint64_t maxBytes = 0;  // files: rotate past this size (0: never, leave it to logrotate)
  unsigned files = 5;     // files: rotated files kept beside the live one
  // syslog: the facility (RFC 5424 numbers: 16 is local0) and the message's MSGID and severity.
  unsigned facility = 16;
  std::string messageId = "-";
  unsigned severity = 6;  // informational
};

// "local0".."local7", "daemon", "user", "security"/"auth", "authpriv": the RFC 5424 number;
// false for anything else.
bool parseSyslogFacility(std::string_view name, unsigned& out);

// Checks the spec's grammar only; false with *error saying what is wrong.
bool validLogTarget(const std::string& spec, std::string* error);

// One line-oriented destination. Each write is one line, whole or not at all as far as the
// destination allows (one write(2), one datagram). Not thread-safe: the control thread owns it.
class LogSink {
 public:
  virtual ~LogSink() = default;
  // `line` without its newline. False (and the destination's error in *error) when it failed.
  virtual bool write(std::string_view line, std::string* error) = 0;
  // Reopens a file after an external rotation; true and nothing done for the others.
  virtual bool reopen(std::string* error) = 0;
  // What `bulkhead status` shows: the path, "stdout", or the syslog address.
  virtual std::string describe() const = 0;
};

std::unique_ptr<LogSink> openLogSink(const LogTarget& target, std::string* error);

// One RFC 5424 message: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG.
std::string formatRfc5424(unsigned facility, unsigned severity, uint64_t timeNs,
                          std::string_view hostname, std::string_view appName, int pid,
                          std::string_view messageId, std::string_view message);

}  // namespace bulkhead::controlplane
