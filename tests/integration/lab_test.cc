// The integration lab itself, proven with a plain Linux bridge before any agent is put between
// the namespaces: real ARP/ICMP/TCP between hosts, and nothing left behind afterwards, whether
// the lab went out of scope, the test threw, or the test process was killed.
#include "tests/integration/lab.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace bulkhead::testing {
namespace {

namespace fs = std::filesystem;

// Set in the re-executed copy of this binary that holds a lab until it is killed.
constexpr const char* kHoldEnv = "BULKHEAD_LAB_HOLD";

#define SKIP_UNLESS_LAB_CAN_RUN()                                                   \
  do {                                                                              \
    if (!haveRoot()) {                                                              \
      GTEST_SKIP() << "needs root: creates network namespaces, veths and a bridge"; \
    }                                                                               \
    if (const std::string tool = missingTool({"ip"}); !tool.empty()) {              \
      GTEST_SKIP() << "needs " << tool << " (Debian: iproute2) on PATH";            \
    }                                                                               \
  } while (false)

std::vector<std::string> pingArgs(const std::string& ip, int waitSeconds) {
  const std::vector<std::string> options = {"-c", "1", "-W", std::to_string(waitSeconds), ip};
  std::vector<std::string> argv;
  if (!findOnPath("ping").empty()) {
    argv = {"ping"};
  } else if (!findOnPath("busybox").empty()) {
    argv = {"busybox", "ping"};
  } else {
    return {};
  }
  argv.insert(argv.end(), options.begin(), options.end());
  return argv;
}

// curl if installed, else busybox wget bounded by `timeout` (its own -T segfaults), else
// Debian's python3 with urllib.
std::vector<std::string> httpGetArgs(const std::string& url) {
  if (!findOnPath("curl").empty()) {
    return {"curl", "-sS", "--max-time", "5", url};
  }
  if (!findOnPath("busybox").empty() && !findOnPath("timeout").empty()) {
    return {"timeout", "5", "busybox", "wget", "-q", "-O", "-", url};
  }
  return {"/usr/bin/python3", "-c",
          "import sys, urllib.request\n"
          "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())",
          url};
}

std::string ipOutput(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {findOnPath("ip")};
  argv.insert(argv.end(), args.begin(), args.end());
  return runCommand(argv, 10).out;
}

// Names of the lab still visible on the machine (namespaces and root-namespace links).
std::vector<std::string> leftovers(const std::string& prefix) {
  std::vector<std::string> found;
  for (const std::string& listing : {ipOutput({"netns", "list"}), ipOutput({"-o", "link"})}) {
    std::istringstream lines(listing);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.find(prefix) != std::string::npos) {
        found.push_back(line);
      }
    }
  }
  return found;
}

// Gone, or a zombie nobody reaped yet (PID 1 of a container may never do it).
bool processGone(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = stat.rfind(')');
  return stat.empty() || (close != std::string::npos && close + 2 < stat.size() &&
                          (stat[close + 2] == 'Z' || stat[close + 2] == 'X'));
}

std::string selfExe() {
  return fs::read_symlink("/proc/self/exe").string();
}

// A field "key=value" from the line the held lab prints.
std::string field(const std::string& log, const std::string& key) {
  const auto start = log.find(key + "=");
  if (start == std::string::npos) {
    return "";
  }
  const auto value = start + key.size() + 1;
  return log.substr(value, log.find_first_of(" \n", value) - value);
}

TEST(LabTest, BridgedHostsReachEachOtherOnlyThroughTheBridge) {
  SKIP_UNLESS_LAB_CAN_RUN();
  if (pingArgs("", 1).empty()) {
    GTEST_SKIP() << "needs ping (Debian: iputils-ping) or busybox on PATH";
  }
  Lab lab;
  Host& web = lab.addHost("web", "10.213.0.11/24");
  Host& api = lab.addHost("api", "10.213.0.12/24");
  Host& db = lab.addHost("db", "10.213.0.13/24");
  EXPECT_EQ(web.netns, lab.prefix() + "-web");
  EXPECT_LE(web.hostIfname.size(), 15u);
  EXPECT_EQ(api.ip, "10.213.0.12");
  EXPECT_EQ(api.cidr, "10.213.0.12/24");
  EXPECT_EQ(api.mac, "02:62:68:00:00:02");
  EXPECT_NE(lab.exec(api, {"ip", "link", "show", "eth0"}).out.find(api.mac), std::string::npos);
  EXPECT_NE(lab.exec(db, {"ip", "-o", "addr", "show", "eth0"}).out.find(db.cidr),
            std::string::npos);

  // Unbridged veth ends lead nowhere: whatever connects the hosts later is what the test added.
  EXPECT_NE(lab.exec(web, pingArgs(api.ip, 1)).exitCode, 0);

  lab.bridgeHosts();
  const CommandResult ping = lab.exec(web, pingArgs(api.ip, 2), 10);
  EXPECT_EQ(ping.exitCode, 0) << ping.out << ping.err;
  const CommandResult back = lab.exec(db, pingArgs(web.ip, 2), 10);
  EXPECT_EQ(back.exitCode, 0) << back.out << back.err;
  // ARP resolved api's deterministic MAC through the bridge.
  EXPECT_NE(lab.exec(web, {"ip", "neigh", "show", api.ip}).out.find(api.mac), std::string::npos);
}

