// The agent's local API as a client reaches it: arbitrary bytes on a connection to a real
// ApiServer, whose handler checks an attach request's endpoint the way the agent does. Every
// connection gets one JSON answer, and the server keeps serving.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "api/endpoint_request.h"
#include "api/line_socket.h"
#include "api/server.h"
#include "text/untrusted_json.h"

namespace {

using namespace bulkhead;

nlohmann::json handle(const nlohmann::json& request) {
  const std::string command = text::stringMember(request, "command");
  if (command == "attach") {
    api::EndpointRequest endpoint;
    const auto* raw = text::member(request, "endpoint");
    const std::string failure =
        api::parseEndpointRequest(raw != nullptr ? *raw : nlohmann::json(), endpoint);
    if (!failure.empty()) {
      return {{"ok", false}, {"error", failure}};
    }
    return {{"ok", true}, {"endpoint", api::toJson(endpoint)}};
  }
  return {{"ok", true}, {"command", command}, {"echo", request}};
}

struct Served {
  std::string path = "/tmp/bulkhead-fuzz-api-" + std::to_string(::getpid()) + ".sock";
  std::unique_ptr<api::ApiServer> server;
};

Served& served() {
  static Served* made = [] {
    auto* s = new Served;
    std::string error;
    s->server = api::ApiServer::open(s->path, "", {.deadlineMs = 2000}, &error);
    if (!s->server) {
      __builtin_trap();
    }
    // libFuzzer ends with exit(): the server's socket file goes with the process.
    std::atexit([] { ::unlink(served().path.c_str()); });
    return s;
  }();
  return *made;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Served& s = served();
  sockaddr_un address;
  std::string error;
  api::fillAddress(s.path, address, &error);
  const int client = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(client, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    __builtin_trap();
  }
  // One request line: the input up to its first newline, then the newline.
  std::string request(reinterpret_cast<const char*>(data), size);
  request = request.substr(0, request.find('\n')) + "\n";
  std::string answer;
  size_t sent = 0;
  for (int turn = 0; turn < 100000; ++turn) {
    if (sent < request.size()) {
      const ssize_t n =
          ::send(client, request.data() + sent, request.size() - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
      sent += n > 0 ? size_t(n) : 0;
    }
    s.server->serve(handle);
    char buffer[65536];
    const ssize_t n = ::recv(client, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n > 0) {
      answer.append(buffer, size_t(n));
    } else if (n == 0) {
      break;  // the server closed: the answer is complete
    }
  }
  ::close(client);
  const auto reply = nlohmann::json::parse(answer, nullptr, false);
  if (!reply.is_object() || !reply.contains("ok") || answer.back() != '\n') {
    __builtin_trap();  // every request is answered with one JSON object line
  }
  return 0;
}
