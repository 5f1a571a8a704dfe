#include "metrics/exposition.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "tests/support/run_command.h"

namespace bulkhead::metrics {
namespace {

TEST(Exposition, WritesFamiliesAndTheirSamplesInTheTextFormat) {
  Exposition out;
  out.counter("bulkhead_drops_total", "Packets dropped, by reason.");
  out.sample(uint64_t{3}, {{"reason", "policy"}});
  out.sample(uint64_t{0}, {{"reason", "spoofed"}});
  out.gauge("bulkhead_flows", "Flows tracked now.");
  out.sample(uint64_t{12});
  EXPECT_EQ(out.text(),
            "# HELP bulkhead_drops_total Packets dropped, by reason.\n"
            "# TYPE bulkhead_drops_total counter\n"
            "bulkhead_drops_total{reason=\"policy\"} 3\n"
            "bulkhead_drops_total{reason=\"spoofed\"} 0\n"
            "# HELP bulkhead_flows Flows tracked now.\n"
            "# TYPE bulkhead_flows gauge\n"
            "bulkhead_flows 12\n");
}

TEST(Exposition, AHistogramHasCumulativeBucketsASumAndACount) {
  Histogram seconds({0.25, 1, 4});
  seconds.observe(0.125);
  seconds.observe(0.5);
  seconds.observe(1);  // a bound is "less than or equal"
  seconds.observe(8);
  Exposition out;
  out.histogram("bulkhead_policy_compile_seconds", "Time to compile.");
  out.sample(seconds);
  EXPECT_EQ(out.text(),
            "# HELP bulkhead_policy_compile_seconds Time to compile.\n"
            "# TYPE bulkhead_policy_compile_seconds histogram\n"
            "bulkhead_policy_compile_seconds_bucket{le=\"0.25\"} 1\n"
            "bulkhead_policy_compile_seconds_bucket{le=\"1\"} 3\n"
            "bulkhead_policy_compile_seconds_bucket{le=\"4\"} 3\n"
            "bulkhead_policy_compile_seconds_bucket{le=\"+Inf\"} 4\n"
            "bulkhead_policy_compile_seconds_sum 9.625\n"
            "bulkhead_policy_compile_seconds_count 4\n");
}

TEST(Exposition, LabelValuesFromContainersAreEscapedAndValidUtf8) {
  EXPECT_EQ(Exposition::escapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(Exposition::escapeLabelValue("caf\xc3\xa9"), "caf\xc3\xa9");
  // A stray byte becomes \xff, whose backslash the format then escapes.
  EXPECT_EQ(Exposition::escapeLabelValue("x\xff"), "x\\\\xff");
}

TEST(Exposition, ANameOutsideTheGrammarIsABug) {
  Exposition out;
  EXPECT_THROW(out.counter("bulkhead-drops", "x"), std::logic_error);
  EXPECT_THROW(out.counter("1drops", "x"), std::logic_error);
  EXPECT_THROW(out.sample(uint64_t{1}), std::logic_error);  // no family yet
  out.gauge("ok", "x");
  EXPECT_THROW(out.sample(uint64_t{1}, {{"bad-label", "v"}}), std::logic_error);
  EXPECT_THROW(out.sample(uint64_t{1}, {{"__reserved", "v"}}), std::logic_error);
}

TEST(Exposition, ValuesAreWrittenAsTheFormatSpellsThem) {
  EXPECT_EQ(formatValue(0.25), "0.25");
  EXPECT_EQ(formatValue(0.0001), "0.0001");  // a bucket bound as client libraries write it
  EXPECT_EQ(formatValue(2.7772e-05), "2.7772e-05");
  EXPECT_EQ(formatValue(1e21), "1e+21");
  EXPECT_EQ(formatValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(formatValue(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(formatValue(0.0 / 0.0), "NaN");
}

// Prometheus's own linter reads what the writer wrote, hostile label values included.
TEST(Exposition, PromtoolAcceptsTheOutput) {
  if (::access("/usr/bin/promtool", X_OK) != 0) {
    GTEST_SKIP() << "promtool is not installed (Debian package prometheus; scripts/setup.sh)";
  }
  Exposition out;
  out.counter("bulkhead_classifications_total", "Flows nDPI named, by protocol.");
  out.sample(uint64_t{7}, {{"protocol", "HTTP"}});
  out.sample(uint64_t{1}, {{"protocol", "we\"ird\\name\nwith\xfe bytes"}});
  out.gauge("bulkhead_info", "The agent's version.");
  out.sample(uint64_t{1}, {{"version", "0.1.0"}, {"instance", "bh0"}});
  Histogram seconds({0.001, 0.1});
  seconds.observe(0.01);
  out.histogram("bulkhead_policy_compile_seconds", "Time to compile the policy.");
  out.sample(seconds);
  char path[] = "/tmp/bulkhead-exposition-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << out.text();
  const auto result = testing::runCommand(
      {"/bin/sh", "-c", std::string("/usr/bin/promtool check metrics < ") + path + " 2>&1"}, 30);
  ::unlink(path);
  EXPECT_EQ(result.exitCode, 0) << result.out << "\n" << out.text();
}

}  // namespace
}  // namespace bulkhead::metrics
