#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace bulkhead::controlplane {

// HTTP to the Docker engine's API over its Unix socket (libcurl). Blocking; the Docker watcher
// calls it from its own thread.
class DockerClient {
 public:
  struct Response {
    long status = 0;
    std::string body;
  };

  // `socketPath`: the engine's socket, e.g. /var/run/docker.sock. `timeoutSeconds` bounds every
  // request but the event stream.
  DockerClient(std::string socketPath, int timeoutSeconds);

  // GET `path` ("/v1.41/containers/json"). nullopt with `error` when the engine is unreachable,
  // the connection broke or the body would be larger than `maxBytes`; an HTTP error status is a
  // response, not an error.
  std::optional<Response> get(const std::string& path, std::string* error,
                              size_t maxBytes = DefaultMaxBody) const;

  // GET `path` and hand each newline-terminated line of the body to `onLine` as it arrives, until
  // the engine closes the stream or sends a line longer than `maxLine` (false, with `error`) or
  // `stopRequested` answers true (true). `stopRequested` is asked at least once a second.
  bool stream(const std::string& path, const std::function<void(std::string_view)>& onLine,
              const std::function<bool()>& stopRequested, std::string* error, size_t maxLine) const;

  static constexpr size_t DefaultMaxBody = 4 << 20;

  const std::string& socketPath() const { return socketPath_; }

 private:
  std::string socketPath_;
  int timeoutSeconds_;
};

}  // namespace bulkhead::controlplane
