#include "rules/host_pattern.h"

#include <gtest/gtest.h>

#include <string>

namespace bulkhead {
namespace {

using rules::HostPattern;

std::string validationError(const char* text) {
  std::string error;
  EXPECT_FALSE(HostPattern::validate(text, &error)) << "'" << text << "' was accepted";
  return error;
}

TEST(HostPatternTest, ExactNameMatchesOnlyThatName) {
  const HostPattern pattern("api.shop.local");
  EXPECT_TRUE(pattern.matches("api.shop.local"));
  EXPECT_FALSE(pattern.matches("web.shop.local"));
  EXPECT_FALSE(pattern.matches("x.api.shop.local"));
  EXPECT_FALSE(pattern.matches("shop.local"));
  EXPECT_FALSE(pattern.matches("api.shop.local.evil"));
  EXPECT_EQ(pattern.text(), "api.shop.local");
}

TEST(HostPatternTest, WildcardMatchesOneOrMoreLeadingLabels) {
  const HostPattern pattern("*.x.y");
  EXPECT_TRUE(pattern.matches("a.x.y"));
  EXPECT_TRUE(pattern.matches("a.b.x.y"));
  EXPECT_EQ(pattern.text(), "*.x.y");
}

TEST(HostPatternTest, WildcardDoesNotMatchTheBareSuffix) {
  const HostPattern pattern("*.x.y");
  EXPECT_FALSE(pattern.matches("x.y"));
  EXPECT_FALSE(pattern.matches(".x.y"));
  EXPECT_FALSE(pattern.matches("y"));
}

TEST(HostPatternTest, WildcardRequiresALabelBoundary) {
  const HostPattern pattern("*.x.y");
  EXPECT_FALSE(pattern.matches("ax.y"));
  EXPECT_FALSE(pattern.matches("a.x.y.z"));
}

TEST(HostPatternTest, StarMatchesAnyNonEmptyHost) {
  const HostPattern pattern("*");
  EXPECT_TRUE(pattern.matches("a"));
  EXPECT_TRUE(pattern.matches("api.shop.local"));
  EXPECT_FALSE(pattern.matches(""));
}

TEST(HostPatternTest, MatchingIsCaseInsensitiveOnBothSides) {
  EXPECT_TRUE(HostPattern("API.Shop.Local").matches("api.shop.local"));
  EXPECT_TRUE(HostPattern("api.shop.local").matches("API.SHOP.LOCAL"));
  EXPECT_TRUE(HostPattern("*.Shop.LOCAL").matches("Web.sHoP.local"));
}

TEST(HostPatternTest, TrailingDotIsIgnoredOnBothSides) {
  EXPECT_TRUE(HostPattern("api.shop.local").matches("api.shop.local."));
  EXPECT_TRUE(HostPattern("api.shop.local.").matches("api.shop.local"));
  EXPECT_TRUE(HostPattern("*.shop.local.").matches("web.shop.local"));
  EXPECT_TRUE(HostPattern("*.shop.local").matches("web.shop.local."));
  EXPECT_FALSE(HostPattern("*.shop.local").matches("shop.local."));
}

TEST(HostPatternTest, EmptyHostNeverMatches) {
  EXPECT_FALSE(HostPattern("api.shop.local").matches(""));
  EXPECT_FALSE(HostPattern("*.shop.local").matches(""));
  EXPECT_FALSE(HostPattern("*").matches(""));
}

TEST(HostPatternTest, ValidateAcceptsWellFormedPatterns) {
  for (const char* text : {"*", "api.shop.local", "*.shop.local", "localhost", "API.Shop.Local",
                           "api.shop.local.", "my_service-1.example.com", "*.com"}) {
    std::string error;
    EXPECT_TRUE(HostPattern::validate(text, &error)) << text << ": " << error;
    EXPECT_EQ(error, "") << text;
  }
}

TEST(HostPatternTest, ValidateRejectsStarInsideTheName) {
  EXPECT_EQ(validationError("a.*.b"),
            "host pattern 'a.*.b' may only use '*' as its whole first label, as in "
            "'*.example.com'");
  EXPECT_EQ(validationError("*api.shop.local"),
            "host pattern '*api.shop.local' may only use '*' as its whole first label, as in "
            "'*.example.com'");
  EXPECT_EQ(validationError("*.*.local"),
            "host pattern '*.*.local' may only use '*' as its whole first label, as in "
            "'*.example.com'");
}

TEST(HostPatternTest, ValidateRejectsEmptyPatterns) {
  EXPECT_EQ(validationError(""), "host pattern '' is empty or longer than 253 characters");
  EXPECT_EQ(validationError("*."), "host pattern '*.' is empty or longer than 253 characters");
}

TEST(HostPatternTest, ValidateRejectsOverlongPatterns) {
  const std::string longest(253, 'a');
  std::string error;
  EXPECT_TRUE(HostPattern::validate(longest, &error)) << error;
  const std::string tooLong(254, 'a');
  EXPECT_FALSE(HostPattern::validate(tooLong, &error));
  EXPECT_EQ(error, "host pattern '" + tooLong + "' is empty or longer than 253 characters");
}

TEST(HostPatternTest, ValidateRejectsEmptyLabels) {
  EXPECT_EQ(validationError("a..b"), "host pattern 'a..b' has an empty label");
  EXPECT_EQ(validationError(".a.b"), "host pattern '.a.b' has an empty label");
  EXPECT_EQ(validationError("*..b"), "host pattern '*..b' has an empty label");
}

TEST(HostPatternTest, ValidateRejectsBadCharacters) {
  EXPECT_EQ(validationError("a b.local"), "host pattern 'a b.local' has an invalid character ' '");
  EXPECT_EQ(validationError("api.shop.local:8080"),
            "host pattern 'api.shop.local:8080' has an invalid character ':'");
  EXPECT_EQ(validationError("http://api"),
            "host pattern 'http://api' has an invalid character ':'");
  EXPECT_EQ(validationError("a/b"), "host pattern 'a/b' has an invalid character '/'");
}

}  // namespace
}  // namespace bulkhead
