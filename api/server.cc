#include "api/server.h"

#include "api/client.h"
#include "api/line_socket.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace bulkhead::api {

std::unique_ptr<ApiServer> ApiServer::open(const std::string& path, const std::string& group,
                                           std::string* error) {
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
  if (::chmod(path.c_str(), mode) != 0 || ::listen(fd, 16) != 0) {
    *error = "cannot serve " + path + ": " + std::strerror(errno);
    ::close(fd);
    ::unlink(path.c_str());
    return nullptr;
  }
  return std::unique_ptr<ApiServer>(new ApiServer(fd, path));
}

ApiServer::~ApiServer() {
  ::close(fd_);
  ::unlink(path_.c_str());
}

void ApiServer::serveReady(const Handler& handler) {
  for (;;) {
    const int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      return;  // EAGAIN: nothing more waiting
    }
    serve(client, handler);
    ::close(client);
  }
}

void ApiServer::serve(int client, const Handler& handler) {
  setTimeouts(client, 2);
  std::string line;
  nlohmann::json reply;
  if (!readLine(client, line)) {
    reply = {{"ok", false}, {"error", "expected one JSON request line"}};
  } else {
    const auto request = nlohmann::json::parse(line, nullptr, false);
    if (request.is_discarded() || !request.is_object()) {
      reply = {{"ok", false}, {"error", "request is not a JSON object"}};
    } else {
      reply = handler(request);
    }
  }
  writeAll(client, reply.dump() + "\n");
}

}  // namespace bulkhead::api
