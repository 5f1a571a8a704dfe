#include "api/line_socket.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <cstring>

namespace bulkhead::api {

bool fillAddress(const std::string& path, sockaddr_un& address, std::string* error) {
  std::memset(&address, 0, sizeof(address));
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) {
    *error = "socket path too long: " + path;
    return false;
  }
  std::memcpy(address.sun_path, path.c_str(), path.size());
  return true;
}

void setTimeouts(int fd, int seconds) {
  timeval timeout{seconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
}

bool writeAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t written = ::send(fd, text.data() + done, text.size() - done, MSG_NOSIGNAL);
    if (written <= 0) {
      return false;
    }
    done += static_cast<size_t>(written);
  }
  return true;
}

bool readLine(int fd, std::string& line, size_t maxBytes) {
  char buffer[65536];
  while (line.size() <= maxBytes) {
    const ssize_t received = ::recv(fd, buffer, sizeof(buffer), 0);
    if (received <= 0) {
      return !line.empty();
    }
    line.append(buffer, static_cast<size_t>(received));
    if (const size_t end = line.find('\n', line.size() - static_cast<size_t>(received));
        end != std::string::npos) {
      line.resize(end);
      return true;
    }
  }
  return false;
}

}  // namespace bulkhead::api
