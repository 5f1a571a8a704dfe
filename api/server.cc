#include "api/server.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "api/client.h"
#include "api/line_socket.h"
#include "text/json_text.h"
#include "text/untrusted_json.h"

namespace bulkhead::api {
namespace {

uint64_t monotonicMs() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return uint64_t(now.tv_sec) * 1000 + uint64_t(now.tv_nsec) / 1000000;
}

nlohmann::json refusal(const std::string& why) {
  return {{"ok", false}, {"error", why}};
}

}  // namespace

std::unique_ptr<ApiServer> ApiServer::open(const std::string& path, const std::string& group,
                                           std::string* error) {
  return open(path, group, Limits{}, error);
}

std::unique_ptr<ApiServer> ApiServer::open(const std::string& path, const std::string& group,
                                           const Limits& limits, std::string* error) {
  sockaddr_un address;
  if (!fillAddress(path, address, error)) {
    return nullptr;
  }
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  // A socket file left by a crashed agent is only removed when nobody answers on it.
  if (std::filesystem::exists(path, ec)) {
    std::string ignored;
    if (!callApi(path, {{"command", "ping"}}, &ignored, 1).is_null()) {
      *error = "another agent is already serving " + path;
      return nullptr;
    }
    ::unlink(path.c_str());
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return nullptr;
  }
  // Create the file with no access at all, then open it up: no window where it is too open.
  const mode_t oldMask = ::umask(0777);
  const int bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  const int bindErrno = errno;
  ::umask(oldMask);
  if (bound != 0) {
    *error = "bind " + path + ": " + std::strerror(bindErrno);
    ::close(fd);
    return nullptr;
  }
  mode_t mode = 0600;
  if (!group.empty()) {
    const struct group* entry = ::getgrnam(group.c_str());
    if (entry == nullptr || ::chown(path.c_str(), 0, entry->gr_gid) != 0) {
      *error = "cannot give " + path + " to group '" + group + "'";
      ::close(fd);
      ::unlink(path.c_str());
      return nullptr;
    }
    mode = 0660;
  }
  // The kernel's own cap (net.core.somaxconn) applies: a burst of CNI ADDs waits to be accepted
  // instead of being refused.
  const int epoll = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event listening{EPOLLIN, {.fd = fd}};
  if (::chmod(path.c_str(), mode) != 0 || ::listen(fd, SOMAXCONN) != 0 || epoll < 0 ||
      ::epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &listening) != 0) {
    *error = "cannot serve " + path + ": " + std::strerror(errno);
    ::close(fd);
    if (epoll >= 0) {
      ::close(epoll);
    }
    ::unlink(path.c_str());
    return nullptr;
  }
  return std::unique_ptr<ApiServer>(new ApiServer(fd, epoll, path, limits));
}

ApiServer::~ApiServer() {
  for (const auto& [client, connection] : connections_) {
    ::close(client);
  }
  ::close(epoll_);
  ::close(listener_);
  ::unlink(path_.c_str());
}

void ApiServer::serve(const Handler& handler) {
  const uint64_t now = monotonicMs();
  epoll_event events[64];
  // Bounded per turn: a flood of clients cannot keep the control thread from its other work.
  for (int round = 0; round < 4; ++round) {
    const int ready = ::epoll_wait(epoll_, events, 64, 0);
    if (ready <= 0) {
      break;
    }
    for (int i = 0; i < ready; ++i) {
      const int fd = events[i].data.fd;
      if (fd == listener_) {
        accept(now);
        continue;
      }
      const auto found = connections_.find(fd);
      if (found == connections_.end()) {
        continue;
      }
      if (found->second.answering) {
        write(fd, found->second);
      } else {
        read(fd, found->second, handler);
      }
    }
  }
  expire(monotonicMs());
}

void ApiServer::accept(uint64_t nowMs) {
  for (int accepted = 0; accepted < 64; ++accepted) {
    if (connections_.size() >= limits_.maxConnections) {
      const auto oldest = std::min_element(
          connections_.begin(), connections_.end(),
          [](const auto& a, const auto& b) { return a.second.acceptedMs < b.second.acceptedMs; });
      if (nowMs < oldest->second.acceptedMs + limits_.evictAfterMs) {
        // All busy and none idle: the rest wait in the backlog. Not listening meanwhile keeps the
        // loop's poll from waking for them at once, again and again.
        listen(false);
        return;
      }
      ++cutOff_;
      close(oldest->first);
    }
    const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (client < 0) {
      return;  // EAGAIN: nobody else waiting
    }
    epoll_event event{EPOLLIN | EPOLLRDHUP, {.fd = client}};
    if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, client, &event) != 0) {
      ::close(client);
      continue;
    }
    connections_[client].acceptedMs = nowMs;
  }
}

