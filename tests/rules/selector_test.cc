#include "rules/selector.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace bulkhead {
namespace {

using rules::EndpointSelector;
using rules::LabelRequirement;
using rules::Labels;
using Op = LabelRequirement::Operator;

LabelRequirement requirement(std::string key, Op op, std::vector<std::string> values = {}) {
  LabelRequirement out;
  out.key = std::move(key);
  out.op = op;
  out.values = std::move(values);
  return out;
}

EndpointSelector withExpression(LabelRequirement expression) {
  EndpointSelector selector;
  selector.matchExpressions.push_back(std::move(expression));
  return selector;
}

TEST(SelectorTest, EmptySelectorSelectsEverything) {
  const EndpointSelector selector;
  EXPECT_TRUE(selector.matches({}));
  EXPECT_TRUE(selector.matches({{"app", "web"}}));
  EXPECT_TRUE(selector.matches({{"app", "db"}, {"tier", "backend"}}));
  EXPECT_EQ(selector.toString(), "{}");
}

TEST(SelectorTest, MatchLabelsRequiresEveryPairWithEqualValue) {
  EndpointSelector selector;
  selector.matchLabels = {{"app", "api"}, {"tier", "backend"}};
  EXPECT_TRUE(selector.matches({{"app", "api"}, {"tier", "backend"}}));
  EXPECT_TRUE(selector.matches({{"app", "api"}, {"tier", "backend"}, {"extra", "x"}}));
  EXPECT_FALSE(selector.matches({{"app", "api"}}));
  EXPECT_FALSE(selector.matches({{"app", "api"}, {"tier", "frontend"}}));
  EXPECT_FALSE(selector.matches({{"app", "API"}, {"tier", "backend"}}));
  EXPECT_FALSE(selector.matches({}));
  EXPECT_EQ(selector.toString(), "app=api,tier=backend");
}

TEST(SelectorTest, MatchLabelsWithEmptyValueNeedsTheKeyWithEmptyValue) {
  EndpointSelector selector;
  selector.matchLabels = {{"canary", ""}};
  EXPECT_TRUE(selector.matches({{"canary", ""}}));
  EXPECT_FALSE(selector.matches({{"canary", "true"}}));
  EXPECT_FALSE(selector.matches({}));
}

TEST(SelectorTest, InNeedsTheKeyWithOneOfTheValues) {
  const auto selector = withExpression(requirement("app", Op::In, {"api", "db"}));
  EXPECT_TRUE(selector.matches({{"app", "api"}}));
  EXPECT_TRUE(selector.matches({{"app", "db"}}));
  EXPECT_FALSE(selector.matches({{"app", "web"}}));
  EXPECT_FALSE(selector.matches({}));
  EXPECT_FALSE(selector.matches({{"role", "api"}}));
  EXPECT_EQ(selector.toString(), "app in (api,db)");
}

TEST(SelectorTest, NotInExcludesListedValuesButSelectsEndpointsWithoutTheKey) {
  const auto selector = withExpression(requirement("env", Op::NotIn, {"prod", "staging"}));
  EXPECT_FALSE(selector.matches({{"env", "prod"}}));
  EXPECT_FALSE(selector.matches({{"env", "staging"}}));
  EXPECT_TRUE(selector.matches({{"env", "dev"}}));
  EXPECT_TRUE(selector.matches({}));  // as in Kubernetes: absent key is "not in"
  EXPECT_EQ(selector.toString(), "env notin (prod,staging)");
}

TEST(SelectorTest, ExistsNeedsTheKeyWithAnyValue) {
  const auto selector = withExpression(requirement("team", Op::Exists));
  EXPECT_TRUE(selector.matches({{"team", "payments"}}));
  EXPECT_TRUE(selector.matches({{"team", ""}}));
  EXPECT_FALSE(selector.matches({{"app", "team"}}));
  EXPECT_FALSE(selector.matches({}));
  EXPECT_EQ(selector.toString(), "team exists");
}

TEST(SelectorTest, DoesNotExistNeedsTheKeyAbsent) {
  const auto selector = withExpression(requirement("quarantine", Op::DoesNotExist));
  EXPECT_TRUE(selector.matches({}));
  EXPECT_TRUE(selector.matches({{"app", "web"}}));
  EXPECT_FALSE(selector.matches({{"quarantine", "true"}}));
  EXPECT_FALSE(selector.matches({{"quarantine", ""}}));
  EXPECT_EQ(selector.toString(), "quarantine !exists");
}

TEST(SelectorTest, AllExpressionsMustHold) {
  EndpointSelector selector;
  selector.matchExpressions.push_back(requirement("app", Op::In, {"api", "web"}));
  selector.matchExpressions.push_back(requirement("env", Op::NotIn, {"prod"}));
  selector.matchExpressions.push_back(requirement("team", Op::Exists));
  selector.matchExpressions.push_back(requirement("legacy", Op::DoesNotExist));

  const Labels all = {{"app", "api"}, {"env", "dev"}, {"team", "shop"}};
  EXPECT_TRUE(selector.matches(all));

  Labels wrongApp = all;
  wrongApp["app"] = "db";
  EXPECT_FALSE(selector.matches(wrongApp));
  Labels prod = all;
  prod["env"] = "prod";
  EXPECT_FALSE(selector.matches(prod));
  Labels noTeam = all;
  noTeam.erase("team");
  EXPECT_FALSE(selector.matches(noTeam));
  Labels legacy = all;
  legacy["legacy"] = "yes";
  EXPECT_FALSE(selector.matches(legacy));
}

TEST(SelectorTest, MatchLabelsAndExpressionsMustBothHold) {
  EndpointSelector selector;
  selector.matchLabels = {{"app", "api"}};
  selector.matchExpressions.push_back(requirement("env", Op::In, {"prod"}));
  EXPECT_TRUE(selector.matches({{"app", "api"}, {"env", "prod"}}));
  EXPECT_FALSE(selector.matches({{"app", "api"}, {"env", "dev"}}));
  EXPECT_FALSE(selector.matches({{"app", "web"}, {"env", "prod"}}));
  EXPECT_EQ(selector.toString(), "app=api,env in (prod)");
}

}  // namespace
}  // namespace bulkhead
