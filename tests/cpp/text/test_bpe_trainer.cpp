// The BPE trainer.
#include "text_test_util.hpp"

#include <lamia/core/errors.hpp>
#include <lamia/data/catalog.hpp>

#include <catch2/catch.hpp>

#include <set>

using namespace lamia;
namespace fs = std::filesystem;
using Ids = std::vector<TokenId>;

namespace {
std::size_t total_tokens(const Tokenizer& tok, const std::vector<std::string>& texts) {
  std::size_t n = 0;
  for (const auto& t : texts) n += tok.encode(t).size();
  return n;
}
}  // namespace

TEST_CASE("trained tokenizer: layout, round trip and report", "[text][trainer]") {
  const auto corpus = test::small_corpus();
  BpeTrainerOptions options;
  options.vocab_size = 400;
  BpeTrainerReport report;
  ByteLevelBpeTokenizer tok = train_bpe(corpus, options, &report);
  CHECK(tok.vocab_size() == 400);
  CHECK(report.stop_reason == "vocab_size reached");
  CHECK(report.num_texts == corpus.size());
  CHECK(report.num_merges == tok.num_merges());
  CHECK(report.num_merges == 400 - 260);
  // Specials first (OPT's order), then the bytes in GPT-2's order.
  CHECK(tok.token_to_id("<s>") == 0);
  CHECK(tok.token_to_id("<pad>") == 1);
  CHECK(tok.token_to_id("</s>") == 2);
  CHECK(tok.token_to_id("<unk>") == 3);
  CHECK(tok.token_to_id("!") == 4);
  CHECK(tok.special_tokens().bos == 0);
  CHECK(tok.special_tokens().eos == 2);
  CHECK(tok.special_tokens().pad == 1);
  CHECK(tok.special_tokens().unk == 3);
  // Merge counts never increase.
  for (std::size_t i = 1; i < report.merge_counts.size(); ++i) CHECK(report.merge_counts[i] <= report.merge_counts[i - 1]);
  for (const auto& t : corpus) CHECK(tok.decode(tok.encode(t)) == t);
  for (const std::string s : {"unseen words ŽŽŽ 🦄", "\xFF\xFE broken", "", "   "})
    CHECK(tok.decode(tok.encode(s)) == s);
  // Special tokens are never produced from text, only parsed on request.
  CHECK(tok.encode("</s>") != Ids{2});
  CHECK(tok.encode("</s>", true) == Ids{2});
}

TEST_CASE("compression improves with vocabulary size", "[text][trainer]") {
  const auto corpus = test::small_corpus();
  std::size_t previous = 0;
  for (std::size_t size : {260u, 300u, 400u, 600u}) {
    BpeTrainerOptions options;
    options.vocab_size = size;
    options.min_frequency = 1;
    const auto tok = train_bpe(corpus, options);
    const std::size_t n = total_tokens(tok, corpus);
    INFO("vocab_size " << size << ": " << n << " tokens");
    if (previous) CHECK(n < previous);
    previous = n;
  }
}

TEST_CASE("merges are learned most frequent first and applied in rank order", "[text][trainer]") {
  // "ab" is the most frequent pair (6), then " ab" (5), then " abc" (3).
  const std::vector<std::string> texts = {"abc abc abc abc ab ab xy"};
  BpeTrainerOptions options;
  options.special_tokens = {};
  options.bos_token = options.eos_token = options.pad_token = options.unk_token = "";
  options.vocab_size = 256 + 3;
  ByteLevelBpeTokenizer tok = train_bpe(texts, options);
  REQUIRE(tok.num_merges() == 3);
  const auto m0 = tok.merge(0);
  CHECK(tok.id_to_token(m0[2]) == "ab");
  // Every merge's result encodes to itself: the ranks reproduce training.
  for (std::size_t r = 0; r < tok.num_merges(); ++r) {
    const auto m = tok.merge(r);
    CHECK(tok.encode(tok.token_bytes(m[2])) == Ids{m[2]});
  }
  CHECK(tok.encode(" abc").size() == 1);
}

TEST_CASE("training is deterministic and respects min_frequency", "[text][trainer]") {
  const auto corpus = test::small_corpus(5);
  BpeTrainerOptions options;
  options.vocab_size = 1000;
  options.min_frequency = 20;
  BpeTrainerReport report;
  const auto a = train_bpe(corpus, options, &report);
  const auto b = train_bpe(corpus, options);
  CHECK(report.stop_reason == "no pair reaches min_frequency");
  CHECK(a.vocab_size() < 1000);
  REQUIRE(a.num_merges() == b.num_merges());
  for (std::size_t r = 0; r < a.num_merges(); ++r) CHECK(a.merge(r) == b.merge(r));
  for (std::size_t c : report.merge_counts) CHECK(c >= 20);
}

TEST_CASE("trained tokenizer: save then load gives identical ids", "[text][trainer][save]") {
  BpeTrainerOptions options;
  options.vocab_size = 500;
  options.special_tokens = {"<s>", "<pad>", "</s>", "<unk>", "<mask>"};
  options.add_bos_token = true;
  auto tok = train_bpe(test::small_corpus(), options);
  tok.add_special_token("<LaP_1>");
  const fs::path dir = test::temp_dir("trainer_save");
  tok.save(dir);
  auto back = load_tokenizer(dir);
  CHECK(back->vocab_size() == tok.vocab_size());
  CHECK(back->token_to_id("<mask>") == 4);
  CHECK(back->add_bos_token());
  for (const auto& t : test::small_corpus(1)) {
    CHECK(back->encode(t) == tok.encode(t));
    CHECK(back->encode_with_special_tokens(t + "<mask><LaP_1>") == tok.encode_with_special_tokens(t + "<mask><LaP_1>"));
  }
  fs::remove_all(dir);
}

TEST_CASE("training on a catalog uses every attribute value", "[text][trainer]") {
  Catalog catalog({"title", "brand"});
  catalog.add("a", {"Blue ballpoint pen", "Pilot"});
  catalog.add("b", {"Red ballpoint pen", ""});
  catalog.add("c", {"Black ballpoint pen", "Pilot"});
  const auto texts = catalog_texts(catalog);
  CHECK(texts == std::vector<std::string>{"title: Blue ballpoint pen", "brand: Pilot", "title: Red ballpoint pen",
                                          "title: Black ballpoint pen", "brand: Pilot"});
  CHECK(catalog_texts(catalog, false).front() == "Blue ballpoint pen");
  BpeTrainerOptions options;
  options.vocab_size = 300;
  auto tok = train_bpe(catalog, options);
  CHECK(tok.encode(" ballpoint").size() <= 2);
}

TEST_CASE("trainer rejects impossible options", "[text][trainer][errors]") {
  BpeTrainerOptions options;
  options.vocab_size = 100;
  CHECK_THROWS_WITH(train_bpe(std::vector<std::string>{"x"}, options),
                    Catch::Contains("vocab_size must be at least 260") && Catch::Contains("got 100"));
  options.vocab_size = 300;
  options.min_frequency = 0;
  CHECK_THROWS_AS(train_bpe(std::vector<std::string>{"x"}, options), ValueError);
  options.min_frequency = 1;
  options.special_tokens = {""};
  CHECK_THROWS_AS(train_bpe(std::vector<std::string>{"x"}, options), ValueError);
}
