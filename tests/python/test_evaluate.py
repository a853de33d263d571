"""pylamia's evaluate bindings: ranks, Recall/NDCG/MRR against hand-computed values and an independent
numpy computation, popularity groups, the popularity / transition baselines and evaluate_scorer."""
import math

import numpy as np
import pytest
import torch

import pylamia


def test_rank_of_target_ties_exclusions_and_errors():
    scores = torch.tensor([0.1, 0.5, 0.5, 0.2])
    assert pylamia.rank_of_target(scores, 1) == 1
    assert pylamia.rank_of_target(scores, 2) == 2  # a tie ranks the smaller index first
    assert pylamia.rank_of_target(scores, 2, [1]) == 1
    assert pylamia.rank_of_target(scores, 0, [1, 1, 2]) == 2  # duplicates allowed
    assert pylamia.rank_of_target(scores.double(), 3) == 3
    assert pylamia.rank_of_target(torch.tensor([float("-inf"), 0.0]), 0) == 2
    with pytest.raises(ValueError, match="NaN"):
        pylamia.rank_of_target(torch.tensor([0.0, float("nan")]), 0)
    with pytest.raises(ValueError):
        pylamia.rank_of_target(scores, 1, [1])  # the target itself excluded
    with pytest.raises(IndexError):
        pylamia.rank_of_target(scores, 4)
    with pytest.raises(IndexError):
        pylamia.rank_of_target(scores, 0, [7])
    with pytest.raises(ValueError, match="1-D"):
        pylamia.rank_of_target(scores.reshape(2, 2), 0)
    with pytest.raises(ValueError, match="floating"):
        pylamia.rank_of_target(torch.tensor([1, 2]), 0)
    assert pylamia.rank_in_list([4, 2, 9, 2], 2) == 2
    assert pylamia.rank_in_list([4, 2, 9], 5) == 0


def test_metrics_against_hand_computed_values():
    m = pylamia.RankingMetrics([1, 5])
    assert m.ks == [1, 5] and m.count == 0 and m.recall(1) == 0.0 and m.mrr() == 0.0
    for rank in (1, 3, 0):  # a hit at 1, a hit at 3, a miss
        m.add(rank)
    assert m.count == len(m) == 3
    assert m.recall(1) == pytest.approx(1 / 3)
    assert m.recall(5) == pytest.approx(2 / 3)
    assert m.ndcg(1) == pytest.approx(1 / 3)
    assert m.ndcg(5) == pytest.approx((1 + 1 / math.log2(4)) / 3)
    assert m.mrr() == pytest.approx((1 + 1 / 3) / 3)
    d = m.to_dict()
    assert d["users"] == 3 and d["recall@5"] == pytest.approx(2 / 3) and d["mrr"] == pytest.approx(4 / 9)
    assert set(d) == {"users", "recall@1", "ndcg@1", "recall@5", "ndcg@5", "mrr"}
    with pytest.raises(ValueError):
        m.recall(10)  # not a cutoff
    with pytest.raises(ValueError):
        m.add(-1)
    other = pylamia.RankingMetrics([1, 5])
    other.extend([2, 2])
    m.merge(other)
    assert m.count == 5 and m.recall(5) == pytest.approx(4 / 5)
    with pytest.raises(ValueError):
        m.merge(pylamia.RankingMetrics([1, 10]))
    with pytest.raises(ValueError):
        pylamia.RankingMetrics([0])
    assert pylamia.RankingMetrics().ks == pylamia.default_cutoffs() == [1, 5, 10, 20]


def test_metrics_against_numpy_for_random_scores():
    rng = np.random.default_rng(7)
    B, n = 60, 50
    scores = rng.standard_normal((B, n)).astype(np.float32)
    scores[:, :5] = np.round(scores[:, :5])  # some ties
    targets = rng.integers(0, n, B)
    excluded = [[int(x) for x in rng.choice(n, 4, replace=False) if x != t] for t in targets]

    def numpy_rank(s, t, ex):
        keep = np.ones(n, bool)
        keep[ex] = False
        j = np.arange(n)
        return 1 + int(np.sum(keep & ((s > s[t]) | ((s == s[t]) & (j < t)))))

    want = [numpy_rank(scores[b], targets[b], excluded[b]) for b in range(B)]
    got = [pylamia.rank_of_target(torch.from_numpy(scores[b]), int(targets[b]), excluded[b]) for b in range(B)]
    assert got == want
    assert pylamia.ranks_of_targets(torch.from_numpy(scores), targets.tolist(), excluded) == want
    m = pylamia.RankingMetrics([1, 5, 10, 20])
    m.extend(want)
    r = np.array(want)
    for k in (1, 5, 10, 20):
        assert m.recall(k) == pytest.approx(np.mean(r <= k))
        assert m.ndcg(k) == pytest.approx(np.mean(np.where(r <= k, 1 / np.log2(r + 1), 0.0)))
    assert m.mrr() == pytest.approx(np.mean(1 / r))


