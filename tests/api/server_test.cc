// The local API's server in-process: what a hostile or merely slow local client can do to it.
#include "api/server.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "api/client.h"
#include "api/line_socket.h"

namespace bulkhead::api {
namespace {

// An ApiServer served from a thread, as the agent's loop serves it.
class ServedApi {
 public:
  ServedApi(ApiServer::Handler handler, ApiServer::Limits limits = {})
      : path_((std::filesystem::temp_directory_path() /
               ("bulkhead-api-" + std::to_string(::getpid()) + "-" + std::to_string(++count_) +
                ".sock"))
                  .string()) {
    std::string error;
    server_ = ApiServer::open(path_, "", limits, &error);
    EXPECT_TRUE(server_) << error;
    thread_ = std::thread([this, handler = std::move(handler)] {
      while (!stop_) {
        pollfd ready{server_->fd(), POLLIN, 0};
        ::poll(&ready, 1, 20);
        server_->serve(handler);
        connections_ = server_->connections();
      }
    });
  }
  ~ServedApi() {
    stop_ = true;
    thread_.join();
  }
  const std::string& path() const { return path_; }
  size_t connections() const { return connections_; }
  uint64_t cutOff() const { return server_->cutOff(); }

  // A connected client that has sent `text` and then nothing more.
  int connectAndSend(const std::string& text) const {
    sockaddr_un address;
    std::string error;
    fillAddress(path_, address, &error);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    if (!text.empty()) {
      EXPECT_TRUE(writeAll(fd, text));
    }
    return fd;
  }

 private:
  static inline std::atomic<int> count_{0};
  std::string path_;
  std::unique_ptr<ApiServer> server_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> connections_{0};
  std::thread thread_;
};

nlohmann::json echo(const nlohmann::json& request) {
  return {{"ok", true}, {"echo", request}};
}

TEST(ApiServer, AnAnswerWithBytesThatAreNotUtf8IsEscapedNotFatal) {
  // A host name from a packet, as `bulkhead flows` carried it: before, dump() threw on the
  // control thread and the agent terminated.
  ServedApi api([](const nlohmann::json&) {
    return nlohmann::json{{"ok", true},
                          {"host",
                           "ex\xff"
                           "fil.evil.com"}};
  });
  std::string error;
  const auto reply = callApi(api.path(), {{"command", "flows"}}, &error, 5);
  ASSERT_FALSE(reply.is_null()) << error;
  EXPECT_EQ(reply["host"], "ex\\xfffil.evil.com");
  // And the server is still there.
  EXPECT_FALSE(callApi(api.path(), {{"command", "ping"}}, &error, 5).is_null()) << error;
}

TEST(ApiServer, RequestsBeyondTheLimitsAreRefusedWithAReason) {
  ServedApi api(echo);
  const auto ask = [&](const std::string& line) {
    const int fd = api.connectAndSend(line);
    std::string answer;
    EXPECT_TRUE(readLine(fd, answer, MaxAnswerBytes));
    ::close(fd);
    return nlohmann::json::parse(answer);
  };
  // 200,000 levels in an attach request overflowed the agent's stack.
  const auto deep = ask(R"({"command":"attach","endpoint":)" + std::string(200000, '[') +
                        std::string(200000, ']') + "}\n");
  EXPECT_EQ(deep["ok"], false);
  EXPECT_NE(deep["error"].get<std::string>().find("nested deeper than 64"), std::string::npos);
  const auto large = ask(std::string((1 << 20) + 10, ' '));
  EXPECT_NE(large["error"].get<std::string>().find("at most 1048576 bytes"), std::string::npos);
  EXPECT_EQ(ask("[1]\n")["error"], "request is not a JSON object");
  EXPECT_EQ(ask("\xff\n")["ok"], false);
  // Found by api_request_fuzz: a number beyond a double threw past the parser and terminated
  // the agent.
  EXPECT_EQ(ask(R"({"command":"status","n":8e666})" "\n")["ok"], false);
}

TEST(ApiServer, AHandlerThatThrowsAnswersAnErrorAndServingGoesOn) {
  ServedApi api([](const nlohmann::json& request) -> nlohmann::json {
    return {{"ok", true}, {"n", request.at("missing").get<int>()}};
  });
  std::string error;
  const auto reply = callApi(api.path(), {{"command", "x"}}, &error, 5);
  ASSERT_FALSE(reply.is_null()) << error;
  EXPECT_EQ(reply["ok"], false);
  EXPECT_FALSE(callApi(api.path(), {{"command", "x"}}, &error, 5).is_null());
}

TEST(ApiServer, IdleAndTricklingClientsDoNotHoldUpOthers) {
  ServedApi api(echo);
  std::vector<int> held;
  for (int i = 0; i < 100; ++i) {
    held.push_back(api.connectAndSend(i % 2 == 0 ? "" : R"({"command":)"));
  }
  // Served one at a time, each of them held the server for its read timeout: a status behind
  // 100 of them waited minutes. Now each answer comes while all 100 are still open.
  std::string error;
  for (int i = 0; i < 20; ++i) {
    const auto reply = callApi(api.path(), {{"command", "status"}, {"i", i}}, &error, 2);
    ASSERT_FALSE(reply.is_null()) << i << ": " << error;
    EXPECT_EQ(reply["echo"]["i"], i);
  }
  EXPECT_GE(api.connections(), 100u);
  for (const int fd : held) {
    ::close(fd);
  }
}

TEST(ApiServer, AClientThatNeverFinishesItsRequestIsCutOffAtItsDeadline) {
  ServedApi api(echo, {.maxConnections = 256, .deadlineMs = 300});
  const int fd = api.connectAndSend("{");
  std::string answer;
  setTimeouts(fd, 5);
  ASSERT_TRUE(readLine(fd, answer, MaxAnswerBytes));  // before the client's own 5 s
  EXPECT_EQ(nlohmann::json::parse(answer)["error"], "no complete request line in time");
  char byte;
  EXPECT_EQ(::recv(fd, &byte, 1, 0), 0);  // and closed
  ::close(fd);
  EXPECT_GE(api.cutOff(), 1u);
}

TEST(ApiServer, FiveHundredClientsAtOnceAreEveryOneAnswered) {
  ServedApi api(echo);
  // All connected before any is served: a listen backlog of 16 refused 482 of them.
  std::vector<int> clients;
  for (int i = 0; i < 500; ++i) {
    clients.push_back(api.connectAndSend(""));
  }
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(writeAll(clients[i], nlohmann::json{{"command", "ping"}, {"i", i}}.dump() + "\n"));
  }
  int answered = 0;
  for (int i = 0; i < 500; ++i) {
    setTimeouts(clients[i], 10);
    std::string answer;
    if (readLine(clients[i], answer, MaxAnswerBytes) &&
        nlohmann::json::parse(answer)["echo"]["i"] == i) {
      ++answered;
    }
    ::close(clients[i]);
  }
  EXPECT_EQ(answered, 500);
}

TEST(ApiServer, WhenEverySlotIsHeldTheOldestIdleOneMakesRoom) {
  ServedApi api(echo, {.maxConnections = 4, .deadlineMs = 60000, .evictAfterMs = 200});
  std::vector<int> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(api.connectAndSend(""));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::string error;
  EXPECT_FALSE(callApi(api.path(), {{"command", "ping"}}, &error, 5).is_null()) << error;
  EXPECT_GE(api.cutOff(), 1u);
  for (const int fd : held) {
    ::close(fd);
  }
}

}  // namespace
}  // namespace bulkhead::api
