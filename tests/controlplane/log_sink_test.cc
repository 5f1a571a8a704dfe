#include "controlplane/log_sink.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/support/rsyslog.h"
#include "tests/support/temp_dir.h"

namespace bulkhead::controlplane {
namespace {

using testing::readFile;

TEST(LogSink, Rfc5424HasEveryHeaderFieldInItsPlace) {
  // 2023-11-14T22:13:20.123456Z; local0 (16) warning (4): PRI 132.
  EXPECT_EQ(formatRfc5424(16, 4, 1700000000123456789ull, "node-1", "bulkheadd", 42, "violation",
                          "{\"kind\":\"policy\"}"),
            "<132>1 2023-11-14T22:13:20.123456Z node-1 bulkheadd 42 violation - "
            "{\"kind\":\"policy\"}");
  // Header fields are printable ASCII without spaces; an empty one is the nil value.
  EXPECT_EQ(formatRfc5424(3, 6, 0, "a host", "", 1, "", "x"),
            "<30>1 1970-01-01T00:00:00.000000Z a_host - 1 - - x");
}

TEST(LogSink, TargetsAreAPathStdoutOrSyslog) {
  std::string error;
  for (const char* good : {"/var/log/bulkhead/v.jsonl", "relative.jsonl", "stdout", "syslog",
                           "syslog+unix:///run/syslog.sock", "syslog+udp://127.0.0.1:514",
                           "syslog+udp://[::1]:5514"}) {
    EXPECT_TRUE(validLogTarget(good, &error)) << good << ": " << error;
  }
  for (const char* bad : {"", "syslog+unix://relative", "syslog+udp://127.0.0.1",
                          "syslog+udp://127.0.0.1:0", "syslog+tcp://127.0.0.1:514"}) {
    error.clear();
    EXPECT_FALSE(validLogTarget(bad, &error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
  unsigned facility = 0;
  EXPECT_TRUE(parseSyslogFacility("local7", facility));
  EXPECT_EQ(facility, 23u);
  EXPECT_TRUE(parseSyslogFacility("daemon", facility));
  EXPECT_EQ(facility, 3u);
  EXPECT_FALSE(parseSyslogFacility("local8", facility));
  EXPECT_FALSE(parseSyslogFacility("kern", facility));
}

// Past maxBytes the file is rotated (spdlog's rotating sink): the live file keeps the newest
// lines, `files` older ones are kept, nothing beyond them, and no line is split or lost
// between the files that are kept.
TEST(LogSink, AFileRotatesBySizeAndKeepsItsNumberOfFiles) {
  testing::TempDir dir;
  const std::string path = dir.file("logs/violations.jsonl");
  LogTarget target{path};
  target.maxBytes = 4096;
  target.files = 2;
  std::string error;
  auto sink = openLogSink(target, &error);
  ASSERT_TRUE(sink) << error;
  const std::string filler(90, 'x');
  for (int i = 0; i < 200; ++i) {  // about 20 KB: rotated four or five times
    ASSERT_TRUE(sink->write("{\"n\":" + std::to_string(i) + ",\"pad\":\"" + filler + "\"}", &error))
        << error;
  }
  EXPECT_EQ(sink->describe(), path);
  const std::string live = readFile(path);
  const std::string first = readFile(dir.file("logs/violations.1.jsonl"));
  const std::string second = readFile(dir.file("logs/violations.2.jsonl"));
  EXPECT_FALSE(std::filesystem::exists(dir.file("logs/violations.3.jsonl")));
  EXPECT_LE(live.size(), 4096u);
  EXPECT_GT(first.size(), 3000u);
  EXPECT_NE(live.find("{\"n\":199,"), std::string::npos);
  // Every kept line whole, in order across the files, oldest first.
  std::stringstream all(second + first + live);
  std::string line;
  int previous = -1;
  while (std::getline(all, line)) {
    ASSERT_EQ(line.front(), '{');
    ASSERT_EQ(line.back(), '}');
    const int n = std::stoi(line.substr(5));
    EXPECT_EQ(n, previous < 0 ? n : previous + 1);
    previous = n;
  }
  EXPECT_EQ(previous, 199);
}

// Without maxBytes, a file is appended to and reopened after logrotate renamed it.
TEST(LogSink, AFileWithoutMaxBytesIsReopenedUnderItsNameAfterARename) {
  testing::TempDir dir;
  const std::string path = dir.file("v.jsonl");
  std::string error;
  auto sink = openLogSink(LogTarget{path}, &error);
  ASSERT_TRUE(sink) << error;
  ASSERT_TRUE(sink->write("one", &error));
  std::filesystem::rename(path, path + ".1");
  ASSERT_TRUE(sink->write("two", &error));  // still the renamed file
  ASSERT_TRUE(sink->reopen(&error)) << error;
  ASSERT_TRUE(sink->write("three", &error));
  EXPECT_EQ(readFile(path + ".1"), "one\ntwo\n");
  EXPECT_EQ(readFile(path), "three\n");
}

TEST(LogSink, SyslogLinesReachARealRsyslogAsRfc5424) {
  if (!std::filesystem::exists("/usr/sbin/rsyslogd")) {
    GTEST_SKIP() << "needs rsyslogd (Debian package rsyslog; scripts/setup.sh installs it)";
  }
  testing::TempDir dir;
  testing::Rsyslog rsyslog(dir);
  ASSERT_TRUE(rsyslog.started());
  LogTarget target{"syslog+udp://127.0.0.1:" + std::to_string(rsyslog.port())};
  target.facility = 17;  // local1
  target.severity = 4;   // warning
  target.messageId = "violation";
  std::string error;
  auto sink = openLogSink(target, &error);
  ASSERT_TRUE(sink) << error;
  EXPECT_EQ(sink->describe(), "syslog 127.0.0.1:" + std::to_string(rsyslog.port()));
  // Until rsyslogd listens, datagrams are refused or lost: probe until one arrives.
  bool listening = false;
  for (int i = 0; i < 100 && !listening; ++i) {
    sink->write("{\"probe\":" + std::to_string(i) + "}", &error);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    listening = rsyslog.received().find("{\"probe\":") != std::string::npos;
  }
  ASSERT_TRUE(listening) << "rsyslogd never received a probe";
  const std::string line =
      "{\"kind\":\"policy\",\"host\":\"caf\xc3\xa9.test\",\"reason\":\"TLS to world port 443\"}";
  ASSERT_TRUE(sink->write(line, &error)) << error;
  std::string received;
  ASSERT_TRUE([&] {
    for (int i = 0; i < 50; ++i) {
      received = rsyslog.received();
      if (received.find("\"kind\":\"policy\"") != std::string::npos) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }()) << received;
  char hostname[256] = {};
  ::gethostname(hostname, sizeof(hostname) - 1);
  // rsyslog parsed it as RFC 5424 (version 1) with every field where we put it.
  EXPECT_NE(received.find("1|local1|warning|" + std::string(hostname) + "|bulkheadd|" +
                          std::to_string(::getpid()) + "|violation|-|" + line + "\n"),
            std::string::npos)
      << received;
}

}  // namespace
}  // namespace bulkhead::controlplane
