// Indexes and manifest path quoting (docs/format.md terms, §2.3).
#include "chain/format/index.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace dupfs::chain {
namespace {

TEST(IndexPath, ToString) {
  EXPECT_EQ(index_to_string({}), ".");
  EXPECT_EQ(index_to_string({"a"}), "a");
  EXPECT_EQ(index_to_string({"a", "b c", "d"}), "a/b c/d");
}

TEST(IndexPath, FromPath) {
  EXPECT_EQ(index_from_path(""), Index{});
  EXPECT_EQ(index_from_path("."), Index{});
  EXPECT_EQ(index_from_path("./"), Index{});
  EXPECT_EQ(index_from_path("/"), Index{});
  EXPECT_EQ(index_from_path("a"), Index{"a"});
  EXPECT_EQ(index_from_path("a/b"), (Index{"a", "b"}));
  EXPECT_EQ(index_from_path("./a//b/./c/"), (Index{"a", "b", "c"}));
  EXPECT_EQ(index_from_path(std::string_view("x\xff\0y/z", 6)),
            (Index{std::string("x\xff\0y", 4), "z"}));
  for (const Index& i : {Index{}, Index{"a"}, Index{"dir", "sub", "f i l e"}}) {
    EXPECT_EQ(index_from_path(index_to_string(i)), i);
  }
}

TEST(IndexPath, HasPrefix) {
  EXPECT_TRUE(index_has_prefix({}, {}));
  EXPECT_TRUE(index_has_prefix({"a", "b"}, {}));
  EXPECT_TRUE(index_has_prefix({"a", "b"}, {"a"}));
  EXPECT_TRUE(index_has_prefix({"a", "b"}, {"a", "b"}));
  EXPECT_FALSE(index_has_prefix({"a", "b"}, {"a", "b", "c"}));
  EXPECT_FALSE(index_has_prefix({"ab"}, {"a"}));
  EXPECT_FALSE(index_has_prefix({"a", "b"}, {"b"}));
}

TEST(IndexOrder, BytewiseDepthFirst) {
  // Component-wise, bytes compared unsigned, a prefix first: duplicity's pre-order walk.
  std::vector<Index> v = {{"b"}, {"a", "z"}, {"a"}, {}, {"\xff"}, {"a b"}, {"A"}, {"a", "\x01"}};
  std::sort(v.begin(), v.end());
  std::vector<Index> want = {{}, {"A"}, {"a"}, {"a", "\x01"}, {"a", "z"}, {"a b"}, {"b"}, {"\xff"}};
  EXPECT_EQ(v, want);
}

TEST(IndexQuote, OnlyWhenNeeded) {
  EXPECT_EQ(quote_path("plain.txt"), "plain.txt");
  EXPECT_EQ(quote_path("dir/sub/file"), "dir/sub/file");
  EXPECT_EQ(quote_path(""), "");
  // Non-ASCII, invalid UTF-8 and other control bytes stay raw.
  EXPECT_EQ(quote_path("bad\xff\xfename.txt"), "bad\xff\xfename.txt");
  const std::string unicode =
      "\xc3\xbcn\xc3\xaf"
      "c\xc3\xb8"
      "d\xc3\xa9.txt";  // ünïcødé.txt
  EXPECT_EQ(quote_path(unicode), unicode);
  EXPECT_EQ(quote_path(std::string("a\0b\x1b\x7f", 5)), std::string("a\0b\x1b\x7f", 5));
}

TEST(IndexQuote, EscapesWhitespaceBackslashQuotes) {
  // Observed in a real 0.8.22 manifest.
  EXPECT_EQ(quote_path("file with spaces.txt"), "\"file\\x20with\\x20spaces.txt\"");
  EXPECT_EQ(quote_path("quo\"te\\back\ttab.txt"), "\"quo\\x22te\\x5cback\\x09tab.txt\"");
  EXPECT_EQ(quote_path("it's"), "\"it\\x27s\"");
  EXPECT_EQ(quote_path(" \t\n\r\v\f"), "\"\\x20\\x09\\x0a\\x0d\\x0b\\x0c\"");
  // Only those bytes: other bytes in a quoted path stay raw.
  EXPECT_EQ(quote_path("a b\xff/c"), "\"a\\x20b\xff/c\"");
}

TEST(IndexQuote, RoundTripsEveryByte) {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  std::string quoted = quote_path(all);
  EXPECT_EQ(quoted.front(), '"');
  for (char c : std::string_view(quoted).substr(1, quoted.size() - 2)) {
    EXPECT_FALSE(c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' ||
                 c == '"' || c == '\'')
        << static_cast<int>(c);
  }
  EXPECT_EQ(unquote_path(quoted), all);
  // duplicity's own special-character test string.
  std::string special =
      "\n eu \x23"
      "3/heuo/\xd8\xab\xb1Wb\xae\xc5]\x8a*\"\\'^$@#!(){}?+ ~` ";
  EXPECT_EQ(unquote_path(quote_path(special)), special);
}

TEST(IndexQuote, Unquote) {
  EXPECT_EQ(unquote_path("plain"), "plain");
  EXPECT_EQ(unquote_path("it's"), "it's");  // not starting with '"': literal
  EXPECT_EQ(unquote_path("\"a\\x20b\""), "a b");
  EXPECT_EQ(unquote_path("\"a\\X20b\""), "\"a\\X20b\"");  // duplicity needs a lowercase x
  EXPECT_EQ(unquote_path("\"A\\x4A\\x4a\""), "AJJ");      // hex digits in either case
  EXPECT_EQ(unquote_path("\"\""), "");
  EXPECT_EQ(try_unquote_path("\"a\\x2\""), std::nullopt);
  EXPECT_EQ(try_unquote_path("\"a\\q20\""), std::nullopt);
  EXPECT_EQ(try_unquote_path("\"unterminated"), std::nullopt);
  EXPECT_EQ(try_unquote_path("\"a\\x2"), std::nullopt);
  EXPECT_EQ(unquote_path("\"unterminated"), "\"unterminated");
  EXPECT_EQ(try_unquote_path("\"x\\xzz\""), std::nullopt);
  EXPECT_EQ(try_unquote_path("raw"), "raw");
}

}  // namespace
}  // namespace dupfs::chain
