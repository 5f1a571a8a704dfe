#include "text/utf8_escape.h"

#include <gtest/gtest.h>

namespace bulkhead::text {
namespace {

TEST(Utf8Escape, KeepsValidTextAsItIs) {
  for (const std::string valid : {"", "api.example.com", "caf\xc3\xa9", "\xe2\x82\xac 5",
                                  "\xf0\x9f\x98\x80", "a\\xff stays literal"}) {
    EXPECT_TRUE(isValidUtf8(valid)) << valid;
    EXPECT_EQ(escapeBytes(valid), valid);
  }
}

TEST(Utf8Escape, EscapesEveryByteThatIsNotPartOfAValidSequence) {
  EXPECT_EQ(escapeBytes("ex\xff"
                        "fil.evil.com"),
            "ex\\xfffil.evil.com");
  EXPECT_EQ(escapeBytes("\x80"), "\\x80");                             // a stray continuation byte
  EXPECT_EQ(escapeBytes("\xc0\xaf"), "\\xc0\\xaf");                    // overlong '/'
  EXPECT_EQ(escapeBytes("\xe0\x80\xaf"), "\\xe0\\x80\\xaf");           // overlong, three bytes
  EXPECT_EQ(escapeBytes("\xed\xa0\x80"), "\\xed\\xa0\\x80");           // a UTF-16 surrogate
  EXPECT_EQ(escapeBytes("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // past U+10FFFF
  EXPECT_EQ(escapeBytes("ok\xe2\x82"), "ok\\xe2\\x82");                // truncated at the end
  EXPECT_EQ(escapeBytes("\xe2\x82x"), "\\xe2\\x82x");                  // truncated inside
  EXPECT_FALSE(isValidUtf8("\xff"));
  EXPECT_TRUE(isValidUtf8(escapeBytes("\xff\xfe\xc0")));
}

TEST(Utf8Escape, ControlsAreEscapedOnlyForText) {
  const std::string injected = "host\nFAKE LINE\x1b[2J\x7f\xc2\x9b";
  EXPECT_EQ(escapeBytes(injected), injected);
  EXPECT_EQ(escapeBytes(injected, Escape::InvalidUtf8AndControls),
            "host\\x0aFAKE LINE\\x1b[2J\\x7f\\xc2\\x9b");
  // U+00A0 is not a control.
  EXPECT_EQ(escapeBytes("\xc2\xa0", Escape::InvalidUtf8AndControls), "\xc2\xa0");
}

TEST(Utf8Escape, EveryByteStringComesOutValid) {
  // All one- and two-byte strings: a small exhaustive check of the decoder's edges.
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      const std::string bytes{char(a), char(b)};
      ASSERT_TRUE(isValidUtf8(escapeBytes(bytes))) << a << " " << b;
      ASSERT_TRUE(isValidUtf8(escapeBytes(bytes, Escape::InvalidUtf8AndControls)));
    }
  }
}

}  // namespace
}  // namespace bulkhead::text
