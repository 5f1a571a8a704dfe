#include "text/untrusted_json.h"

#include <gtest/gtest.h>

#include "text/json_text.h"
#include "text/utf8_escape.h"

namespace bulkhead::text {
namespace {

TEST(UntrustedJson, RefusesDeepNestingBeforeAValueExists) {
  // 200,000 levels: a copy or dump of such a value overflows the stack.
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  std::string error;
  EXPECT_FALSE(parseUntrusted(deep, {1 << 20}, &error));
  EXPECT_EQ(error, "nested deeper than 64");
  const std::string ok = std::string(64, '[') + std::string(64, ']');
  EXPECT_TRUE(parseUntrusted(ok, {1 << 20}, &error)) << error;
  // The object around them is one level more.
  EXPECT_FALSE(parseUntrusted(R"({"a":)" + std::string(64, '[') + std::string(64, ']') + "}",
                              {1 << 20}, &error));
}

TEST(UntrustedJson, BracketsInsideStringsDoNotCount) {
  EXPECT_EQ(nestingDepth(R"({"k":"[[[[{{{{\"[[["})"), 1u);
  EXPECT_EQ(nestingDepth(R"([[1],[2,[3]]])"), 3u);
  std::string error;
  EXPECT_TRUE(parseUntrusted(R"({"k":")" + std::string(1000, '[') + R"("})", {1 << 20}, &error));
}

TEST(UntrustedJson, RefusesWhatIsTooLargeOrNotJson) {
  std::string error;
  EXPECT_FALSE(parseUntrusted(std::string(100, ' ') + "{}", {64}, &error));
  EXPECT_EQ(error, "larger than 64 bytes");
  EXPECT_FALSE(parseUntrusted("{\"a\":", {64}, &error));
  EXPECT_EQ(error.rfind("not JSON at byte", 0), 0u) << error;
  EXPECT_FALSE(parseUntrusted("", {64}, &error));
  EXPECT_FALSE(parseUntrusted("\"\xff\"", {64}, &error));  // JSON text is UTF-8
  // Found by the API and Docker fuzz targets: a number beyond a double threw out_of_range, not
  // parse_error, and took the agent's control thread down with it.
  EXPECT_FALSE(parseUntrusted(R"({"n":8e666})", {64}, &error));
  EXPECT_NE(error.find("number overflow"), std::string::npos) << error;
  EXPECT_FALSE(parseUntrusted<nlohmann::ordered_json>("[-1e999]", {64}, &error));
}

TEST(UntrustedJson, MembersOfTheWrongTypeReadAsAbsent) {
  const auto value =
      nlohmann::json::parse(R"({"s":"x","b":true,"n":7,"neg":-1,"o":{},"a":[],"bad":"yes"})");
  EXPECT_EQ(stringMember(value, "s"), "x");
  EXPECT_EQ(stringMember(value, "n"), "");
  EXPECT_EQ(boolMember(value, "b"), true);
  EXPECT_EQ(boolMember(value, "bad"), std::nullopt);
  EXPECT_EQ(unsignedMember(value, "n"), 7u);
  EXPECT_EQ(unsignedMember(value, "neg"), std::nullopt);
  EXPECT_NE(objectMember(value, "o"), nullptr);
  EXPECT_EQ(objectMember(value, "a"), nullptr);
  EXPECT_NE(arrayMember(value, "a"), nullptr);
  for (const auto& notObject :
       {nlohmann::json("text"), nlohmann::json::array(), nlohmann::json()}) {
    EXPECT_EQ(member(notObject, "s"), nullptr);
    EXPECT_EQ(stringMember(notObject, "s"), "");
  }
}

TEST(JsonText, DumpsInvalidUtf8EscapedInsteadOfThrowing) {
  nlohmann::json value = {{"host",
                           "ex\xff"
                           "fil.evil.com"},
                          {"list", {"ok", "\xc0"}}};
  value["k\xfe"] = 1;
  std::string text;
  ASSERT_NO_THROW(text = dumpJson(value));
  EXPECT_TRUE(isValidUtf8(text));
  const auto back = nlohmann::json::parse(text);
  EXPECT_EQ(back["host"], "ex\\xfffil.evil.com");
  EXPECT_EQ(back["list"][1], "\\xc0");
  EXPECT_EQ(back["k\\xfe"], 1);
  nlohmann::ordered_json ordered = {{"host", "\xff"}};
  EXPECT_EQ(dumpJson(ordered), R"({"host":"\\xff"})");
  // Valid text is dumped exactly as nlohmann would.
  const nlohmann::json plain = {{"a", "caf\xc3\xa9\n"}};
  EXPECT_EQ(dumpJson(plain), plain.dump());
}

}  // namespace
}  // namespace bulkhead::text
