// The GPT-2 pre-tokenizer and UTF-8 decoding.
#include "text_test_util.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <random>

using namespace lamia;
using Pieces = std::vector<std::string>;

namespace {
Pieces split(std::string_view s) {
  Pieces out;
  for (auto p : gpt2_pretokenize(s)) out.emplace_back(p);
  return out;
}
}  // namespace

TEST_CASE("character classes follow Unicode L, N and White_Space", "[text][pretokenizer]") {
  CHECK(char_class(U'a') == CharClass::kLetter);
  CHECK(char_class(U'É') == CharClass::kLetter);
  CHECK(char_class(U'東') == CharClass::kLetter);
  CHECK(char_class(U'ǅ') == CharClass::kLetter);      // Lt
  CHECK(char_class(U'ʰ') == CharClass::kLetter);      // Lm
  CHECK(char_class(U'7') == CharClass::kNumber);
  CHECK(char_class(U'½') == CharClass::kNumber);      // No
  CHECK(char_class(U'Ⅻ') == CharClass::kNumber);      // Nl
  CHECK(char_class(U'٣') == CharClass::kNumber);      // Nd, Arabic-Indic
  CHECK(char_class(U' ') == CharClass::kWhiteSpace);
  CHECK(char_class(U'\t') == CharClass::kWhiteSpace);
  CHECK(char_class(0x85) == CharClass::kWhiteSpace);  // NEL is White_Space
  CHECK(char_class(0xA0) == CharClass::kWhiteSpace);
  CHECK(char_class(0x3000) == CharClass::kWhiteSpace);
  CHECK(char_class(0x1C) == CharClass::kOther);       // str.isspace() but not White_Space
  CHECK(char_class(0xFEFF) == CharClass::kOther);     // \s in JavaScript, not White_Space
  CHECK(char_class(0x200B) == CharClass::kOther);     // zero width space is Cf
  CHECK(char_class(U'😀') == CharClass::kOther);
  CHECK(char_class(U'\u0301') == CharClass::kOther);  // combining marks are M, not L
  CHECK(char_class(0x10FFFF) == CharClass::kOther);
}

TEST_CASE("UTF-8 decoding rejects malformed sequences", "[text][pretokenizer]") {
  char32_t cp = 0;
  CHECK(decode_utf8("\xC3\xA9", cp) == 2);
  CHECK(cp == U'é');
  CHECK(decode_utf8("\xF0\x9F\x98\x80", cp) == 4);
  CHECK(cp == U'😀');
  CHECK(decode_utf8("\xC0\xAF", cp) == 0);          // overlong '/'
  CHECK(decode_utf8("\xE0\x80\xAF", cp) == 0);      // overlong
  CHECK(decode_utf8("\xED\xA0\x80", cp) == 0);      // surrogate U+D800
  CHECK(decode_utf8("\xF4\x90\x80\x80", cp) == 0);  // > U+10FFFF
  CHECK(decode_utf8("\xE2\x82", cp) == 0);          // truncated
  CHECK(decode_utf8("\x80", cp) == 0);              // stray continuation
  CHECK(decode_utf8("\xFF", cp) == 0);
  CHECK(is_valid_utf8("plain ascii, café, 東京, 😀"));
  CHECK_FALSE(is_valid_utf8("bad \xFF byte"));
}

TEST_CASE("pre-tokenizer applies GPT-2's regex rules", "[text][pretokenizer]") {
  CHECK(split("Hello world") == Pieces{"Hello", " world"});
  CHECK(split("I'm you're") == Pieces{"I", "'m", " you", "'re"});
  // Contractions are case-sensitive, as in GPT-2.
  CHECK(split("I'M") == Pieces{"I", "'", "M"});
  CHECK(split("''s") == Pieces{"''", "s"});
  CHECK(split("abc123") == Pieces{"abc", "123"});
  CHECK(split(" 123") == Pieces{" 123"});
  CHECK(split("a  b") == Pieces{"a", " ", " b"});
  CHECK(split("a   ") == Pieces{"a", "   "});
  CHECK(split("a\n\nb") == Pieces{"a", "\n", "\n", "b"});
  CHECK(split("x \n y") == Pieces{"x", " \n", " y"});
  CHECK(split("\tword") == Pieces{"\t", "word"});
  CHECK(split("!!! ???") == Pieces{"!!!", " ???"});
  CHECK(split("café") == Pieces{"café"});
  CHECK(split("e\u0301") == Pieces{"e", "\u0301"});  // a mark is neither L nor N
  CHECK(split("东京 日本") == Pieces{"东京", " 日本"});
  CHECK(split("no\u00a0break") == Pieces{"no", "\u00a0", "break"});
  CHECK(split("").empty());
}

TEST_CASE("pre-tokenizer matches the JavaScript regex on the golden strings", "[text][pretokenizer]") {
  std::ifstream in(test::tokenizer_data() / "gpt2_golden.json");
  REQUIRE(in);
  const auto golden = nlohmann::json::parse(in);
  std::size_t checked = 0;
  for (const auto& c : golden.at("cases")) {
    const std::string text = c.at("text");
    INFO("text: " << text);
    CHECK(split(text) == c.at("pieces").get<Pieces>());
    ++checked;
  }
  CHECK(checked >= 80);
}

TEST_CASE("each invalid UTF-8 byte is a piece of its own", "[text][pretokenizer]") {
  CHECK(split("ab\xFF" "cd") == Pieces{"ab", "\xFF", "cd"});
  CHECK(split(" \xFF") == Pieces{" ", "\xFF"});
  CHECK(split("x \xC3") == Pieces{"x", " ", "\xC3"});
  CHECK(split("\xE2\x82" "a") == Pieces{"\xE2", "\x82", "a"});  // truncated: each byte alone
  CHECK(split("!!\x80!!") == Pieces{"!!", "\x80", "!!"});
}

TEST_CASE("pieces cover random byte strings exactly", "[text][pretokenizer]") {
  std::mt19937 rng(GENERATE(1u, 2u, 3u));
  const std::vector<std::string> alphabet = {"a", "Z", " ", "  ", "\n", "\t", "'", "s", "1", "!", "é", "東",
                                             "😀", "\xFF", "\xC3", "\x80", "\u00a0", "\u3000", "'ll", "_"};
  for (int trial = 0; trial < 200; ++trial) {
    std::string s;
    const int n = static_cast<int>(rng() % 30);
    for (int i = 0; i < n; ++i) s += alphabet[rng() % alphabet.size()];
    std::string joined;
    for (auto p : gpt2_pretokenize(s)) {
      CHECK_FALSE(p.empty());
      joined += p;
    }
    CHECK(joined == s);
  }
}
