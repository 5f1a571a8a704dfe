// The real `bulkhead policy explain --policy`: the verdict of policy files on a described flow,
// and why, without an agent or traffic.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/support/paths.h"
#include "tests/support/run_command.h"
#include "tests/support/temp_dir.h"

namespace bulkhead {
namespace {

testing::CommandResult explain(std::vector<std::string> args) {
  const std::string examples = testing::sourceDir() + "/examples/";
  std::vector<std::string> argv = {testing::bulkheadBinary(), "policy", "explain", "--policy",
                                   examples + "policies"};
  argv.insert(argv.end(), args.begin(), args.end());
  return testing::runCommand(argv, 60);
}

std::string endpointsFile() {
  return testing::sourceDir() + "/examples/endpoints.yaml";
}

TEST(ExplainFiles, ByNameFromAnEndpointsFileOrByLabels) {
  const auto byName =
      explain({"--endpoints", endpointsFile(), "--from", "web", "--to", "api", "--port", "9090"});
  EXPECT_EQ(byName.exitCode, 0) << byName.err;
  EXPECT_EQ(byName.out,
            "deny by default-deny (enforce, policy files), denied by ingress: shop-api/ingress/0 "
            "allows HTTP on 8080/TCP for api.shop.local, *.shop.local; this flow's port is "
            "9090/TCP\n");
  const auto host = explain({"--from", "app=web", "--to", "app=api", "--port", "8080", "--protocol",
                             "HTTP", "--host", "evil.example", "--json"});
  ASSERT_EQ(host.exitCode, 0) << host.err;
  const auto answer = nlohmann::json::parse(host.out);
  EXPECT_EQ(answer["verdict"], "deny");
  EXPECT_EQ(answer["closest_rule"], "shop-api/ingress/0");
  EXPECT_EQ(answer["mismatch"]["what"], "host");
  EXPECT_EQ(answer["mismatch"]["found"], "evil.example");
  EXPECT_EQ(explain({"--from", "app=web", "--to", "app=api", "--port", "8080", "--protocol", "HTTP",
                     "--host", "api.shop.local"})
                .out,
            "allow by shop-api/ingress/0 (enforce, policy files)\n");
  EXPECT_NE(explain({"--from", "app=web", "--to", "app=api", "--port", "8080"})
                .out.find("needs-protocol"),
            std::string::npos);
}

TEST(ExplainFiles, WhatItCannotAnswerIsAClearError) {
  const auto unknown = explain({"--from", "web", "--to", "api", "--port", "80"});
  EXPECT_EQ(unknown.exitCode, 1);
  EXPECT_NE(unknown.err.find("from: no endpoint 'web'"), std::string::npos) << unknown.err;
  const auto badLabels = explain({"--from", "app=web,oops", "--to", "app=api"});
  EXPECT_EQ(badLabels.exitCode, 1);
  EXPECT_NE(badLabels.err.find("not a list of labels"), std::string::npos) << badLabels.err;
  const auto noPolicy =
      testing::runCommand({testing::bulkheadBinary(), "policy", "explain", "--endpoints",
                           endpointsFile(), "--from", "web", "--to", "api"},
                          60);
  EXPECT_EQ(noPolicy.exitCode, 2);
  testing::TempDir dir;
  const std::string broken = dir.write("broken.yaml", "apiVersion: bulkhead.io/v1\nkind: Nope\n");
  const auto invalid = testing::runCommand({testing::bulkheadBinary(), "policy", "explain",
                                            "--policy", broken, "--from", "world", "--to", "host"},
                                           60);
  EXPECT_EQ(invalid.exitCode, 1);
  EXPECT_NE(invalid.err.find(broken + ":2:"), std::string::npos) << invalid.err;
}

}  // namespace
}  // namespace bulkhead
