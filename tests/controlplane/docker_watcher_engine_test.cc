// The Docker watcher against an engine that says what no real engine should: whatever arrives,
// the watcher reports it, retries with its back-off and recovers once the engine makes sense.
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "controlplane/docker_watcher.h"
#include "tests/support/fake_engine.h"

namespace bulkhead::controlplane {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

const std::string Id = "5b1e0c7f9a2d4e6b8c0a1f3e5d7b9a2c4e6f8a0b1c3d5e7f9a2b4c6d8e0f1a3b";

std::string inspectBody(const std::string& running = "true") {
  return R"({"Id":")" + Id + R"(","Name":"/api-1","State":{"Running":)" + running +
         R"(},"Config":{"Image":"busybox","Labels":{"app":"api"}},
         "NetworkSettings":{"SandboxKey":"/var/run/docker/netns/x","Networks":{}}})";
}

class DockerWatcherEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::temp_directory_path() /
             ("bulkhead-engine-" + std::to_string(::getpid()) + ".sock"))
                .string();
    engine_ = std::make_unique<testing::FakeEngine>(path_);
    ASSERT_TRUE(engine_->listening());
    engine_->answer("/version", {200, R"({"Version":"24.0.0","ApiVersion":"1.43",
                                           "MinAPIVersion":"1.12"})"});
    engine_->answer("/v1.41/networks", {200, "[]"});
    engine_->answer("/v1.41/containers/json", {200, R"([{"Id":")" + Id + R"("}])"});
    engine_->answer("/v1.41/containers/" + Id + "/json", {200, inspectBody()});
  }
  void TearDown() override {
    watcher_.reset();
    engine_.reset();
  }

  void start() {
    watcher_ = std::make_unique<DockerWatcher>(path_);
    watcher_->start();
  }

  // The updates that arrive within `seconds` until one satisfies `done`.
  std::vector<DockerUpdate> waitFor(const std::function<bool(const DockerUpdate&)>& done,
                                    double seconds = 15) {
    std::vector<DockerUpdate> seen;
    const auto until = steady_clock::now() + std::chrono::duration<double>(seconds);
    while (steady_clock::now() < until) {
      pollfd ready{watcher_->fd(), POLLIN, 0};
      ::poll(&ready, 1, 50);
      for (auto& update : watcher_->take()) {
        seen.push_back(std::move(update));
        if (done(seen.back())) {
          return seen;
        }
      }
    }
    ADD_FAILURE() << "no such update within " << seconds << " s (" << seen.size() << " others)";
    return seen;
  }

  void waitForRequests(const std::string& path, size_t count) {
    const auto until = steady_clock::now() + std::chrono::seconds(15);
    while (engine_->requests(path) < count && steady_clock::now() < until) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    ASSERT_GE(engine_->requests(path), count) << path;
  }

  static bool isResync(const DockerUpdate& update) {
    return update.kind == DockerUpdate::Kind::Resync;
  }

  std::string path_;
  std::unique_ptr<testing::FakeEngine> engine_;
  std::unique_ptr<DockerWatcher> watcher_;
};

// Each of these terminated the agent before: a type error in the watcher's thread, or a stack
// overflow copying a value nested 200,000 deep.
TEST_F(DockerWatcherEngineTest, AnInspectAnswerThatIsNotAContainerIsRetriedNotFatal) {
  const std::string inspectPath = "/v1.41/containers/" + Id + "/json";
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  for (const std::string& nonsense :
       {std::string("[]"), std::string(""), std::string("garbage"), deep}) {
    SCOPED_TRACE(nonsense.substr(0, 20));
    engine_->answer(inspectPath, {200, nonsense});
    const size_t before = engine_->requests(inspectPath);
    if (!watcher_) {
      start();
    }
    waitForRequests(inspectPath, before + 1);
    EXPECT_FALSE(watcher_->connected());
  }
  engine_->answer(inspectPath, {200, inspectBody()});
  const auto updates = waitFor(isResync, 30);  // after a back-off grown to 8 s
  ASSERT_FALSE(updates.empty());
  ASSERT_EQ(updates.back().containers.size(), 1u);
  EXPECT_EQ(updates.back().containers[0].name, "api-1");
  EXPECT_EQ(watcher_->apiVersion(), "1.41");
}

