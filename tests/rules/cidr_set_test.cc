// CIDR sets (toCIDRSet/fromCIDRSet): a prefix less its exceptions.
#include <gtest/gtest.h>

#include "tests/rules/policy_fixture.h"

namespace bulkhead {
namespace {

using namespace policy_fixture;  // NOLINT: its policy, compile and flow

// toCIDRSet (Cilium's; Kubernetes' ipBlock with except): a prefix less the prefixes inside it.
TEST(CidrSets, APrefixLessItsExceptionsAndExceptionsMustBeInsideIt) {
  const auto snapshot = compile(policy("web", R"(  endpointSelector: {matchLabels: {app: web}}
  egress:
    - toCIDRSet:
        - {cidr: 10.0.0.0/8, except: [10.1.0.0/16, 10.2.3.4]}
        - {cidr: "2001:db8::/32", except: ["2001:db8:1::/48"]}
)"));
  const auto to = [&](const char* address) {
    auto query = flow(Web, rules::reserved_identity::World, 443);
    query.dstIp = rules::IpAddress::parse(address).value();
    return snapshot->verdict(query).decision;
  };
  EXPECT_EQ(to("10.9.9.9"), Decision::Allow);
  EXPECT_EQ(to("10.1.0.1"), Decision::Deny);
  EXPECT_EQ(to("10.2.3.4"), Decision::Deny);
  EXPECT_EQ(to("10.2.3.5"), Decision::Allow);
  EXPECT_EQ(to("11.0.0.1"), Decision::Deny);
  EXPECT_EQ(to("2001:db8:2::1"), Decision::Allow);
  EXPECT_EQ(to("2001:db8:1::1"), Decision::Deny);

  const auto loaded = rules::loadPolicyText(policy("bad", R"(  endpointSelector: {}
  egress:
    - toCIDRSet:
        - {cidr: 10.0.0.0/16, except: [10.1.0.0/24, 10.0.0.0/8, "2001:db8::/64"]}
        - {except: [10.0.0.0/24]}
)"),
                                            "p.yaml", catalog());
  std::vector<std::string> errors;
  for (const auto& error : loaded.errors) {
    errors.push_back(rules::format(error));
  }
  ASSERT_EQ(errors.size(), 4u) << ::testing::PrintToString(errors);
  EXPECT_NE(errors[0].find("except '10.1.0.0/24' is not inside '10.0.0.0/16'"), std::string::npos)
      << errors[0];
  EXPECT_NE(errors[1].find("except '10.0.0.0/8' is not inside"), std::string::npos) << errors[1];
  EXPECT_NE(errors[2].find("except '2001:db8::/64' is not inside"), std::string::npos) << errors[2];
  EXPECT_NE(errors[3].find("missing required key 'cidr'"), std::string::npos) << errors[3];
}

}  // namespace
}  // namespace bulkhead
