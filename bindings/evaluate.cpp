// pylamia: the evaluate component (ranking metrics, popularity groups, the non-neural baselines
// and evaluate_scorer). Scores cross as torch.Tensor (1-D float; converted to contiguous float32
// on the CPU); reports as bound objects with to_dict(). The baselines' loops release the GIL; a
// Python scorer runs with it.
#include "json_cast.hpp"
#include "registry.hpp"
#include "sequence_examples.hpp"

#include <lamia/core/errors.hpp>
#include <lamia/core/options.hpp>
#include <lamia/evaluate.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <pybind11/stl.h>
#include <torch/extension.h>

#include <cstring>
#include <string>
#include <vector>

namespace py = pybind11;
using namespace pybind11::literals;

namespace {

using lamia::ItemIndex;
using lamia::PopularityGroup;
using lamia::SequenceExample;
using lamia::python::to_python;

using lamia::python::examples_from_python;
using lamia::python::type_name;

// A 1-D float score vector as contiguous float32 on the CPU.
torch::Tensor score_vector(const torch::Tensor& scores, const char* what) {
  if (scores.dim() != 1) {
    throw lamia::ValueError(fmt::format("{}: scores must be 1-D (one per item), got shape [{}]", what,
                                        fmt::join(scores.sizes(), ", ")));
  }
  if (!scores.is_floating_point()) {
    throw lamia::ValueError(fmt::format("{}: scores must be floating point, got {}", what, c10::toString(scores.scalar_type())));
  }
  return scores.detach().to(torch::kCPU, torch::kFloat32).contiguous();
}

PopularityGroup group_of(const py::handle& g) {
  if (py::isinstance<PopularityGroup>(g)) return g.cast<PopularityGroup>();
  if (py::isinstance<py::str>(g)) {
    const auto s = g.cast<std::string>();
    for (auto v : {PopularityGroup::head, PopularityGroup::tail, PopularityGroup::unseen})
      if (s == lamia::to_string(v)) return v;
    throw lamia::ValueError(fmt::format("popularity group '{}' is unknown (head, tail, unseen)", s));
  }
  throw py::type_error("a popularity group must be a PopularityGroup or one of 'head', 'tail', 'unseen', got " +
                       type_name(g));
}

std::vector<std::int64_t> cutoffs(const std::optional<std::vector<std::int64_t>>& ks) {
  return ks ? *ks : lamia::default_cutoffs();
}

// score(history) of a baseline as a new [num_items] float32 tensor.
template <class R>
torch::Tensor baseline_scores(const R& r, const std::vector<ItemIndex>& history) {
  if (r.num_items() == 0) throw lamia::ValueError("score: the recommender is not fitted (call fit first)");
  auto out = torch::empty({r.num_items()}, torch::kFloat32);
  r.score(history, out.template data_ptr<float>());
  return out;
}

template <class R>
torch::Tensor baseline_scores_many(const R& r, const std::vector<std::vector<ItemIndex>>& histories) {
  if (r.num_items() == 0) throw lamia::ValueError("score_many: the recommender is not fitted (call fit first)");
  auto out = torch::empty({std::int64_t(histories.size()), r.num_items()}, torch::kFloat32);
  for (std::size_t b = 0; b < histories.size(); ++b) r.score(histories[b], out[std::int64_t(b)].template data_ptr<float>());
  return out;
}

// A Scorer that calls a Python callable (with the GIL held: evaluate_scorer keeps it).
lamia::Scorer python_scorer(const py::object& fn, std::int64_t num_items) {
  return [fn, num_items](const std::vector<ItemIndex>& history, float* out) {
    py::object r = fn(py::cast(history));
    torch::Tensor t;
    if (THPVariable_Check(r.ptr())) {
      t = r.cast<torch::Tensor>();
    } else {
      t = py::module_::import("torch").attr("as_tensor")(r, "dtype"_a = py::module_::import("torch").attr("float32")).cast<torch::Tensor>();
    }
    t = t.detach().reshape({-1});
    if (t.numel() != num_items) {
      throw lamia::ValueError(fmt::format("evaluate_scorer: the scorer returned {} scores for {} items", t.numel(), num_items));
    }
    t = t.to(torch::kCPU, torch::kFloat32).contiguous();
    std::memcpy(out, t.data_ptr<float>(), std::size_t(num_items) * sizeof(float));
  };
}

}  // namespace

