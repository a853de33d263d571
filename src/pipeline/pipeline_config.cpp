#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/pipeline/pipeline_config.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <functional>
#include <map>

namespace lamia {
namespace {

using json = nlohmann::json;

// Reads the keys of one JSON object into fields, checking types and rejecting
// unknown keys, with errors that name the key path ("palette.batch_size").
class ObjectReader {
 public:
  ObjectReader(const json& j, std::string path) : j_(j), path_(std::move(path)) {
    if (!j_.is_object()) fail(path_.empty() ? "<root>" : path_, "an object", j_);
  }

  template <typename T>
  ObjectReader& field(const std::string& key, T& out) {
    handlers_[key] = [this, key, &out](const json& v) { read(v, key, out); };
    return *this;
  }
  ObjectReader& section(const std::string& key, const std::function<void(const json&, const std::string&)>& read_section) {
    handlers_[key] = [this, key, read_section](const json& v) { read_section(v, where(key)); };
    return *this;
  }
  void done() const {
    for (const auto& [key, v] : j_.items()) {
      auto it = handlers_.find(key);
      if (it == handlers_.end()) {
        std::vector<std::string> known;
        for (const auto& [k, h] : handlers_) known.push_back(k);
        throw ValueError(fmt::format("config: unknown key '{}' (known keys{}: {})", where(key),
                                     path_.empty() ? "" : " of '" + path_ + "'", fmt::join(known, ", ")));
      }
      it->second(v);
    }
  }

 private:
  std::string where(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  [[noreturn]] static void fail(const std::string& key, const char* expected, const json& got) {
    throw ValueError(fmt::format("config: key '{}': expected {}, got {} {}", key, expected, got.type_name(), got.dump()));
  }
  void read(const json& v, const std::string& key, std::int64_t& out) const {
    if (v.is_number_integer()) out = v.get<std::int64_t>();
    else if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()) out = std::int64_t(v.get<double>());
    else fail(where(key), "an integer", v);
  }
  void read(const json& v, const std::string& key, int& out) const {
    std::int64_t x = 0;
    read(v, key, x);
    if (x < std::numeric_limits<int>::min() || x > std::numeric_limits<int>::max())
      fail(where(key), "an integer that fits in 32 bits", v);
    out = int(x);
  }
  void read(const json& v, const std::string& key, std::uint64_t& out) const {
    std::int64_t x = 0;
    read(v, key, x);
    if (x < 0) fail(where(key), "a non-negative integer", v);
    out = std::uint64_t(x);
  }
  void read(const json& v, const std::string& key, double& out) const {
    if (!v.is_number()) fail(where(key), "a number", v);
    out = v.get<double>();
  }
  void read(const json& v, const std::string& key, bool& out) const {
    if (!v.is_boolean()) fail(where(key), "true or false", v);
    out = v.get<bool>();
  }
  void read(const json& v, const std::string& key, std::string& out) const {
    if (!v.is_string()) fail(where(key), "a string", v);
    out = v.get<std::string>();
  }
  void read(const json& v, const std::string& key, std::filesystem::path& out) const {
    std::string s;
    read(v, key, s);
    out = s;
  }
  void read(const json& v, const std::string& key, std::vector<std::int64_t>& out) const {
    if (!v.is_array()) fail(where(key), "an array of integers", v);
    out.clear();
    for (const auto& e : v) {
      if (!e.is_number_integer()) fail(where(key), "an array of integers", v);
      out.push_back(e.get<std::int64_t>());
    }
  }
  void read(const json& v, const std::string& key, std::vector<std::string>& out) const {
    if (!v.is_array()) fail(where(key), "an array of strings", v);
    out.clear();
    for (const auto& e : v) {
      if (!e.is_string()) fail(where(key), "an array of strings", v);
      out.push_back(e.get<std::string>());
    }
  }

  const json& j_;
  std::string path_;
  std::map<std::string, std::function<void(const json&)>> handlers_;
};

// A section read by the struct's own from_json; its errors get the section's key path.
template <typename T>
std::function<void(const json&, const std::string&)> nested(T& out) {
  return [&out](const json& v, const std::string& path) {
    try {
      from_json(v, out);
    } catch (const ValueError& e) {
      throw ValueError(fmt::format("config: '{}': {}", path, e.what()));
    }
  };
}

void check_one_of(const std::string& key, const std::string& value, const std::vector<std::string>& allowed) {
  if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
    throw ValueError(fmt::format("config: key '{}': '{}' is not one of {}", key, value, fmt::join(allowed, ", ")));
  }
}

}  // namespace