TEST(LabTest, TcpExchangeWithHttpServerInANamespace) {
  SKIP_UNLESS_LAB_CAN_RUN();
  if (!fs::exists("/usr/bin/python3")) {
    GTEST_SKIP() << "needs /usr/bin/python3 (Debian: python3-minimal)";
  }
  Lab lab;
  Host& web = lab.addHost("web", "10.213.0.11/24");
  lab.addHost("api", "10.213.0.12/24");
  Host& db = lab.addHost("db", "10.213.0.13/24");
  lab.bridgeHosts();

  fs::create_directories(lab.dir().path() / "www");
  const std::string token = "bulkhead-lab-" + std::to_string(getpid());
  lab.dir().write("www/hello.txt", token + "\n");
  // -u: the "Serving HTTP" line would otherwise sit in a pipe buffer we never see.
  Process& server = lab.spawn(&db,
                              {"/usr/bin/python3", "-u", "-m", "http.server", "8080", "--bind",
                               db.ip, "--directory", (lab.dir().path() / "www").string()},
                              "http.log");
  ASSERT_TRUE(server.waitForLog("Serving HTTP", 15)) << server.log();

  const std::string url = "http://" + db.ip + ":8080/hello.txt";
  CommandResult fetched;
  // Bounded retries: the listener is up, but the first SYN may still race ARP.
  EXPECT_TRUE(waitFor(
      [&] {
        fetched = lab.exec(web, httpGetArgs(url), 10);
        return fetched.exitCode == 0;
      },
      15))
      << fetched.out << fetched.err;
  EXPECT_EQ(fetched.out, token + "\n");
  EXPECT_TRUE(server.waitForLog(web.ip + " - - ", 5)) << server.log();  // request seen from web
  EXPECT_TRUE(server.waitForLog("GET /hello.txt", 5)) << server.log();

  server.stop(5);
  EXPECT_FALSE(server.running());
}

TEST(LabTest, ProcessesAndCommandsAreTimeBounded) {
  SKIP_UNLESS_LAB_CAN_RUN();
  Lab lab;
  Host& web = lab.addHost("web", "10.213.0.11/24");

  const auto started = std::chrono::steady_clock::now();
  const CommandResult slow = lab.exec(web, {"sleep", "30"}, 1);
  EXPECT_TRUE(slow.timedOut);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));

  // Ignores SIGTERM: stop() must escalate to SIGKILL after the grace period, and the loop's
  // `sleep` children, in the same process group, must die with it.
  Process& stubborn =
      lab.spawn(nullptr, {"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.2; done"},
                "stubborn.log");
  ASSERT_TRUE(stubborn.waitForLog("ready", 10)) << stubborn.log();
  EXPECT_TRUE(stubborn.running());
  const auto stopping = std::chrono::steady_clock::now();
  stubborn.stop(1);
  EXPECT_FALSE(stubborn.running());
  EXPECT_EQ(stubborn.exitCode(), -1);  // killed by a signal
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, std::chrono::seconds(5));
  EXPECT_TRUE(processGone(stubborn.pid()));

  // A program that exits without printing the needle does not make waitForLog wait it out.
  Process& brief = lab.spawn(&web, {"sh", "-c", "echo bye; exit 3"}, "brief.log");
  const auto waiting = std::chrono::steady_clock::now();
  EXPECT_FALSE(brief.waitForLog("never printed", 20));
  EXPECT_LT(std::chrono::steady_clock::now() - waiting, std::chrono::seconds(5));
  EXPECT_EQ(brief.exitCode(), 3);
  EXPECT_NE(brief.log().find("bye"), std::string::npos);

  EXPECT_THROW(lab.addHost("bad", "8.8.8.8/24"), std::invalid_argument);  // public: refused
  EXPECT_THROW(lab.addHost("web", "10.213.0.99/24"), std::invalid_argument);
}

