// pylamia.run_pipeline: what `lamia run` does, from Python, with the config as a dict.
#include "json_cast.hpp"
#include "registry.hpp"

#include <lamia/pipeline/pipeline.hpp>

#include <pybind11/stl.h>

#include <iostream>

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
      [](const py::object& config, const std::string& out_dir) {
        lamia::PipelineConfig c;
        if (!config.is_none()) lamia::from_json(to_json(config), c);
        lamia::PipelineResult result;
        {
          py::gil_scoped_release release;
          result = lamia::run_pipeline(c, out_dir, std::cerr);
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
      py::arg("config") = py::none(), py::arg("out_dir") = "runs/default",
      "Runs the pipeline's stages (dataset, tokenizer, palette, export, quantize, recommend, evaluate) into\n"
      "out_dir, as `lamia run` does; stages whose configuration and inputs are unchanged since the last run\n"
      "into out_dir are skipped (out_dir/manifest.json). config: a dict with any of the keys of\n"
      "default_pipeline_config() (missing keys keep their defaults; unknown keys raise ValueError).\n"
      "Returns {'dataset', 'training', 'diagnostics', 'metrics', 'stages_run', 'stages_skipped'};\n"
      "diagnostics and metrics are what diagnostics.json and metrics.json hold.");
}