void to_json(json& j, const PipelineConfig& c) {
  json synthetic;
  to_json(synthetic, c.dataset.synthetic);
  j = json{{"dataset",
            {{"format", c.dataset.format},
             {"path", c.dataset.path.string()},
             {"lenient", c.dataset.lenient},
             {"attributes", c.dataset.attributes},
             {"content_attributes", c.dataset.content_attributes},
             {"synthetic", synthetic}}},
           {"tokenizer", {{"vocab_size", c.tokenizer.vocab_size}}},
           {"model",
            {{"pretrained", c.model.pretrained.string()},
             {"lora_rank", c.model.lora_rank},
             {"hidden_size", c.model.hidden_size},
             {"num_layers", c.model.num_layers},
             {"num_heads", c.model.num_heads},
             {"ffn_dim", c.model.ffn_dim},
             {"max_positions", c.model.max_positions},
             {"dropout", c.model.dropout}}},
           {"palette",
            {{"palette_size", c.palette.palette_size},
             {"attribute_token_budget", c.palette.attribute_token_budget},
             {"answer_token_budget", c.palette.answer_token_budget},
             {"gamma", c.palette.gamma},
             {"alpha_intra", c.palette.alpha_intra},
             {"alpha_inter", c.palette.alpha_inter},
             {"contrastive", c.palette.contrastive},
             {"learning_rate", c.palette.learning_rate},
             {"batch_size", c.palette.batch_size},
             {"epochs", c.palette.epochs},
             {"max_steps", c.palette.max_steps},
             {"holdout_fraction", c.palette.holdout_fraction},
             {"grad_clip", c.palette.grad_clip},
             {"seed", c.palette.seed}}},
           {"quantize",
            {{"pca_dim", c.quantize.pca_dim},
             {"num_codes", c.quantize.num_codes},
             {"iterations", c.quantize.iterations},
             {"restarts", c.quantize.restarts},
             {"baseline_levels", c.quantize.baseline_levels},
             {"rqvae_max_epochs", c.quantize.rqvae_max_epochs},
             {"seed", c.quantize.seed}}},
           {"sequences",
            {{"protocol", c.sequences.protocol},
             {"filter", c.sequences.filter},
             {"holdout", c.sequences.holdout},
             {"train_examples", c.sequences.train_examples},
             {"user_order_seed", c.sequences.user_order_seed}}},
           {"recommend",
            {{"tokenizers", c.recommend.tokenizers},
             {"model", c.recommend.model},
             {"batch_size", c.recommend.batch_size},
             {"learning_rate", c.recommend.learning_rate},
             {"epochs", c.recommend.epochs},
             {"patience", c.recommend.patience},
             {"loss_on_history", c.recommend.loss_on_history},
             {"seed", c.recommend.seed},
             {"baselines", c.recommend.baselines},
             {"sasrec", c.recommend.sasrec},
             {"sasrec_epochs", c.recommend.sasrec_epochs},
             {"sasrec_batch_size", c.recommend.sasrec_batch_size}}},
           {"evaluate",
            {{"beam_width", c.evaluate.beam_width},
             {"top_k", c.evaluate.top_k},
             {"ks", c.evaluate.ks},
             {"exact", c.evaluate.exact},
             {"exclude_history", c.evaluate.exclude_history},
             {"max_users", c.evaluate.max_users}}},
           {"threads", c.threads},
           {"progress", c.progress}};
}