TEST_F(DockerWatcherEngineTest, RunningThatIsNotABooleanIsNotRunning) {
  engine_->answer("/v1.41/containers/" + Id + "/json", {200, inspectBody(R"("yes")")});
  start();
  const auto updates = waitFor(isResync);
  ASSERT_FALSE(updates.empty());
  EXPECT_TRUE(updates.back().containers.empty());
}

TEST_F(DockerWatcherEngineTest, AnAnswerTooLargeIsRefusedNotBuffered) {
  // 50 MB where a few hundred bytes belong.
  engine_->answer("/version", {200, R"({"Version":")" + std::string(50 << 20, 'x') + R"("})"});
  start();
  waitForRequests("/version", 1);
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_FALSE(watcher_->connected());
  EXPECT_EQ(engine_->requests("/v1.41/networks"), 0u);
  engine_->answer("/version", {200, R"({"ApiVersion":"1.41"})"});
  ASSERT_FALSE(waitFor(isResync).empty());
}

TEST_F(DockerWatcherEngineTest, EventsOfTheWrongShapeAreLeftOutAndTheNextIsRead) {
  start();
  ASSERT_FALSE(waitFor(isResync).empty());
  waitForRequests("/v1.41/events", 1);
  engine_->event(R"({"Type":"network","Action":"connect","Actor":"a string"})"
                 "\n");
  engine_->event(R"({"Type":"container","Action":"start","Actor":{"ID":7}})"
                 "\n");
  engine_->event(R"({"Type":"container","Action":"start","Actor":[]})"
                 "\n");
  engine_->event("[1,2,3]\n");
  engine_->event(std::string(100000, '{') + "\n");
  engine_->event("\xff\xfe not json\n");
  engine_->event(R"({"Type":"container","Action":"start","timeNano":"soon","Actor":{"ID":")" + Id +
                 R"("}})"
                 "\n");
  const auto updates =
      waitFor([](const DockerUpdate& u) { return u.kind == DockerUpdate::Kind::Running; });
  ASSERT_FALSE(updates.empty());
  EXPECT_EQ(updates.back().id, Id);
  EXPECT_EQ(updates.back().sinceNs, 0u);  // "soon" is not a time
  EXPECT_TRUE(watcher_->connected());
  EXPECT_EQ(engine_->requests("/v1.41/events"), 1u);  // the stream held through all of it
}

TEST_F(DockerWatcherEngineTest, AnEventLineTooLongEndsTheStreamAndAResyncFollows) {
  start();
  ASSERT_FALSE(waitFor(isResync).empty());
  waitForRequests("/v1.41/events", 1);
  engine_->event(std::string(60 << 20, ' '));  // 60 MB and no newline yet
  ASSERT_FALSE(waitFor(isResync).empty());
  waitForRequests("/v1.41/events", 2);
}

TEST_F(DockerWatcherEngineTest, AnEventStreamThatFailsAtOnceBacksOff) {
  start();
  ASSERT_FALSE(waitFor(isResync).empty());
  // While the stream keeps closing at once, the watcher must not resync every half second.
  for (int i = 0; i < 40; ++i) {
    engine_->endStreams();
    std::this_thread::sleep_for(milliseconds(100));
  }
  // 4 s of failures: with a growing back-off (0.5, 1, 2 s) that is 4 resyncs at most; a back-off
  // that restarts after each resync makes it 8.
  EXPECT_LE(engine_->requests("/version"), 5u);
  EXPECT_GE(engine_->requests("/version"), 2u);
}

}  // namespace
}  // namespace bulkhead::controlplane
