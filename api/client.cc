#include "api/client.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "api/line_socket.h"
#include "text/json_text.h"
#include "text/untrusted_json.h"

namespace bulkhead::api {

nlohmann::json callApi(const std::string& path, const nlohmann::json& request, std::string* error,
                       int timeoutSeconds) {
  sockaddr_un address;
  if (!fillAddress(path, address, error)) {
    return nullptr;
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return nullptr;
  }
  setTimeouts(fd, timeoutSeconds);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    const int code = errno;
    ::close(fd);
    if (code == ENOENT || code == ECONNREFUSED) {
      *error = "the agent is not running (nothing listens on " + path + ")";
    } else if (code == EACCES || code == EPERM) {
      *error = "access to " + path + " denied (run as root or as a member of the API group)";
    } else {
      *error = "cannot connect to " + path + ": " + std::strerror(code);
    }
    return nullptr;
  }
  std::string line;
  if (!writeAll(fd, text::dumpJson(request) + "\n") || !readLine(fd, line, MaxAnswerBytes)) {
    ::close(fd);
    *error = "no answer from the agent on " + path;
    return nullptr;
  }
  ::close(fd);
  std::string problem;
  auto reply = text::parseUntrusted(line, {MaxAnswerBytes}, &problem);
  if (!reply) {
    *error = "the agent's answer is not JSON: " + problem;
    return nullptr;
  }
  return std::move(*reply);
}

}  // namespace bulkhead::api
