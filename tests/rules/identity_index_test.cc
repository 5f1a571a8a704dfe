// The identity index picks exactly what testing every identity against the selector picks:
// checked on hand-written cases and on generated label sets and selectors.
#include "rules/identity_index.h"

#include <gtest/gtest.h>

#include <random>

namespace bulkhead::rules {
namespace {

using Op = LabelRequirement::Operator;

std::vector<IdentityId> bruteForce(const IdentityList& identities,
                                   const EndpointSelector& selector) {
  std::vector<IdentityId> out;
  for (const auto& identity : identities) {
    if (selector.matches(identity.labels)) {
      out.push_back(identity.id);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

IdentityList sample() {
  return {{300, {{"app", "web"}, {"tier", "front"}}},
          {256, {{"app", "api"}, {"tier", "back"}}},
          {257, {{"app", "db"}, {"tier", "back"}, {"pii", "yes"}}},
          {258, {}}};
}

TEST(IdentityIndex, SelectsByLabelsExpressionsAndNothing) {
  const IdentityList identities = sample();
  const IdentityIndex index(identities);
  EndpointSelector all;
  EXPECT_EQ(index.select(all), (std::vector<IdentityId>{256, 257, 258, 300}));
  EndpointSelector back;
  back.matchLabels = {{"tier", "back"}};
  EXPECT_EQ(index.select(back), (std::vector<IdentityId>{256, 257}));
  EndpointSelector backNotPii = back;
  backNotPii.matchExpressions = {{"pii", Op::DoesNotExist, {}}};
  EXPECT_EQ(index.select(backNotPii), (std::vector<IdentityId>{256}));
  EndpointSelector in;
  in.matchExpressions = {{"app", Op::In, {"web", "db", "nothing"}}};
  EXPECT_EQ(index.select(in), (std::vector<IdentityId>{257, 300}));
  EndpointSelector notIn;
  notIn.matchExpressions = {{"app", Op::NotIn, {"web"}}};
  EXPECT_EQ(index.select(notIn), (std::vector<IdentityId>{256, 257, 258}));
  EndpointSelector exists;
  exists.matchExpressions = {{"pii", Op::Exists, {}}};
  EXPECT_EQ(index.select(exists), (std::vector<IdentityId>{257}));
  EndpointSelector unknown;
  unknown.matchLabels = {{"app", "payments"}};
  EXPECT_TRUE(index.select(unknown).empty());
  // A value that is a prefix of another, or a key that is: no confusion between key and value.
  const IdentityList tricky = {{400, {{"a", "b\1c"}}}, {401, {{"ab", "c"}}}};
  const IdentityIndex trickyIndex(tricky);
  EndpointSelector a;
  a.matchLabels = {{"a", "b"}};
  EXPECT_TRUE(trickyIndex.select(a).empty());
}

TEST(IdentityIndex, GeneratedSelectorsPickWhatBruteForcePicks) {
  std::mt19937 random(20261202);
  const std::vector<std::string> keys = {"app", "tier", "team", "env", "pii"};
  const std::vector<std::string> values = {"a", "b", "c", "d", ""};
  const auto pick = [&](const std::vector<std::string>& from) {
    return from[std::uniform_int_distribution<size_t>(0, from.size() - 1)(random)];
  };
  for (int round = 0; round < 200; ++round) {
    IdentityList identities;
    const int count = std::uniform_int_distribution<int>(0, 60)(random);
    for (int i = 0; i < count; ++i) {
      Identity identity{static_cast<IdentityId>(256 + (i * 7919) % 5000), {}};
      for (const auto& key : keys) {
        if (random() % 2 == 0) {
          identity.labels[key] = pick(values);
        }
      }
      identities.push_back(identity);
    }
    const IdentityIndex index(identities);
    for (int s = 0; s < 30; ++s) {
      EndpointSelector selector;
      for (int terms = random() % 3; terms > 0; --terms) {
        selector.matchLabels[pick(keys)] = pick(values);
      }
      for (int terms = random() % 3; terms > 0; --terms) {
        LabelRequirement requirement{pick(keys), static_cast<Op>(random() % 4), {}};
        if (requirement.op == Op::In || requirement.op == Op::NotIn) {
          for (int v = 1 + random() % 3; v > 0; --v) {
            requirement.values.push_back(pick(values));
          }
        }
        selector.matchExpressions.push_back(requirement);
      }
      ASSERT_EQ(index.select(selector), bruteForce(identities, selector))
          << "round " << round << ", selector " << selector.toString();
    }
  }
}

}  // namespace
}  // namespace bulkhead::rules