def test_popularity_groups_and_report():
    groups = pylamia.popularity_groups([5, 0, 3, 3, 1], head_fraction=0.5)
    G = pylamia.PopularityGroup
    assert groups == [G.head, G.unseen, G.head, G.tail, G.tail]
    assert list(G.__members__) == ["head", "tail", "unseen"] and int(G.tail) == 1
    with pytest.raises(ValueError):
        pylamia.popularity_groups([1, 2], head_fraction=1.5)
    rep = pylamia.EvaluationReport([1, 5])
    rep.add(1, G.head)
    rep.add(3, "tail")
    rep.add(0, G.tail)
    assert rep.grouped and rep.overall.count == 3
    assert rep.group("tail").recall(5) == pytest.approx(0.5) and rep.group(G.head).recall(1) == 1.0
    d = rep.to_dict()
    assert d["users"] == 3 and set(d["groups"]) == {"head", "tail", "unseen"} and d["groups"]["unseen"]["users"] == 0
    plain = pylamia.EvaluationReport([1, 5])
    plain.add(2)
    assert "groups" not in plain.to_dict()
    with pytest.raises(ValueError, match="middle"):
        rep.group("middle")


def test_baselines_and_evaluate_scorer():
    sequences = [[0, 1, 2], [1, 2], [2]]
    pop = pylamia.PopularityRecommender().fit(sequences, 4)
    assert pop.counts == [1, 2, 3, 0] and pop.num_items == 4
    assert pop.score([3]).tolist() == [1.0, 2.0, 3.0, 0.0]
    trans = pylamia.TransitionRecommender()
    trans.fit(sequences, 4)
    assert trans.transitions(1, 2) == 2 and trans.transitions(0, 2) == 0
    assert trans.score([1]).tolist() == pytest.approx([0.25, 0.5, 2.75, 0.0])
    assert trans.score_many([[1], [0]]).shape == (2, 4)
    assert trans.popularity.counts == pop.counts
    with pytest.raises(ValueError):
        pylamia.PopularityRecommender().score([0])
    with pytest.raises(IndexError):
        trans.score([9])
    with pytest.raises(IndexError):
        pylamia.PopularityRecommender().fit([[0, 5]], 4)
    assert pylamia.count_items(sequences, 4) == [1, 2, 3, 0]

    test = [([0], 1), ([1], 2), ([3], 0)]
    rep = pylamia.evaluate_scorer(trans, test, 4, ks=[1, 5])
    # [0] -> 1 ranks first; [1] -> 2 first; [3] has no transition: popularity 2, 1, 0 (3 excluded) -> rank 3
    assert rep.overall.recall(1) == pytest.approx(2 / 3)
    assert rep.overall.mrr() == pytest.approx((1 + 1 + 1 / 3) / 3)
    by_lambda = pylamia.evaluate_scorer(lambda h: trans.score(h), test, 4, ks=[1, 5])
    assert by_lambda.to_dict() == rep.to_dict()
    by_numpy = pylamia.evaluate_scorer(lambda h: trans.score(h).numpy(), test, 4, ks=[1, 5])
    assert by_numpy.to_dict() == rep.to_dict()
    # A target that repeats a history item cannot be reached once the history is excluded (beam search never
    # returns it either): a miss by default, or the user is not evaluated.
    repeats = [([0, 2], 2), ([1], 2)]
    missed = pylamia.evaluate_scorer(trans, repeats, 4, ks=[1, 5])
    assert missed.overall.count == 2 and missed.overall.recall(5) == pytest.approx(0.5)
    dropped = pylamia.evaluate_scorer(trans, repeats, 4, ks=[1, 5], repeated_targets="drop")
    assert dropped.overall.count == 1 and dropped.overall.recall(1) == pytest.approx(1.0)
    kept = pylamia.evaluate_scorer(trans, repeats, 4, ks=[1, 5], exclude_history=False)
    assert kept.overall.count == 2 and kept.overall.recall(5) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="repeated_targets"):
        pylamia.evaluate_scorer(trans, repeats, 4, repeated_targets="keep")
    grouped = pylamia.evaluate_scorer(pop, test, 4, groups=pylamia.popularity_groups(pop.counts), exclude_history=False)
    assert grouped.grouped and grouped.overall.count == 3
    # SequenceExamples from a split work as well as pairs
    seqs = pylamia.build_sequences_from_table(["u", "u", "u", "v", "v", "v"], [0, 1, 2, 1, 2, 3], num_items=4)
    split = pylamia.split_leave_one_out(seqs)
    assert pylamia.evaluate_scorer(trans, split.test, 4).overall.count == len(split.test)
    assert pylamia.example_sequences(split.test)[0][-1] == split.test[0].target
    with pytest.raises(ValueError, match="3 scores for 4 items"):
        pylamia.evaluate_scorer(lambda h: [0.0, 1.0, 2.0], test, 4)
    with pytest.raises(TypeError):
        pylamia.evaluate_scorer(3, test, 4)
    with pytest.raises(IndexError):
        pylamia.evaluate_scorer(pop, [([0], 9)], 4)
