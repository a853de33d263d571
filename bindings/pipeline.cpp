// pylamia.run_pipeline: what `lamia run` does, from Python, with the config as a dict.
#include "registry.hpp"

#include <lamia/pipeline/pipeline.hpp>

#include <pybind11/stl.h>

#include <iostream>

namespace py = pybind11;

namespace {

// nlohmann::json <-> Python through the json module: configs and results are small.
nlohmann::json to_json(const py::object& o) {
  auto dumps = py::module_::import("json").attr("dumps");
  return nlohmann::json::parse(dumps(o).cast<std::string>());
}
py::object to_python(const nlohmann::json& j) {
  return py::module_::import("json").attr("loads")(j.dump());
}

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
        return out;
      },
      py::arg("config") = py::none(), py::arg("out_dir") = "runs/default",
      "Runs the pipeline (dataset -> BPE -> palette encoder -> palettes -> LAMIA quantizer vs RQ-VAE and\n"
      "residual K-Means) into out_dir, as `lamia run` does. config: a dict with any of the keys of\n"
      "default_pipeline_config() (missing keys keep their defaults; unknown keys raise ValueError).\n"
      "Returns {'dataset', 'training', 'diagnostics'} as dicts; diagnostics is what diagnostics.json holds.");
}