TEST(LabTest, DestroyedLabLeavesNothingBehind) {
  SKIP_UNLESS_LAB_CAN_RUN();
  std::string prefix;
  std::string dir;
  pid_t sleeper = -1;
  {
    Lab lab;
    prefix = lab.prefix();
    dir = lab.dir().path().string();
    Host& web = lab.addHost("web", "10.213.0.11/24");
    Host& api = lab.addHost("api", "10.213.0.12/24");
    lab.bridgeHosts({&web, &api});
    sleeper = lab.spawn(&web, {"sleep", "60"}, "sleep.log").pid();
    const auto present = leftovers(prefix);
    EXPECT_EQ(present.size(), 5u);  // 2 namespaces, 2 veth ends, 1 bridge
    for (const auto& line : present) {
      std::cout << "  lab object: " << line << "\n";
    }
  }
  EXPECT_TRUE(leftovers(prefix).empty()) << leftovers(prefix)[0];
  EXPECT_TRUE(processGone(sleeper));
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_FALSE(fs::exists("/run/bulkhead-lab/" + std::to_string(getpid()) + ".state"));

  // A test that fails half-way (here: throws after building) still cleans up.
  try {
    Lab lab;
    prefix = lab.prefix();
    lab.addHost("db", "10.213.0.13/24");
    throw std::runtime_error("simulated failure");
  } catch (const std::runtime_error&) {
  }
  EXPECT_TRUE(leftovers(prefix).empty());
}

// Run by the next two tests in a copy of this binary, never on its own: builds a lab, reports
// its names, and sleeps until the parent kills it (bounded, in case the parent dies first).
TEST(LabTest, DISABLED_HoldLabUntilKilled) {
  if (std::getenv(kHoldEnv) == nullptr) {
    GTEST_SKIP() << "helper for the kill tests; set " << kHoldEnv;
  }
  Lab lab;
  Host& web = lab.addHost("web", "10.213.0.11/24");
  lab.addHost("api", "10.213.0.12/24");
  lab.bridgeHosts();
  Process& sleeper = lab.spawn(&web, {"sleep", "120"}, "sleep.log");
  std::cout << "LAB READY prefix=" << lab.prefix() << " sleeper=" << sleeper.pid()
            << " dir=" << lab.dir().path().string() << std::endl;
  std::this_thread::sleep_for(std::chrono::seconds(60));
  FAIL() << "nobody killed the held lab";
}

struct HeldLab {
  std::string prefix;
  pid_t sleeper = -1;
  std::string dir;
};

HeldLab startHeldLab(Lab& parent, Process*& child) {
  setenv(kHoldEnv, "1", 1);
  child = &parent.spawn(nullptr,
                        {selfExe(), "--gtest_also_run_disabled_tests",
                         "--gtest_filter=LabTest.DISABLED_HoldLabUntilKilled"},
                        "held.log");
  unsetenv(kHoldEnv);
  HeldLab held;
  if (child->waitForLog("LAB READY", 30)) {
    const std::string log = child->log();
    held.prefix = field(log, "prefix");
    held.sleeper = std::atoi(field(log, "sleeper").c_str());
    held.dir = field(log, "dir");
  }
  return held;
}

TEST(LabTest, SigtermedTestRemovesItsLab) {
  SKIP_UNLESS_LAB_CAN_RUN();
  Lab parent;  // only to run the child; it creates nothing on the machine
  Process* child = nullptr;
  const HeldLab held = startHeldLab(parent, child);
  ASSERT_FALSE(held.prefix.empty()) << child->log();
  EXPECT_EQ(leftovers(held.prefix).size(), 5u);

  child->stop(30);  // SIGTERM, the way a CI runner cancels a job
  EXPECT_EQ(child->exitCode(), -1) << child->log();
  EXPECT_NE(child->log().find("removing the lab"), std::string::npos) << child->log();
  EXPECT_TRUE(leftovers(held.prefix).empty()) << child->log();
  EXPECT_TRUE(waitFor([&] { return processGone(held.sleeper); }, 5));
  EXPECT_FALSE(fs::exists(held.dir)) << held.dir;
}

TEST(LabTest, SigkilledTestsLabIsSweptByTheNextLab) {
  SKIP_UNLESS_LAB_CAN_RUN();
  Lab parent;
  Process* child = nullptr;
  const HeldLab held = startHeldLab(parent, child);
  ASSERT_FALSE(held.prefix.empty()) << child->log();

  kill(child->pid(), SIGKILL);  // our own, unreaped child: ctest's timeout does the same
  child->stop(1);
  // Nothing could run in the child: its names are still there, but its processes died with it.
  EXPECT_EQ(leftovers(held.prefix).size(), 5u);
  EXPECT_TRUE(waitFor([&] { return processGone(held.sleeper); }, 5));
  EXPECT_TRUE(fs::exists(held.dir)) << held.dir;

  sweepStaleLabs();  // what the first Lab of the next test binary does
  EXPECT_TRUE(leftovers(held.prefix).empty());
  EXPECT_FALSE(fs::exists(held.dir)) << held.dir;
}

}  // namespace
}  // namespace bulkhead::testing
