// 200 containers' CNI ADDs at once, then their DELs, through the real bulkhead-cni and a real
// bulkheadd: every ADD answers with its container behind the wire, every DEL takes it away, and
// nothing is left over or there twice (endpoints, tags, the patch panel's ports).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "api/client.h"
#include "tests/integration/lab.h"
#include "tests/support/binaries.h"

namespace bulkhead {
namespace {

using nlohmann::json;
using testing::Host;
using testing::Lab;

constexpr int Containers = 200;

class CniStormTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::haveRoot()) {
      GTEST_SKIP() << "needs root: creates 200 network namespaces and runs a DPDK agent";
    }
    if (const auto tool = testing::missingTool({"ip", "sh"}); !tool.empty()) {
      GTEST_SKIP() << "needs '" << tool << "' (scripts/setup.sh installs it)";
    }
    lab_ = std::make_unique<Lab>();
    for (int i = 0; i < Containers; ++i) {
      hosts_.push_back(&lab_->addHost(
          "c" + std::to_string(i),
          "10.77." + std::to_string(i / 200) + "." + std::to_string(i % 200 + 2) + "/16"));
    }
    bridge_ = lab_->bridgeHosts();
    socket_ = lab_->dir().file("api.sock");
    const std::string policy = lab_->dir().write(
        "policy.yaml",
        "apiVersion: bulkhead.io/v1\nkind: SegmentationPolicy\nmetadata: {name: storm}\n"
        "spec:\n  endpointSelector: {matchLabels: {app: storm}}\n  ingress: []\n");
    const std::string config = lab_->dir().write(
        "bulkhead.yaml", "policy: " + policy + "\napiSocket: " + socket_ +
                             "\nviolationLog: " + lab_->dir().file("violations.log") +
                             "\ninstance: " + lab_->agentInstance() + "\nstateDirectory: " +
                             lab_->dir().file("state") + "\nprotectBridges: [" + bridge_ +
                             "]\nhugepages: off\nmemoryMegabytes: 512\nmbufsPerPort: 4095\n");
    agent_ =
        &lab_->spawn(nullptr, {testing::builtBinary("bulkheadd"), "--config", config}, "agent.log");
    ASSERT_TRUE(agent_->waitForLog("bulkheadd ready", 30)) << agent_->log();
  }

  void TearDown() override {
    if (agent_ != nullptr) {
      agent_->stop(10);
      EXPECT_EQ(agent_->exitCode(), std::optional<int>(0)) << agent_->log();
    }
  }

  // bulkhead-cni as a runtime runs it, for host `i`, in the background.
  testing::Process& cni(const std::string& command, int i) {
    const Host& host = *hosts_[i];
    const json conf = {
        {"cniVersion", "1.0.0"},
        {"name", "storm"},
        {"type", "bulkhead-cni"},
        {"agentSocket", socket_},
        {"labels", {{"app", "storm"}}},
        {"prevResult",
         {{"cniVersion", "1.0.0"},
          {"interfaces",
           {{{"name", bridge_}},
            {{"name", host.hostIfname}},
            {{"name", "eth0"}, {"mac", host.mac}, {"sandbox", "/run/netns/" + host.netns}}}},
          {"ips", {{{"address", host.cidr}, {"interface", 2}}}}}}};
    const std::string input =
        lab_->dir().write(command + "-" + std::to_string(i) + ".json", conf.dump());
    const std::string script = "CNI_COMMAND=" + command + " CNI_CONTAINERID=storm" +
                               std::to_string(i) + " CNI_NETNS=/run/netns/" + host.netns +
                               " CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni" +
                               " CNI_ARGS='IgnoreUnknown=1;K8S_POD_NAME=pod-" + std::to_string(i) +
                               "' exec " + testing::builtBinary("bulkhead-cni") + " < " + input;
    return lab_->spawn(nullptr, {"/bin/sh", "-c", script},
                       command + "-" + std::to_string(i) + ".log");
  }

  // Starts `command` for every container at once and waits for all of them.
  void storm(const std::string& command) {
    std::vector<testing::Process*> runs;
    for (int i = 0; i < Containers; ++i) {
      runs.push_back(&cni(command, i));
    }
    for (int i = 0; i < Containers; ++i) {
      ASSERT_TRUE(testing::waitFor([&] { return runs[i]->exitCode().has_value(); }, 60))
          << command << " " << i << " never ended";
      EXPECT_EQ(runs[i]->exitCode(), std::optional<int>(0))
          << command << " " << i << ": " << runs[i]->log();
    }
  }

  json status() {
    std::string error;
    const json reply = api::callApi(socket_, {{"command", "status"}}, &error, 10);
    EXPECT_FALSE(reply.is_null()) << error;
    return reply;
  }

  std::unique_ptr<Lab> lab_;
  std::vector<Host*> hosts_;
  std::string bridge_;
  std::string socket_;
  testing::Process* agent_ = nullptr;
};

TEST_F(CniStormTest, TwoHundredAddsAndDelsAtOnceLeaveNothingBehindAndNothingTwice) {
  const json before = status();
  const auto tagsBefore = before["wire"]["tagsInUse"].get<size_t>();
  storm("ADD");
  json during = status();
  ASSERT_EQ(during["endpoints"].size(), size_t(Containers)) << agent_->log();
  std::set<std::string> names;
  std::set<int> tags;
  std::set<std::string> interfaces;
  for (const auto& endpoint : during["endpoints"]) {
    names.insert(endpoint["name"].get<std::string>());
    for (const auto& attachment : endpoint["attachments"]) {
      tags.insert(attachment["tag"].get<int>());
      interfaces.insert(attachment["interface"].get<std::string>());
    }
  }
  EXPECT_EQ(names.size(), size_t(Containers));       // pod-0 ... pod-199, each once
  EXPECT_EQ(tags.size(), size_t(Containers));        // one tag each
  EXPECT_EQ(interfaces.size(), size_t(Containers));  // one attachment each
  EXPECT_EQ(during["wire"]["tagsInUse"].get<size_t>(), tagsBefore + Containers);
  storm("DEL");
  const json after = status();
  EXPECT_TRUE(after["endpoints"].empty()) << after["endpoints"].dump();
  EXPECT_EQ(after["wire"]["tagsInUse"].get<size_t>(), tagsBefore) << after["wire"].dump();
  // A second DEL of each (runtimes repeat them) is still fine.
  storm("DEL");
  // And the agent serves on.
  std::string error;
  EXPECT_FALSE(api::callApi(socket_, {{"command", "ping"}}, &error, 5).is_null()) << error;
}

}  // namespace
}  // namespace bulkhead
