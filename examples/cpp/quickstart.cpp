// From a catalog to recommendations with the installed lamia, one step after the other:
// catalog (and its sequences) -> BPE tokenizer -> palette encoder (a few training steps) -> palettes file ->
// semantic IDs (PCA + K-Means per palette position) -> sequences -> generative recommender
// (one epoch) -> constrained beam search for one user.
//
//   quickstart                        # a small synthetic catalog (300 items, 400 users)
//   quickstart amazon-lcrec DIR       # a dataset of yours (any format of lamia::dataset_formats())
//   quickstart --threads 1 --out DIR  # torch threads (0: lamia's default), where palettes.bin goes
//
// Sizes are tiny so that it runs in seconds on two cores: the recommendations show the API, not
// what a trained model achieves (`lamia run` trains for real).
#include <lamia/core/errors.hpp>
#include <lamia/core/threads.hpp>
#include <lamia/data.hpp>
#include <lamia/nn/threads.hpp>
#include <lamia/palette.hpp>
#include <lamia/quantize.hpp>
#include <lamia/recommend.hpp>
#include <lamia/text.hpp>

#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <string>

namespace fs = std::filesystem;

namespace {

struct Args {
  int threads = 0;
  fs::path out = "quickstart-out";
  std::string format;  // empty: the synthetic catalog
  fs::path dir;
};

Args parse_args(int argc, char** argv) {
  Args a;
  std::vector<std::string> rest;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw lamia::ValueError("option " + arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--threads") {
      const auto v = value();
      char* end = nullptr;
      a.threads = int(std::strtol(v.c_str(), &end, 10));
      if (end == v.c_str() || *end != '\0' || a.threads < 0)
        throw lamia::ValueError("option --threads: expected an integer >= 0, got '" + v + "'");
    } else if (arg == "--out") {
      a.out = value();
    } else if (arg == "-h" || arg == "--help") {
      std::cout << "usage: quickstart [--threads N] [--out DIR] [FORMAT DATASET_DIR]\n";
      std::exit(0);
    } else {
      rest.push_back(arg);
    }
  }
  if (rest.size() == 2) {
    a.format = rest[0];
    a.dir = rest[1];
  } else if (!rest.empty()) {
    throw lamia::ValueError("expected FORMAT and DATASET_DIR together, or neither (see --help)");
  }
  return a;
}

// The text shown for an item: its title when the catalog has one, else the attributes after the
// first (the synthetic catalog's: one per aspect, after a description), cut at 60 characters.
std::string item_text(const lamia::Catalog& catalog, lamia::ItemIndex item) {
  std::string text;
  if (catalog.has_attribute("title")) {
    text = catalog.value(item, "title");
  } else {
    for (std::size_t a = catalog.num_attributes() > 1 ? 1 : 0; a < catalog.num_attributes(); ++a)
      text += (text.empty() ? "" : " / ") + catalog.value(item, a);
  }
  return text.size() > 60 ? text.substr(0, 57) + "..." : text;
}

std::string codes_text(const lamia::SemanticIdTable& table, lamia::ItemIndex item) {
  std::string s = "<";
  for (auto token : table.id(item)) s += (s.size() > 1 ? " " : "") + std::to_string(token);
  return s + ">";
}

