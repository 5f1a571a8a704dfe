#pragma once

// A real rsyslogd (Debian's rsyslog) on a loopback UDP port, started and ended (by PID) by the
// test that makes it; what it received, one line per message with the RFC 5424 fields it
// parsed: version|facility|severity|hostname|app-name|procid|msgid|structured-data|msg.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/temp_dir.h"

extern char** environ;

namespace bulkhead::testing {

class Rsyslog {
 public:
  explicit Rsyslog(const TempDir& dir) : out_(dir.file("received.log")) {
    const int probe = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    ::bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    ::getsockname(probe, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    ::close(probe);
    const std::string config = dir.write(
        "rsyslog.conf",
        "global(workDirectory=\"" + dir.file(".") +
            "\")\n"
            "module(load=\"imudp\")\n"
            "input(type=\"imudp\" address=\"127.0.0.1\" port=\"" +
            std::to_string(port_) +
            "\")\n"
            "template(name=\"fields\" type=\"string\" string=\"%protocol-version%|"
            "%syslogfacility-text%|%syslogseverity-text%|%hostname%|%app-name%|%procid%|%msgid%|"
            "%structured-data%|%msg%\\n\")\n"
            "action(type=\"omfile\" file=\"" +
            out_ + "\" template=\"fields\")\n");
    const std::string pidFile = dir.file("rsyslog.pid");
    std::vector<std::string> args = {"/usr/sbin/rsyslogd", "-n", "-f", config, "-i", pidFile};
    std::vector<char*> argv;
    for (auto& arg : args) {
      argv.push_back(arg.data());
    }
    argv.push_back(nullptr);
    if (::posix_spawn(&pid_, argv[0], nullptr, nullptr, argv.data(), environ) != 0) {
      pid_ = -1;
    }
  }
  ~Rsyslog() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      for (int i = 0; i < 50 && ::waitpid(pid_, &status, WNOHANG) == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      if (::waitpid(pid_, &status, WNOHANG) == 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
      }
    }
  }
  bool started() const { return pid_ > 0; }
  uint16_t port() const { return port_; }
  std::string received() const { return readFile(out_); }

 private:
  std::string out_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace bulkhead::testing
