#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/core/options.hpp>
#include <lamia/core/preview.hpp>
#include <lamia/core/threads.hpp>
#include <lamia/data/detail/json_io.hpp>
#include <lamia/pipeline/pipeline_config.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <functional>

// The config's fields are listed once, in the visit_fields of pipeline_config.hpp and of the
// library's Options structs the sections hold; lamia/core/options.hpp reads and writes them. This
// file adds what a field list cannot say: the allowed names of string fields and the checks that
// involve several fields.

namespace lamia {
namespace {

using json = nlohmann::json;

const options::Where kRoot{"config", ""};

void check_one_of(const std::string& key, const std::string& value, const std::vector<std::string>& allowed) {
  if (std::find(allowed.begin(), allowed.end(), value) == allowed.end())
    kRoot.key(key).fail_message(fmt::format("'{}' is not one of {}", value, fmt::join(allowed, ", ")));
}

// Each name runs once (a repeated tokenizer or baseline would be trained and reported under one name).
void check_no_repeats(const std::string& key, const std::vector<std::string>& names) {
  for (std::size_t i = 0; i < names.size(); ++i)
    if (std::find(names.begin(), names.begin() + std::ptrdiff_t(i), names[i]) != names.begin() + std::ptrdiff_t(i))
      kRoot.key(key).fail_message(fmt::format("'{}' is listed twice", preview(names[i], 40)));
}

// A library struct's own check(), its message prefixed with the section's key path.
void checked(const std::string& key, const std::function<void()>& check) {
  try {
    check();
  } catch (const ValueError& e) {
    kRoot.key(key).fail_message(e.what());
  }
}

void validate(const PipelineConfig& c) {
  // A config may come from another machine, but a count beyond what this one can run is a typo
  // (threads: 1000000 would try to start them all).
  if (c.threads > max_thread_count())
    kRoot.key("threads").fail_message(fmt::format("must be <= {} (4 x this machine's hardware threads; 0: its cores), got {}",
                                                  max_thread_count(), c.threads));
  checked("dataset.synthetic", [&] { c.dataset.synthetic.validate(); });
  const auto& enc = c.palette.encoder;
  if (enc.num_content_attributes() > 0 && enc.num_attributes() > 0 &&
      enc.num_content_attributes() > enc.num_attributes())
    kRoot.key("palette.encoder.num_content_attributes")
        .fail_message(fmt::format("must be <= num_attributes ({}), got {}", enc.num_attributes(),
                                  enc.num_content_attributes()));
  if (!c.palette.trainer.loop().checkpoint_path().empty())
    kRoot.key("palette.trainer.checkpoint_path")
        .fail_message("must stay empty: the palette stage checkpoints to palette_encoder/trainer.ckpt");
  checked("palette.trainer", [&] { c.palette.trainer.check(); });
  if (!c.quantize.rq_vae_train.checkpoint_path.empty())
    kRoot.key("quantize.rq_vae_train.checkpoint_path")
        .fail_message("must stay empty: the quantize stage checkpoints to checkpoints/quantize/rq_vae.ckpt");
  // The semantic IDs cover every catalog item, so the sequences must index the whole catalog: the
  // pipeline drops text-less items from the dataset (dataset.drop_items_without_text), never in the
  // sequences alone. The sequences' key was silently set back to false until session 13.
  if (c.sequences.filter.drop_items_without_text)
    kRoot.key("sequences.filter.drop_items_without_text")
        .fail_message("is not supported by the pipeline (the semantic IDs cover every catalog item, so the "
                      "sequences keep them all); set dataset.drop_items_without_text instead, which removes "
                      "them before any stage");
  check_one_of("sequences.protocol", c.sequences.protocol, {"leave_one_out", "user_holdout"});
  check_no_repeats("recommend.tokenizers", c.recommend.tokenizers);
  check_no_repeats("recommend.baselines", c.recommend.baselines);
  check_one_of("sequences.train_examples", c.sequences.train_examples, {"all_prefixes", "last_item"});
  for (const auto& t : c.recommend.tokenizers)
    check_one_of("recommend.tokenizers", t, {"lamia", "rq-vae", "residual-kmeans", "oracle", "random"});
  for (const auto& b : c.recommend.baselines)
    check_one_of("recommend.baselines", b, {"popularity", "transition", "sasrec-ce", "sasrec-bce"});
  if (c.recommend.model.item_text_tokens > 0 && c.recommend.model.backbone != RecommenderBackbone::lm)
    kRoot.key("recommend.model.item_text_tokens")
        .fail_message("needs recommend.model.backbone 'lm' (the codes backbone reads no text)");
  checked("recommend.model", [&] { c.recommend.model.check(); });
  if (c.recommend.align_epochs > 0 && c.recommend.model.backbone != RecommenderBackbone::lm)
    kRoot.key("recommend.align_epochs").fail_message("needs recommend.model.backbone 'lm' (the alignment task reads text)");
  checked("recommend.sasrec", [&] { c.recommend.sasrec.check(); });
}

}  // namespace

void to_json(json& j, const PipelineConfig& c) { j = options::to_json(c); }

void from_json(const json& j, PipelineConfig& out) {
  PipelineConfig c;  // missing keys keep their defaults; out is assigned only when everything parsed and checked
  options::from_json(j, c, kRoot);
  validate(c);
  out = std::move(c);
}

json load_pipeline_config_json(const std::filesystem::path& path) {
  const std::string text = read_file(path);  // a regular file: a FIFO or folder is an IOError, not a hang
  // The loaders' reader: nesting deeper than limits::kMaxJsonDepth is a ParseError naming the line
  // (printing such a value in an error message would overflow the stack), and so are any syntax
  // error and a key set twice in one object (a parser would keep the last value).
  json j = detail::parse_json(text, path.string(), 1);
  if (!j.is_object()) throw ValueError(fmt::format("{}: a configuration is a JSON object", path.string()));
  return j;
}

PipelineConfig load_pipeline_config(const std::filesystem::path& path) {
  const json j = load_pipeline_config_json(path);
  try {
    PipelineConfig c;
    from_json(j, c);
    return c;
  } catch (const ValueError& e) {
    throw ValueError(fmt::format("{}: {}", path.string(), e.what()));
  } catch (const json::exception& e) {  // never a raw library exception
    throw ValueError(fmt::format("{}: {}", path.string(), preview(e.what(), 200)));
  }
}

}  // namespace lamia