void ApiServer::read(int client, Connection& connection, const Handler& handler) {
  char buffer[16384];
  bool closed = false;
  for (;;) {
    const ssize_t received = ::recv(client, buffer, sizeof(buffer), 0);
    if (received > 0) {
      connection.in.append(buffer, static_cast<size_t>(received));
      if (connection.in.find('\n') != std::string::npos ||
          connection.in.size() > text::ApiRequestLimits.maxBytes) {
        break;
      }
      continue;
    }
    if (received < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (errno == EINTR) {
        continue;
      }
      return;  // the rest of the request is still on its way
    }
    closed = true;  // EOF or error: what arrived is all there is
    break;
  }
  const size_t end = connection.in.find('\n');
  if (end == std::string::npos && connection.in.size() > text::ApiRequestLimits.maxBytes) {
    answer(client, connection,
           refusal("a request is one line of at most " +
                   std::to_string(text::ApiRequestLimits.maxBytes) + " bytes"));
    return;
  }
  if (end == std::string::npos && !closed) {
    return;
  }
  if (end == std::string::npos && connection.in.empty()) {
    close(client);
    return;
  }
  connection.in.resize(std::min(end, connection.in.size()));
  std::string error;
  const auto request = text::parseUntrusted(connection.in, text::ApiRequestLimits, &error);
  if (!request) {
    answer(client, connection, refusal("the request is not JSON: " + error));
  } else if (!request->is_object()) {
    answer(client, connection, refusal("request is not a JSON object"));
  } else {
    nlohmann::json reply;
    try {
      reply = handler(*request);
    } catch (const std::exception& e) {
      // A handler that trips over a request is a bug to report, not a reason to stop serving.
      reply = refusal(std::string("the agent could not handle the request: ") + e.what());
    }
    answer(client, connection, reply);
  }
}

void ApiServer::answer(int client, Connection& connection, const nlohmann::json& reply) {
  connection.in.clear();
  connection.in.shrink_to_fit();
  connection.out = text::dumpJson(reply) + "\n";
  connection.answering = true;
  epoll_event event{EPOLLOUT | EPOLLRDHUP, {.fd = client}};
  ::epoll_ctl(epoll_, EPOLL_CTL_MOD, client, &event);
  write(client, connection);
}

void ApiServer::write(int client, Connection& connection) {
  while (connection.sent < connection.out.size()) {
    const ssize_t written =
        ::send(client, connection.out.data() + connection.sent,
               connection.out.size() - connection.sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (written < 0 && errno == EINTR) {
      continue;
    }
    if (written < 0 && errno == EAGAIN) {
      return;  // the client reads slowly: more when it is writable again
    }
    if (written <= 0) {
      break;  // gone
    }
    connection.sent += static_cast<size_t>(written);
  }
  close(client);
}

void ApiServer::close(int client) {
  ::epoll_ctl(epoll_, EPOLL_CTL_DEL, client, nullptr);
  ::close(client);
  connections_.erase(client);
  listen(true);
}

void ApiServer::listen(bool on) {
  if (on == listening_) {
    return;
  }
  epoll_event event{EPOLLIN, {.fd = listener_}};
  ::epoll_ctl(epoll_, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, listener_, &event);
  listening_ = on;
}

void ApiServer::expire(uint64_t nowMs) {
  if (!listening_) {
    const bool evictable = std::any_of(connections_.begin(), connections_.end(), [&](auto& c) {
      return nowMs >= c.second.acceptedMs + limits_.evictAfterMs;
    });
    if (evictable || connections_.size() < limits_.maxConnections) {
      listen(true);  // accept() cuts the oldest off for whoever waits
    }
  }
  for (auto it = connections_.begin(); it != connections_.end();) {
    const int client = it->first;
    auto& connection = it->second;
    ++it;
    if (nowMs < connection.acceptedMs + limits_.deadlineMs) {
      continue;
    }
    ++cutOff_;
    if (!connection.answering) {
      // Said in passing, without waiting: the client may be gone or not reading.
      const std::string late = text::dumpJson(refusal("no complete request line in time")) + "\n";
      [[maybe_unused]] const ssize_t ignored =
          ::send(client, late.data(), late.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    close(client);
  }
}

}  // namespace bulkhead::api
