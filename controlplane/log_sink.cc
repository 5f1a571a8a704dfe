#include "controlplane/log_sink.h"

#include <fcntl.h>
#include <netdb.h>
#include <spdlog/details/log_msg.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <system_error>

#include "controlplane/atomic_file.h"
#include "metrics/metrics_server.h"

namespace bulkhead::controlplane {
namespace {

constexpr std::string_view UnixPrefix = "syslog+unix://";
constexpr std::string_view UdpPrefix = "syslog+udp://";
constexpr const char* DevLog = "/dev/log";

std::string errnoText(int error) {
  return std::error_code(error, std::system_category()).message();
}

bool fail(std::string* error, std::string message) {
  if (error != nullptr) {
    *error = std::move(message);
  }
  return false;
}

// O_APPEND: every line lands at the end even when a rotator truncates the file under us, and
// the lines of one write(2) are never interleaved with others'.
int openAppend(const std::string& path, std::string* error) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      fail(error, "cannot create directory " + parent.string() + ": " + ec.message());
      return -1;
    }
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) {
    fail(error, "cannot open " + path + ": " + errnoText(errno));
  }
  return fd;
}

class AppendFileSink : public LogSink {
 public:
  AppendFileSink(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~AppendFileSink() override { ::close(fd_); }
  bool write(std::string_view line, std::string* error) override {
    std::string out(line);
    out += '\n';
    return writeAll(fd_, out) || fail(error, errnoText(errno));
  }
  bool reopen(std::string* error) override {
    const int fd = openAppend(path_, error);
    if (fd < 0) {
      return false;
    }
    ::close(fd_);
    fd_ = fd;
    return true;
  }
  std::string describe() const override { return path_; }

 private:
  std::string path_;
  int fd_;
};

// spdlog's rotating sink: file.jsonl, then file.1.jsonl (the newest rotated) .. file.N.jsonl.
class RotatingFileSink : public LogSink {
 public:
  RotatingFileSink(std::string path, uint64_t maxBytes, unsigned files)
      : path_(std::move(path)), sink_(path_, maxBytes, files) {
    sink_.set_pattern("%v");
  }
  bool write(std::string_view line, std::string* error) override {
    try {
      sink_.log(spdlog::details::log_msg(spdlog::source_loc{}, "", spdlog::level::info,
                                         spdlog::string_view_t(line.data(), line.size())));
      sink_.flush();  // at once: a reader never waits for a buffer to fill
      return true;
    } catch (const std::exception& e) {
      return fail(error, e.what());
    }
  }
  bool reopen(std::string*) override { return true; }  // it rotates itself
  std::string describe() const override { return path_; }

 private:
  std::string path_;
  spdlog::sinks::rotating_file_sink_st sink_;
};

class StdoutSink : public LogSink {
 public:
  bool write(std::string_view line, std::string* error) override {
    std::string out(line);
    out += '\n';
    return writeAll(STDOUT_FILENO, out) || fail(error, errnoText(errno));
  }
  bool reopen(std::string*) override { return true; }
  std::string describe() const override { return "stdout"; }
};

class SyslogSink : public LogSink {
 public:
  SyslogSink(const LogTarget& target, int fd, std::string address)
      : target_(target), fd_(fd), address_(std::move(address)) {
    char name[256] = {};
    hostname_ = ::gethostname(name, sizeof(name) - 1) == 0 && name[0] != '\0' ? name : "-";
    pid_ = ::getpid();
  }
  ~SyslogSink() override { ::close(fd_); }
  bool write(std::string_view line, std::string* error) override {
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    const std::string message = formatRfc5424(
        target_.facility, target_.severity,
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count()),
        hostname_, "bulkheadd", pid_, target_.messageId, line);
    // A connected datagram socket: one message, one datagram; a receiver that is down is an
    // error now (ECONNREFUSED) and the next message tries again.
    if (::send(fd_, message.data(), message.size(), MSG_NOSIGNAL) < 0) {
      return fail(error, "syslog " + address_ + ": " + errnoText(errno));
    }
    return true;
  }
  bool reopen(std::string*) override { return true; }
  std::string describe() const override { return "syslog " + address_; }

 private:
  LogTarget target_;
  int fd_;
  std::string address_;
  std::string hostname_;
  int pid_ = 0;
};

int connectUnix(const std::string& path, std::string* error) {
  sockaddr_un address{};
  if (path.size() >= sizeof(address.sun_path)) {
    fail(error, "syslog socket path too long: " + path);
    return -1;
  }
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    fail(error, "cannot connect to syslog socket " + path + ": " + errnoText(errno));
    if (fd >= 0) {
      ::close(fd);
    }
    return -1;
  }
  return fd;
}

