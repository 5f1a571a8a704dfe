#include "text/yaml_quote.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

namespace bulkhead::text {
namespace {

// Labels come from containers: whatever they hold must read back as itself, in key and value
// position, or a suggested policy would select something else.
TEST(YamlQuote, EveryValidStringReadsBackAsItself) {
  const std::string hostile[] = {"",
                                 "web",
                                 "null",
                                 "true",
                                 "~",
                                 "0x1F",
                                 "007",
                                 "*anchor",
                                 "&ref",
                                 "!tag",
                                 "- item",
                                 "key: value",
                                 "# not a comment",
                                 "  leading and trailing  ",
                                 "quote \" and backslash \\ and \\\"",
                                 "line\nbreak\r\nand\ttab",
                                 std::string("nul\0byte", 8),
                                 "\x01\x1b[31m\x7f",
                                 "c1 \xc2\x85 next line \xc2\x9f",
                                 "\xef\xbb\xbf"
                                 "bom",
                                 "caf\xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x90\xb3",
                                 "{a: b}",
                                 "[1, 2]",
                                 "'single'",
                                 "%percent",
                                 "@at",
                                 "`back`",
                                 "---",
                                 "..."};
  for (const auto& value : hostile) {
    const auto quoted = yamlQuoted(value);
    ASSERT_TRUE(quoted) << value;
    const YAML::Node asValue = YAML::Load("k: " + *quoted);
    EXPECT_EQ(asValue["k"].as<std::string>(), value) << *quoted;
    const YAML::Node asKey = YAML::Load("{" + *quoted + ": v}");
    ASSERT_TRUE(asKey.IsMap()) << *quoted;
    EXPECT_EQ(asKey.begin()->first.as<std::string>(), value) << *quoted;
  }
}

TEST(YamlQuote, RefusesWhatIsNotUtf8) {
  EXPECT_FALSE(yamlQuoted("\xff"));
  EXPECT_FALSE(yamlQuoted("ok \xc3"));
  EXPECT_FALSE(yamlQuoted("\xed\xa0\x80"));  // a surrogate
}

}  // namespace
}  // namespace bulkhead::text
