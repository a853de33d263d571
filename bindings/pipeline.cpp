// pylamia.run_pipeline: what `lamia run` does, from Python, with the config as a dict.
#include "json_cast.hpp"
#include "registry.hpp"

#include <lamia/pipeline/inspect.hpp>
#include <lamia/pipeline/pipeline.hpp>

#include <pybind11/stl.h>

#include <iostream>
#include <optional>
#include <utility>

namespace py = pybind11;

namespace {

// The one nlohmann::json <-> Python conversion of pylamia (bindings/json_cast.hpp).
using lamia::python::to_json;
using lamia::python::to_python;

}  // namespace

LAMIA_REGISTER_BINDINGS(kOrderPipeline, pipeline) {
  m.def(
      "default_pipeline_config",
      [] {
        nlohmann::json j;
        lamia::to_json(j, lamia::PipelineConfig{});
        return to_python(j);
      },
      "The configuration `lamia run` uses without --config, as a dict (docs/pipeline.md).");
  m.def(
      "run_pipeline",
      [](const py::object& config, const std::string& out_dir, std::vector<std::string> stages,
         std::string until, std::optional<std::pair<std::int64_t, std::int64_t>> shard, bool merge) {
        lamia::PipelineConfig c;
        if (!config.is_none()) lamia::from_json(to_json(config), c);
        lamia::PipelineRunOptions options;
        options.stages = std::move(stages);
        options.until = std::move(until);
        if (shard) options.shard = lamia::ShardSpec{shard->first, shard->second};
        options.merge_shards = merge;
        lamia::PipelineResult result;
        {
          py::gil_scoped_release release;
          result = lamia::run_pipeline(c, out_dir, std::cerr, options);
        }
        py::dict out;
        out["dataset"] = to_python(result.dataset);
        out["training"] = to_python(result.training);
        out["diagnostics"] = to_python(result.diagnostics);
        out["metrics"] = to_python(result.metrics);
        out["stages_run"] = result.stages_run;
        out["stages_skipped"] = result.stages_skipped;
        return out;
      },
      py::arg("config") = py::none(), py::arg("out_dir") = "runs/default", py::kw_only(),
      py::arg("stages") = std::vector<std::string>{}, py::arg("until") = "", py::arg("shard") = py::none(),
      py::arg("merge") = false,
      "Runs the pipeline's stages (dataset, tokenizer, palette, export, quantize, recommend, evaluate) into\n"
      "out_dir, as `lamia run` does; stages whose configuration and inputs are unchanged since the last run\n"
      "into out_dir are skipped (out_dir/manifest.json). config: a dict with any of the keys of\n"
      "default_pipeline_config() (missing keys keep their defaults; unknown keys raise ValueError).\n"
      "Returns {'dataset', 'training', 'diagnostics', 'metrics', 'stages_run', 'stages_skipped'};\n"
      "diagnostics and metrics are what diagnostics.json and metrics.json hold.\n"
      "stages: run only these stages, as a stage command does (e.g. ['quantize'], as `lamia quantize`):\n"
      "the stages before them must be complete and current for this config (ValueError naming the stage\n"
      "and the keys that differ otherwise), none after them runs. until: stop after this stage.\n"
      "shard=(i, n) with stages=['export'] or ['evaluate']: only the i-th of n contiguous parts, written under\n"
      "out_dir/shards/ or out_dir/eval_shards/ (the manifest is not changed), as `--shard i/n`; merge=True\n"
      "checks the n parts and writes the stage's artifacts from them, as `--merge` (docs/distributed.md).");
  m.def(
      "stage_commands",
      [] {
        py::dict out;
        for (const auto& c : lamia::stage_commands()) out[py::str(c.command)] = c.stages;
        return out;
      },
      "The stage commands of the `lamia` tool and the stages each runs, e.g. {'quantize': ['quantize'], ...}.");
  auto dir_arg = [](const py::object& dir) { return py::str(dir).cast<std::string>(); };
  m.def(
      "inspect_item",
      [dir_arg](const py::object& run_dir, const std::string& item) {
        nlohmann::json j;
        const auto dir = dir_arg(run_dir);
        {
          py::gil_scoped_release release;
          j = lamia::inspect_item(dir, item);
        }
        return to_python(j);
      },
      py::arg("run_dir"), py::arg("item"),
      "An item of a run folder: {'item', 'index', 'text': {attribute: value}, 'ids': {tokenizer: [tokens]}}\n"
      "(`lamia inspect DIR --item ID`).");
  m.def(
      "inspect_prefix",
      [dir_arg](const py::object& run_dir, const std::string& tokenizer, const std::vector<std::int64_t>& prefix,
                std::int64_t limit) {
        nlohmann::json j;
        const auto dir = dir_arg(run_dir);
        {
          py::gil_scoped_release release;
          j = lamia::inspect_prefix(dir, tokenizer, prefix, limit);
        }
        return to_python(j);
      },
      py::arg("run_dir"), py::arg("tokenizer"), py::arg("prefix"), py::arg("limit") = 20,
      "The items whose IDs under tokenizer start with prefix: {'tokenizer', 'prefix', 'count', 'items': [...]}\n"
      "(`lamia inspect DIR --prefix 3,17`).");
  m.def(
      "inspect_user",
      [dir_arg](const py::object& run_dir, const std::string& user, const std::string& tokenizer, std::int64_t top_k) {
        nlohmann::json j;
        const auto dir = dir_arg(run_dir);
        {
          py::gil_scoped_release release;
          j = lamia::inspect_user(dir, user, tokenizer, top_k);
        }
        return to_python(j);
      },
      py::arg("run_dir"), py::arg("user"), py::arg("tokenizer") = "", py::arg("top_k") = 10,
      "A user's history, held-out item and top-K recommendations with scores (summed log-probabilities)\n"
      "from a run's generative recommender: {'user', 'tokenizer', 'history', 'held_out', 'recommendations'}\n"
      "(`lamia inspect DIR --user ID`). tokenizer '': the first trained recommender.");
}