void from_json(const json& j, PipelineConfig& out) {
  PipelineConfig c;  // defaults; out is assigned only when everything parsed
  ObjectReader(j, "")
      .section("dataset",
               [&](const json& v, const std::string& path) {
                 ObjectReader(v, path)
                     .field("format", c.dataset.format)
                     .field("path", c.dataset.path)
                     .field("lenient", c.dataset.lenient)
                     .field("attributes", c.dataset.attributes)
                     .field("content_attributes", c.dataset.content_attributes)
                     .section("synthetic",
                              [&](const json& s, const std::string& spath) {
                                try {
                                  from_json(s, c.dataset.synthetic);
                                } catch (const ValueError& e) {
                                  throw ValueError(fmt::format("config: '{}': {}", spath, e.what()));
                                }
                              })
                     .done();
               })
      .section("tokenizer",
               [&](const json& v, const std::string& path) {
                 ObjectReader(v, path).field("vocab_size", c.tokenizer.vocab_size).done();
               })
      .section("model",
               [&](const json& v, const std::string& path) {
                 ObjectReader(v, path)
                     .field("pretrained", c.model.pretrained)
                     .field("lora_rank", c.model.lora_rank)
                     .field("hidden_size", c.model.hidden_size)
                     .field("num_layers", c.model.num_layers)
                     .field("num_heads", c.model.num_heads)
                     .field("ffn_dim", c.model.ffn_dim)
                     .field("max_positions", c.model.max_positions)
                     .field("dropout", c.model.dropout)
                     .done();
               })
      .section("palette",
               [&](const json& v, const std::string& path) {
                 ObjectReader(v, path)
                     .field("palette_size", c.palette.palette_size)
                     .field("attribute_token_budget", c.palette.attribute_token_budget)
                     .field("answer_token_budget", c.palette.answer_token_budget)
                     .field("gamma", c.palette.gamma)
                     .field("alpha_intra", c.palette.alpha_intra)
                     .field("alpha_inter", c.palette.alpha_inter)
                     .field("contrastive", c.palette.contrastive)
                     .field("learning_rate", c.palette.learning_rate)
                     .field("batch_size", c.palette.batch_size)
                     .field("epochs", c.palette.epochs)
                     .field("max_steps", c.palette.max_steps)
                     .field("holdout_fraction", c.palette.holdout_fraction)
                     .field("grad_clip", c.palette.grad_clip)
                     .field("seed", c.palette.seed)
                     .done();
               })
      .section("quantize",
               [&](const json& v, const std::string& path) {
                 ObjectReader(v, path)
                     .field("pca_dim", c.quantize.pca_dim)
                     .field("num_codes", c.quantize.num_codes)
                     .field("iterations", c.quantize.iterations)
                     .field("restarts", c.quantize.restarts)
                     .field("baseline_levels", c.quantize.baseline_levels)
                     .field("rqvae_max_epochs", c.quantize.rqvae_max_epochs)
                     .field("seed", c.quantize.seed)
                     .done();
               })
      .section("sequences",
               [&](const json& v, const std::string& path) {
                 ObjectReader(v, path)
                     .field("protocol", c.sequences.protocol)
                     .section("filter", nested(c.sequences.filter))
                     .section("holdout", nested(c.sequences.holdout))
                     .field("train_examples", c.sequences.train_examples)
                     .field("user_order_seed", c.sequences.user_order_seed)
                     .done();
               })
      .section("recommend",
               [&](const json& v, const std::string& path) {
                 ObjectReader(v, path)
                     .field("tokenizers", c.recommend.tokenizers)
                     .section("model", nested(c.recommend.model))
                     .field("batch_size", c.recommend.batch_size)
                     .field("learning_rate", c.recommend.learning_rate)
                     .field("epochs", c.recommend.epochs)
                     .field("patience", c.recommend.patience)
                     .field("loss_on_history", c.recommend.loss_on_history)
                     .field("seed", c.recommend.seed)
                     .field("baselines", c.recommend.baselines)
                     .section("sasrec", nested(c.recommend.sasrec))
                     .field("sasrec_epochs", c.recommend.sasrec_epochs)
                     .field("sasrec_batch_size", c.recommend.sasrec_batch_size)
                     .done();
               })
      .section("evaluate",
               [&](const json& v, const std::string& path) {
                 ObjectReader(v, path)
                     .field("beam_width", c.evaluate.beam_width)
                     .field("top_k", c.evaluate.top_k)
                     .field("ks", c.evaluate.ks)
                     .field("exact", c.evaluate.exact)
                     .field("exclude_history", c.evaluate.exclude_history)
                     .field("max_users", c.evaluate.max_users)
                     .done();
               })
      .field("threads", c.threads)
      .field("progress", c.progress)
      .done();
  check_one_of("sequences.protocol", c.sequences.protocol, {"leave_one_out", "user_holdout"});
  check_one_of("sequences.train_examples", c.sequences.train_examples, {"all_prefixes", "last_item"});
  for (const auto& t : c.recommend.tokenizers)
    check_one_of("recommend.tokenizers", t, {"lamia", "rq-vae", "residual-kmeans", "oracle", "random"});
  for (const auto& b : c.recommend.baselines)
    check_one_of("recommend.baselines", b, {"popularity", "transition", "sasrec-ce", "sasrec-bce"});
  auto positive = [](const char* key, std::int64_t v) {
    if (v < 1) throw ValueError(fmt::format("config: key '{}': must be >= 1, got {}", key, v));
  };
  positive("recommend.batch_size", c.recommend.batch_size);
  positive("recommend.sasrec_batch_size", c.recommend.sasrec_batch_size);
  positive("evaluate.beam_width", c.evaluate.beam_width);
  positive("evaluate.top_k", c.evaluate.top_k);
  for (auto k : c.evaluate.ks) positive("evaluate.ks", k);
  if (c.evaluate.max_users < 0) throw ValueError("config: key 'evaluate.max_users': must be >= 0");
  if (c.threads < 0) throw ValueError(fmt::format("config: key 'threads': must be >= 0, got {}", c.threads));
  out = std::move(c);
}

PipelineConfig load_pipeline_config(const std::filesystem::path& path) {
  const std::string text = read_file(path);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw ParseError({path.string(), 0, ""}, fmt::format("invalid JSON: {}", e.what()));
  }
  try {
    PipelineConfig c;
    from_json(j, c);
    return c;
  } catch (const ValueError& e) {
    throw ValueError(fmt::format("{}: {}", path.string(), e.what()));
  }
}

}  // namespace lamia
