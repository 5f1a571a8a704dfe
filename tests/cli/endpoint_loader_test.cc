#include "controlplane/endpoint_loader.h"

#include <gtest/gtest.h>

#include "rules/labels.h"

namespace bulkhead {
namespace {

using controlplane::loadEndpointText;

std::vector<std::string> messages(const controlplane::EndpointFile& file) {
  std::vector<std::string> out;
  for (const auto& error : file.errors) {
    out.push_back(rules::format(error));
  }
  return out;
}

TEST(EndpointLoader, ReadsEndpointsWithReservedLabels) {
  const auto file = loadEndpointText(
      "endpoints:\n"
      "  - name: api\n"
      "    labels: {app: api}\n"
      "    image: shop/api:2\n"
      "    networks: [shop, backend]\n"
      "    ips: [10.0.0.2, 'fd00::2']\n"
      "    macs: ['02:42:AC:11:00:02']\n"
      "host:\n"
      "  ips: [10.0.0.1]\n",
      "e.yaml");
  ASSERT_TRUE(file.ok()) << messages(file).front();
  ASSERT_EQ(file.endpoints.size(), 1u);
  const auto& api = file.endpoints[0];
  EXPECT_EQ(api.name, "api");
  EXPECT_EQ(api.labels.at("app"), "api");
  EXPECT_EQ(api.labels.at(std::string(rules::reserved_labels::Name)), "api");
  EXPECT_EQ(api.labels.at(std::string(rules::reserved_labels::Image)), "shop/api:2");
  EXPECT_EQ(api.labels.at("bulkhead.io/network.shop"), "true");
  EXPECT_EQ(api.labels.at("bulkhead.io/network.backend"), "true");
  ASSERT_EQ(api.ips.size(), 2u);
  EXPECT_EQ(api.ips[1].toString(), "fd00::2");
  ASSERT_EQ(api.macs.size(), 1u);
  EXPECT_EQ(api.macs[0].toString(), "02:42:ac:11:00:02");
  ASSERT_EQ(file.hostIps.size(), 1u);
}

TEST(EndpointLoader, ReportsEveryProblemWithItsLocation) {
  const auto file = loadEndpointText(
      "endpoints:\n"
      "  - name: a\n"
      "    ips: [10.0.0.1]\n"
      "  - name: a\n"
      "    ips: [10.0.0.1]\n"
      "    macs: [zz:00:00:00:00:00]\n"
      "    lables: {x: y}\n"
      "  - name: b\n",
      "e.yaml");
  const auto all = messages(file);
  ASSERT_EQ(all.size(), 5u) << ::testing::PrintToString(all);
  EXPECT_EQ(all[0], "e.yaml:4:11: duplicate endpoint name 'a' (first at line 2)");
  EXPECT_EQ(all[1], "e.yaml:5:11: address '10.0.0.1' is already claimed at line 3");
  EXPECT_EQ(all[2], "e.yaml:6:12: 'zz:00:00:00:00:00' is not a MAC address like "
                    "02:42:ac:11:00:02");
  EXPECT_EQ(all[3], "e.yaml:7:5: unknown key 'lables' in an endpoint (did you mean 'labels'?)");
  EXPECT_EQ(all[4], "e.yaml:8:5: endpoint 'b' needs 'ips' or 'macs' to be recognised");
}

TEST(EndpointLoader, SyntaxErrorHasALocation) {
  const auto file = loadEndpointText("endpoints: [\n", "e.yaml");
  ASSERT_EQ(file.errors.size(), 1u);
  EXPECT_EQ(file.errors[0].where.file, "e.yaml");
  EXPECT_GT(file.errors[0].where.line, 0);
  EXPECT_NE(file.errors[0].message.find("YAML syntax error"), std::string::npos);
}

}  // namespace
}  // namespace bulkhead