int connectUdp(const std::string& host, uint16_t port, std::string* error) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  const int code = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  if (code != 0) {
    fail(error, "syslog host " + host + ": " + ::gai_strerror(code));
    return -1;
  }
  int fd = -1;
  for (addrinfo* candidate = found; candidate != nullptr && fd < 0;
       candidate = candidate->ai_next) {
    fd = ::socket(candidate->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && ::connect(fd, candidate->ai_addr, candidate->ai_addrlen) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  if (fd < 0) {
    fail(error, "cannot reach syslog at " + host + ":" + std::to_string(port));
  }
  return fd;
}

}  // namespace

bool parseSyslogFacility(std::string_view name, unsigned& out) {
  if (name.size() == 6 && name.starts_with("local") && name[5] >= '0' && name[5] <= '7') {
    out = 16 + static_cast<unsigned>(name[5] - '0');
    return true;
  }
  static constexpr std::pair<std::string_view, unsigned> Named[] = {
      {"user", 1}, {"daemon", 3}, {"auth", 4}, {"security", 4}, {"authpriv", 10}};
  for (const auto& [known, number] : Named) {
    if (name == known) {
      out = number;
      return true;
    }
  }
  return false;
}

bool validLogTarget(const std::string& spec, std::string* error) {
  if (spec.empty()) {
    return fail(error,
                "an empty log target (a path, stdout, syslog, syslog+unix:///PATH or "
                "syslog+udp://HOST:PORT)");
  }
  if (spec.starts_with(UnixPrefix)) {
    return spec.size() > UnixPrefix.size() && spec[UnixPrefix.size()] == '/'
               ? true
               : fail(error, "'" + spec + "': syslog+unix:// takes an absolute socket path");
  }
  if (spec.starts_with(UdpPrefix)) {
    std::string host;
    uint16_t port = 0;
    std::string why;
    if (!metrics::parseListenAddress(spec.substr(UdpPrefix.size()), host, port, &why) ||
        port == 0) {
      return fail(error, "'" + spec + "': syslog+udp:// takes HOST:PORT, a port from 1 to 65535");
    }
    return true;
  }
  if (spec.starts_with("syslog+")) {
    return fail(error, "'" + spec + "': syslog takes syslog+unix:// or syslog+udp://");
  }
  return true;
}

std::string formatRfc5424(unsigned facility, unsigned severity, uint64_t timeNs,
                          std::string_view hostname, std::string_view appName, int pid,
                          std::string_view messageId, std::string_view message) {
  const auto seconds = static_cast<time_t>(timeNs / 1000000000ull);
  const auto micros = static_cast<unsigned long>((timeNs % 1000000000ull) / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[64];
  std::snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%06luZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, micros);
  // HOSTNAME, APP-NAME and MSGID are PRINTUSASCII without spaces, at most 255, 48 and 32.
  const auto field = [](std::string_view text, size_t limit) {
    std::string out;
    for (const char c : text.substr(0, limit)) {
      out += c > 32 && c < 127 ? c : '_';
    }
    return out.empty() ? std::string("-") : out;
  };
  std::string out = "<" + std::to_string(facility * 8 + severity) + ">1 " + stamp + " " +
                    field(hostname, 255) + " " + field(appName, 48) + " " + std::to_string(pid) +
                    " " + field(messageId, 32) + " - ";
  out += message;
  return out;
}

std::unique_ptr<LogSink> openLogSink(const LogTarget& target, std::string* error) {
  if (!validLogTarget(target.spec, error)) {
    return nullptr;
  }
  if (target.spec == "stdout") {
    return std::make_unique<StdoutSink>();
  }
  if (target.spec == "syslog" || target.spec.starts_with(UnixPrefix)) {
    const std::string path =
        target.spec == "syslog" ? DevLog : target.spec.substr(UnixPrefix.size());
    const int fd = connectUnix(path, error);
    return fd < 0 ? nullptr : std::make_unique<SyslogSink>(target, fd, path);
  }
  if (target.spec.starts_with(UdpPrefix)) {
    std::string host;
    uint16_t port = 0;
    metrics::parseListenAddress(target.spec.substr(UdpPrefix.size()), host, port, error);
    const int fd = connectUdp(host, port, error);
    return fd < 0 ? nullptr
                  : std::make_unique<SyslogSink>(target, fd, target.spec.substr(UdpPrefix.size()));
  }
  if (target.maxBytes > 0) {
    try {
      std::error_code ec;
      const auto parent = std::filesystem::path(target.spec).parent_path();
      if (!parent.empty()) {
        std::filesystem::create_directories(parent, ec);
      }
      return std::make_unique<RotatingFileSink>(target.spec, target.maxBytes, target.files);
    } catch (const std::exception& e) {
      fail(error, "cannot open " + target.spec + ": " + e.what());
      return nullptr;
    }
  }
  const int fd = openAppend(target.spec, error);
  return fd < 0 ? nullptr : std::make_unique<AppendFileSink>(target.spec, fd);
}

}  // namespace bulkhead::controlplane