LAMIA_REGISTER_BINDINGS(kOrderEvaluate, evaluate) {
  using lamia::EvaluationReport;
  using lamia::RankingMetrics;
  using Histories = std::vector<std::vector<ItemIndex>>;

  m.def(
      "rank_of_target",
      [](const torch::Tensor& scores, ItemIndex target, const std::vector<ItemIndex>& excluded) {
        auto s = score_vector(scores, "rank_of_target");
        py::gil_scoped_release release;
        return lamia::rank_of_target(s.data_ptr<float>(), s.numel(), target, excluded);
      },
      "scores"_a, "target"_a, "excluded"_a = std::vector<ItemIndex>{},
      "1-based rank of target among items 0..n-1 by descending score (ties: smaller index first); items in "
      "excluded are removed from the ranking. scores: 1-D float tensor (float32 is used). ValueError for NaN "
      "scores or an excluded target, IndexError for items out of range.");
  m.def(
      "ranks_of_targets",
      [](const torch::Tensor& scores, const std::vector<ItemIndex>& targets, std::optional<Histories> excluded) {
        if (scores.dim() != 2)
          throw lamia::ValueError(fmt::format("ranks_of_targets: scores must be [B, num_items], got shape [{}]",
                                              fmt::join(scores.sizes(), ", ")));
        if (scores.size(0) != std::int64_t(targets.size()))
          throw lamia::ValueError(fmt::format("ranks_of_targets: {} score rows but {} targets", scores.size(0), targets.size()));
        if (excluded && excluded->size() != targets.size())
          throw lamia::ValueError(fmt::format("ranks_of_targets: {} excluded lists for {} targets", excluded->size(), targets.size()));
        if (!scores.is_floating_point()) throw lamia::ValueError("ranks_of_targets: scores must be floating point");
        auto s = scores.detach().to(torch::kCPU, torch::kFloat32).contiguous();
        py::gil_scoped_release release;
        std::vector<std::int64_t> out(targets.size());
        const std::vector<ItemIndex> none;
        for (std::size_t b = 0; b < targets.size(); ++b)
          out[b] = lamia::rank_of_target(s.data_ptr<float>() + std::int64_t(b) * s.size(1), s.size(1), targets[b],
                                         excluded ? (*excluded)[b] : none);
        return out;
      },
      "scores"_a, "targets"_a, "excluded"_a = py::none(),
      "rank_of_target for each row of [B, num_items] scores (excluded: None or one list per row).");
  m.def("rank_in_list", &lamia::rank_in_list, "top_list"_a, "target"_a,
        "1-based position of target in top_list (first occurrence), 0 when absent (a miss).");
  m.def("default_cutoffs", &lamia::default_cutoffs, "The cutoffs reported by default: [1, 5, 10, 20].");

  py::class_<RankingMetrics>(m, "RankingMetrics", R"doc(
Recall@K (= hit@K), NDCG@K = 1/log2(rank + 1) for rank <= K, and MRR (0 for a miss) over users,
one target (one 1-based rank, 0 = miss) per user. Every mean is 0 while count is 0.)doc")
      .def(py::init([](const std::optional<std::vector<std::int64_t>>& ks) { return RankingMetrics(cutoffs(ks)); }),
           "ks"_a = py::none(), "ks: the cutoffs (default [1, 5, 10, 20]), each >= 1; duplicates removed, sorted.")
      .def("add", &RankingMetrics::add, "rank"_a, "Adds one user whose target has this 1-based rank (0: a miss).")
      .def(
          "extend",
          [](RankingMetrics& m, const std::vector<std::int64_t>& ranks) {
            for (auto r : ranks) m.add(r);
          },
          "ranks"_a, "Adds one user per rank.")
      .def("merge", &RankingMetrics::merge, "other"_a, "Adds the users of other (same cutoffs, else ValueError).")
      .def_property_readonly("count", &RankingMetrics::count, "Users added.")
      .def("__len__", &RankingMetrics::count)
      .def_property_readonly("ks", &RankingMetrics::ks, "The cutoffs, ascending.")
      .def("recall", &RankingMetrics::recall, "k"_a, "Mean hit@k; k must be one of ks (ValueError otherwise).")
      .def("ndcg", &RankingMetrics::ndcg, "k"_a, "Mean NDCG@k; k must be one of ks.")
      .def("mrr", &RankingMetrics::mrr, "Mean reciprocal rank (0 for a miss).")
      .def(
          "to_dict", [](const RankingMetrics& m) { return to_python(m.to_json()); },
          "{'users': n, 'recall@1': ..., 'ndcg@1': ..., ..., 'mrr': ...}")
      .def("__repr__", [](const RankingMetrics& m) { return "RankingMetrics(" + m.to_json().dump() + ")"; })
      .def("__copy__", [](const RankingMetrics& m) { return RankingMetrics(m); })
      .def("__deepcopy__", [](const RankingMetrics& m, py::dict) { return RankingMetrics(m); }, "memo"_a);

  py::enum_<PopularityGroup>(m, "PopularityGroup", "How popular an item was in training: head, tail or unseen.")
      .value("head", PopularityGroup::head, "among the most interacted-with seen items")
      .value("tail", PopularityGroup::tail, "seen in training, not head")
      .value("unseen", PopularityGroup::unseen, "never seen in training");
  m.def("popularity_groups", &lamia::popularity_groups, "train_counts"_a, "head_fraction"_a = 0.2,
        "One PopularityGroup per item from its training count: unseen when 0; of the seen items (by count "
        "descending, then index) the first ceil(head_fraction * seen) are head, the rest tail.");

  py::class_<EvaluationReport>(m, "EvaluationReport", "RankingMetrics overall and per popularity group of the target.")
      .def(py::init([](const std::optional<std::vector<std::int64_t>>& ks) { return EvaluationReport(cutoffs(ks)); }),
           "ks"_a = py::none())
      .def_property_readonly(
          "overall", [](EvaluationReport& r) -> RankingMetrics& { return r.overall; }, py::return_value_policy::reference_internal)
      .def(
          "group", [](EvaluationReport& r, const py::handle& g) -> RankingMetrics& { return r.groups[std::size_t(group_of(g))]; },
          "group"_a, py::return_value_policy::reference_internal, "The metrics of one group (a PopularityGroup or its name).")
      .def_readonly("grouped", &EvaluationReport::grouped, "True once a rank was added with a group.")
      .def(
          "add",
          [](EvaluationReport& r, std::int64_t rank, const py::object& group) {
            if (group.is_none()) r.add(rank);
            else r.add(rank, group_of(group));
          },
          "rank"_a, "group"_a = py::none(), "Adds one user to overall, and to its target's group when given.")
      .def("merge", &EvaluationReport::merge, "other"_a)
      .def(
          "to_dict", [](const EvaluationReport& r) { return to_python(r.to_json()); },
          "overall's to_dict() plus, when grouped, 'groups': {'head': {...}, 'tail': {...}, 'unseen': {...}}.")
      .def("__repr__", [](const EvaluationReport& r) { return "EvaluationReport(" + r.to_json().dump() + ")"; });

  m.def("example_sequences", &lamia::example_sequences, "examples"_a,
        "Each example's history followed by its target: the sequences the baselines fit on.");
  m.def("count_items", &lamia::count_items, "sequences"_a, "num_items"_a,
        "Occurrences of each item in sequences (IndexError naming the sequence of an item out of range).");

  py::class_<lamia::PopularityRecommender>(m, "PopularityRecommender", "Scores every item by its training count.")
      .def(py::init<>())
      .def(
          "fit",
          [](lamia::PopularityRecommender& r, const Histories& sequences, std::int64_t num_items) -> lamia::PopularityRecommender& {
            py::gil_scoped_release release;
            r.fit(sequences, num_items);
            return r;
          },
          "sequences"_a, "num_items"_a, py::return_value_policy::reference_internal,
          "Counts occurrences (sequences: lists of items, e.g. example_sequences(train)); returns self.")
      .def("score", &baseline_scores<lamia::PopularityRecommender>, "history"_a,
           "[num_items] float32 scores (the counts); ValueError before fit.")
      .def("score_many", &baseline_scores_many<lamia::PopularityRecommender>, "histories"_a,
           "[len(histories), num_items] float32 scores.")
      .def_property_readonly("num_items", &lamia::PopularityRecommender::num_items)
      .def_property_readonly("counts", &lamia::PopularityRecommender::counts);

  py::class_<lamia::TransitionRecommender>(m, "TransitionRecommender", R"doc(
First-order transition counts (last item -> next) plus a popularity back-off in [0, 1):
score(i) = transitions(history[-1] -> i) + popularity(i) / (1 + max popularity).)doc")
      .def(py::init<>())
      .def(
          "fit",
          [](lamia::TransitionRecommender& r, const Histories& sequences, std::int64_t num_items) -> lamia::TransitionRecommender& {
            py::gil_scoped_release release;
            r.fit(sequences, num_items);
            return r;
          },
          "sequences"_a, "num_items"_a, py::return_value_policy::reference_internal,
          "Counts popularity and transitions over consecutive pairs; returns self.")
      .def("score", &baseline_scores<lamia::TransitionRecommender>, "history"_a,
           "[num_items] float32 scores; ValueError before fit, IndexError for a last item out of range.")
      .def("score_many", &baseline_scores_many<lamia::TransitionRecommender>, "histories"_a,
           "[len(histories), num_items] float32 scores.")
      .def("transitions", &lamia::TransitionRecommender::transitions, "from_item"_a, "to_item"_a,
           "Times to_item directly followed from_item in training.")
      .def_property_readonly("num_items", &lamia::TransitionRecommender::num_items)
      .def_property_readonly("popularity", &lamia::TransitionRecommender::popularity, py::return_value_policy::reference_internal);

  m.def(
      "evaluate_scorer",
      [](const py::object& scorer, const py::object& test, std::int64_t num_items,
         const std::optional<std::vector<PopularityGroup>>& groups, bool exclude_history,
         const std::optional<std::vector<std::int64_t>>& ks, const std::string& repeated_targets) {
        const auto examples = examples_from_python(test, "evaluate_scorer");
        const auto rep = lamia::options::enum_from_string<lamia::RepeatedTargets>(repeated_targets,
                                                                                 "evaluate_scorer: repeated_targets");
        const auto g = groups ? *groups : std::vector<PopularityGroup>{};
        const auto k = cutoffs(ks);
        // The baselines' loops run without the GIL; a Python scorer needs it.
        const auto native = [&](const lamia::Scorer& s) {
          py::gil_scoped_release release;
          return lamia::evaluate_scorer(s, examples, num_items, g, exclude_history, k, rep);
        };
        if (py::isinstance<lamia::PopularityRecommender>(scorer))
          return native(scorer.cast<const lamia::PopularityRecommender&>().scorer());
        if (py::isinstance<lamia::TransitionRecommender>(scorer))
          return native(scorer.cast<const lamia::TransitionRecommender&>().scorer());
        if (!PyCallable_Check(scorer.ptr())) {
          throw py::type_error("evaluate_scorer: scorer must be a PopularityRecommender, a TransitionRecommender or a "
                               "callable history -> scores, got " + type_name(scorer));
        }
        return lamia::evaluate_scorer(python_scorer(scorer, num_items), examples, num_items, g, exclude_history, k, rep);
      },
      "scorer"_a, "test"_a, "num_items"_a, "groups"_a = py::none(), "exclude_history"_a = true, "ks"_a = py::none(),
      "repeated_targets"_a = "miss",
      "Ranks each test example's target over the full catalog. scorer: a PopularityRecommender, a "
      "TransitionRecommender or a callable(history: list[int]) -> num_items scores (tensor, array or list). "
      "test: SequenceExamples or (history, target) pairs. groups: one PopularityGroup per item (report per "
      "group) or None. exclude_history: history items leave the ranking; a target that repeats one "
      "of them is a miss (repeated_targets='miss') or is not evaluated ('drop'). "
      "Returns an EvaluationReport.");
}
