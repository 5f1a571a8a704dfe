// The real `bulkhead policy check` binary: exit codes and what the operator reads.
#include <gtest/gtest.h>

#include "tests/support/paths.h"
#include "tests/support/run_command.h"
#include "tests/support/temp_dir.h"

namespace bulkhead {
namespace {

using testing::runCommand;

TEST(PolicyCheck, ExamplePoliciesAreValidAndSummarised) {
  const auto result = runCommand({testing::bulkheadBinary(), "policy", "check",
                                  testing::sourceDir() + "/examples/policies"});
  EXPECT_EQ(result.exitCode, 0) << result.err;
  EXPECT_NE(result.out.find("valid: 3 policies in 2 files"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("shop-api (enforce): selects {app=api}"), std::string::npos);
  EXPECT_NE(result.out.find("egress[1]: world on 53/UDP DNS host=*.example.com"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("shop-web (monitor)"), std::string::npos);
  // The empty selector, in words.
  const auto installed = runCommand(
      {testing::bulkheadBinary(), "policy", "check", testing::sourceDir() + "/packaging/policies"});
  EXPECT_NE(installed.out.find("monitor-everything (monitor): selects every endpoint\n"),
            std::string::npos)
      << installed.out;
}

TEST(PolicyCheck, EveryErrorIsReportedWithItsLocation) {
  testing::TempDir dir;
  const std::string path = dir.write("broken.yaml",
                                     "apiVersion: bulkhead.io/v1\n"
                                     "kind: SegmentationPolicy\n"
                                     "metadata: {name: api}\n"
                                     "spec:\n"
                                     "  endpointSelector: {matchLabels: {app: api}}\n"
                                     "  ingress:\n"
                                     "    - fromEndpoints: [{matchLabel: {app: web}}]\n"
                                     "      toPorts:\n"
                                     "        - ports: [{port: 80800, protocol: TCP}]\n"
                                     "          l7: {protocols: [htp]}\n");
  const auto result = runCommand({testing::bulkheadBinary(), "policy", "check", path});
  EXPECT_EQ(result.exitCode, 1);
  EXPECT_TRUE(result.out.empty()) << result.out;
  const std::string prefix = path + ":";
  EXPECT_NE(result.err.find(prefix + "7:24: unknown key 'matchLabel' in fromEndpoints entry "
                                     "(did you mean 'matchLabels'?)"),
            std::string::npos)
      << result.err;
  EXPECT_NE(result.err.find(prefix + "9:26: port '80800' must be a number 0-65535"),
            std::string::npos)
      << result.err;
  EXPECT_NE(result.err.find(prefix + "10:28: unknown application protocol 'htp' (did you mean "
                                     "'HTTP'?)"),
            std::string::npos)
      << result.err;
  EXPECT_NE(result.err.find("3 errors"), std::string::npos) << result.err;
}

TEST(PolicyCheck, MissingPathIsAnIoErrorAndNoPathIsAUsageError) {
  testing::TempDir dir;
  const auto missing =
      runCommand({testing::bulkheadBinary(), "policy", "check", dir.file("absent.yaml")});
  EXPECT_EQ(missing.exitCode, 2);
  EXPECT_NE(missing.err.find("absent.yaml:0:0: no such file or directory"), std::string::npos)
      << missing.err;
  const auto none = runCommand({testing::bulkheadBinary(), "policy", "check"});
  EXPECT_EQ(none.exitCode, 2);
  const auto help = runCommand({testing::bulkheadBinary(), "policy", "check", "--help"});
  EXPECT_EQ(help.exitCode, 0);
  EXPECT_NE(help.out.find("--quiet"), std::string::npos);
}

TEST(PolicyCheck, WarningsAreShownButTheFileIsValid) {
  testing::TempDir dir;
  const std::string path = dir.write("warn.yaml",
                                     "apiVersion: bulkhead.io/v1\n"
                                     "kind: SegmentationPolicy\n"
                                     "metadata: {name: api}\n"
                                     "spec:\n"
                                     "  endpointSelector: {matchLabels: {app: api}}\n"
                                     "  ingress:\n"
                                     "    - toPorts:\n"
                                     "        - ports: [{port: 9042, protocol: TCP}]\n"
                                     "          l7: {protocols: [Cassandra]}\n");
  const auto result = runCommand({testing::bulkheadBinary(), "policy", "check", path});
  EXPECT_EQ(result.exitCode, 0) << result.err;
  EXPECT_NE(result.err.find(path + ":9:28: warning: no real Cassandra session has been seen"),
            std::string::npos)
      << result.err;
  EXPECT_NE(result.out.find("valid: 1 policy"), std::string::npos) << result.out;
}

TEST(Protocols, SaysWhatARuleNamingEachCanRelyOn) {
  const auto result =
      runCommand({testing::bulkheadBinary(), "protocols", "HTTP", "IMAPS", "NTP", "Redis"});
  ASSERT_EQ(result.exitCode, 0) << result.err;
  const auto line = [&](const std::string& name) {
    const size_t at = result.out.find("\n" + name + " ");
    return at == std::string::npos ? std::string()
                                   : result.out.substr(at + 1, result.out.find('\n', at + 1) - at - 1);
  };
  EXPECT_NE(line("HTTP").find("inspected"), std::string::npos) << result.out;
  EXPECT_NE(line("HTTP").find("yes"), std::string::npos) << result.out;
  EXPECT_NE(line("IMAPS").find("named-by-port    TLS"), std::string::npos) << result.out;
  EXPECT_NE(line("NTP").find("decided-by-port  never"), std::string::npos) << result.out;
  EXPECT_NE(line("Redis").find("limits:"), std::string::npos) << result.out;

  const auto json = runCommand({testing::bulkheadBinary(), "protocols", "--proven", "--json"});
  ASSERT_EQ(json.exitCode, 0) << json.err;
  EXPECT_NE(json.out.find("\"name\":\"PostgreSQL\""), std::string::npos) << json.out;
  EXPECT_EQ(json.out.find("\"proven\":false"), std::string::npos) << json.out;

  const auto unknown = runCommand({testing::bulkheadBinary(), "protocols", "NoSuch"});
  EXPECT_EQ(unknown.exitCode, 1);
  EXPECT_NE(unknown.err.find("unknown protocol 'NoSuch'"), std::string::npos);
}

TEST(PolicyCheck, UnknownCommandIsAUsageError) {
  const auto result = runCommand({testing::bulkheadBinary(), "polcy"});
  EXPECT_EQ(result.exitCode, 2);
  EXPECT_NE(result.err.find("unknown command 'polcy'"), std::string::npos);
}

}  // namespace
}  // namespace bulkhead

namespace bulkhead {
namespace {

// bulkhead policy convert: what it prints is what policy check accepts, for every kind.
TEST(PolicyConvert, PrintsEveryKindAsSegmentationPoliciesThatCheckValid) {
  testing::TempDir dir;
  const std::string kubernetes = dir.write("k8s.yaml", R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: 8080}]}]
)");
  const auto converted =
      testing::runCommand({testing::bulkheadBinary(), "policy", "convert", kubernetes,
                           testing::sourceDir() + "/examples/policies"},
                          60);
  ASSERT_EQ(converted.exitCode, 0) << converted.err;
  EXPECT_NE(converted.out.find("# from " + kubernetes + ":1\n"), std::string::npos);
  EXPECT_NE(converted.out.find("name: \"shop.api\""), std::string::npos) << converted.out;
  EXPECT_EQ(converted.out.find("NetworkPolicy"), std::string::npos) << converted.out;
  const std::string native = dir.write("native.yaml", converted.out);
  const auto check =
      testing::runCommand({testing::bulkheadBinary(), "policy", "check", native}, 60);
  EXPECT_EQ(check.exitCode, 0) << check.err;
  EXPECT_NE(check.out.find("valid: 4 policies in 1 file"), std::string::npos) << check.out;

  const std::string broken = dir.write("broken.yaml",
                                       "apiVersion: networking.k8s.io/v1\n"
                                       "kind: NetworkPolicy\nmetadata: {name: x}\n"
                                       "spec: {podSelector: {}, ingress: [{ports: "
                                       "[{port: http, endPort: 90}]}]}\n");
  const auto refused =
      testing::runCommand({testing::bulkheadBinary(), "policy", "convert", broken}, 60);
  EXPECT_EQ(refused.exitCode, 1);
  EXPECT_TRUE(refused.out.empty()) << refused.out;
  EXPECT_NE(refused.err.find("named port 'http'"), std::string::npos) << refused.err;
}

}  // namespace
}  // namespace bulkhead
