// The stages of `lamia run`, in pipeline order (each is defined in its own file here).
#include <lamia/pipeline/stage.hpp>

namespace lamia {

std::unique_ptr<Stage> make_dataset_stage();
std::unique_ptr<Stage> make_tokenizer_stage();
std::unique_ptr<Stage> make_palette_stage();
std::unique_ptr<Stage> make_export_stage();
std::unique_ptr<Stage> make_quantize_stage();
std::unique_ptr<Stage> make_recommend_stage();
std::unique_ptr<Stage> make_evaluate_stage();

std::vector<std::unique_ptr<Stage>> pipeline_stages() {
  std::vector<std::unique_ptr<Stage>> stages;
  stages.push_back(make_dataset_stage());
  stages.push_back(make_tokenizer_stage());
  stages.push_back(make_palette_stage());
  stages.push_back(make_export_stage());
  stages.push_back(make_quantize_stage());
  stages.push_back(make_recommend_stage());
  stages.push_back(make_evaluate_stage());
  return stages;
}

}  // namespace lamia