int run(const Args& args) {
  const int threads = lamia::set_torch_threads(args.threads);  // torch's (and OpenMP's) thread count
  std::cout << "threads: " << lamia::thread_summary(threads) << "\n";

  // 1. The catalog and its interactions.
  lamia::Dataset data;
  if (args.format.empty()) {
    lamia::SyntheticOptions synthetic;
    synthetic.num_items = 300;
    synthetic.num_users = 400;
    synthetic.attribute_layout = lamia::SyntheticAttributeLayout::aspect_per_attribute;
    synthetic.sentences = 1;  // a short description
    synthetic.filler_per_sentence = 2;
    data = lamia::generate_synthetic(synthetic).dataset;
  } else {
    data = lamia::load_dataset(args.format, args.dir);
  }
  const auto& catalog = data.catalog;
  const auto m = std::int64_t(catalog.num_attributes());
  std::cout << "catalog '" << data.name << "': " << catalog.size() << " items, " << m << " attributes, "
            << data.interactions.num_users() << " users\n";

  // 2. Sequences (ratings >= 4, the last 20 items per user), split leave-one-out.
  const auto sequences = lamia::build_sequences(data);
  const auto split = lamia::split_leave_one_out(sequences);
  if (split.train.empty() || split.test.empty()) throw lamia::ValueError("the dataset has too few interactions per user");

  // 3. A byte-level BPE trained on the catalog's text.
  lamia::BpeTrainerOptions bpe;
  bpe.vocab_size = 512;
  auto tokenizer = std::make_shared<lamia::ByteLevelBpeTokenizer>(lamia::train_bpe(catalog, bpe));

  // 4. A tiny palette encoder (L = 4 palette vectors per item; task i reads position i mod L).
  auto encoder_options = lamia::PaletteEncoderOptions(m, 1)
                             .palette_size(4)
                             .task_routing(lamia::TaskRouting::kOnePosition)
                             .attribute_token_budget(32)
                             .answer_token_budget(16);
  lamia::ScratchModelOptions model;
  model.vocab_size = 512;
  model.hidden_size = 64;
  model.num_layers = 2;
  model.num_heads = 2;
  model.max_position_embeddings = 256;
  model.seed = 1;
  auto setup = lamia::make_palette_setup_from_tokenizer(catalog, tokenizer, encoder_options, model);
  lamia::PaletteTrainer trainer(setup.encoder, setup.catalog,
                                lamia::PaletteTrainerOptions().batch_size(32).seed(1).loop(
                                    lamia::PaletteTrainerOptions::default_loop()
                                        .learning_rate(3e-3)
                                        .epochs(20)
                                        .max_steps(150)
                                        .eval_every(50)
                                        .log_every(25)));
  const auto palette_result = trainer.train();
  std::cout << "palette encoder: " << palette_result.steps << " steps (" << palette_result.stop_reason << ")\n";

  // 5. Every item's palettes into a palette file, then read back: n x L x D floats.
  fs::create_directories(args.out);
  lamia::export_palettes(*setup.encoder, setup.catalog, args.out / "palettes.bin");
  const auto palettes = lamia::load_palettes(args.out / "palettes.bin").palettes;

  // 6. Semantic IDs: per position a PCA and K-Means (16 codes), plus an index token for collisions.
  lamia::PaletteQuantizerOptions quantize;
  quantize.pca_dim = 16;
  quantize.kmeans.num_codes = 16;
  quantize.kmeans.seed = 1;
  quantize.reduce_k_when_few_items = true;
  lamia::PaletteQuantizer quantizer(quantize);
  const auto fit = quantizer.fit(palettes);
  const lamia::SemanticIdTable table = quantizer.table();
  std::cout << "semantic IDs: " << table.num_items() << " items, " << table.num_levels() << " codes + index, "
            << fit.num_colliding_items << " items in collisions\n";

  // 7. A tiny generative recommender over the codes, one epoch.
  lamia::RecommenderModelOptions rec;
  rec.hidden_size = 64;
  rec.num_layers = 2;
  rec.num_heads = 2;
  const auto vocab = lamia::CodeVocabulary::for_table(table);
  auto recommender = lamia::make_recommender(vocab, rec, /*seed=*/1);
  lamia::RecommenderTrainerOptions train;
  train.batch_size = 32;
  train.loop.epochs(1).learning_rate(3e-3).log_every(5);
  const auto rec_result = lamia::train_recommender(recommender, table, split.train, split.valid, train);
  std::cout << "recommender: " << rec_result.steps << " steps, " << split.train.size() << " training users\n";

  // 8. Beam search over real items only (a trie of the IDs), not recommending the history again.
  const auto& example = split.test.front();
  const auto& items = sequences.catalog;
  lamia::DeviceTrie trie(table, vocab, recommender->device());
  const auto histories = lamia::encode_histories(table, vocab, {example.history}, rec.max_history_items);
  lamia::BeamSearchOptions beam;
  beam.beam_width = 10;
  beam.top_k = 5;
  const auto found = lamia::beam_search(*recommender, trie, histories, beam,
                                        lamia::ConstraintSet().add(lamia::ExcludeHistory{}));

  std::cout << "\nuser " << data.interactions.user_id(example.user) << ", last items of " << example.history.size()
            << " in the history:\n";
  const auto shown = std::min<std::size_t>(5, example.history.size());
  for (auto i = example.history.size() - shown; i < example.history.size(); ++i) {
    const auto item = example.history[i];
    std::cout << "  " << std::left << std::setw(6) << items.id(item) << " " << std::setw(18) << codes_text(table, item)
              << " " << item_text(items, item) << "\n";
  }
  std::cout << "top-" << beam.top_k << " recommendations (held-out next item: " << items.id(example.target) << "):\n";
  const auto top = found.items[0];
  const auto scores = found.scores[0];
  for (std::int64_t k = 0; k < found.counts[0].item<std::int64_t>(); ++k) {
    const auto item = lamia::ItemIndex(top[k].item<std::int64_t>());
    std::cout << "  " << k + 1 << ". " << std::left << std::setw(6) << items.id(item) << " " << std::setw(18)
              << codes_text(table, item) << " " << std::right << std::fixed << std::setprecision(2) << std::setw(7)
              << scores[k].item<float>() << std::left << "  " << item_text(items, item)
              << (item == example.target ? "  <- the held-out item" : "") << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_args(argc, argv));
  } catch (const std::exception& e) {  // lamia's errors name the file, key or value at fault
    std::cerr << "quickstart: " << e.what() << "\n";
    return 1;
  }
}
