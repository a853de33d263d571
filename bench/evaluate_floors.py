#!/usr/bin/env python3
"""Independent reference for lamia's evaluation on an LC-Rec-format dataset (e.g. amazon-office):
popularity and first-order transition baselines under leave-one-out (counts from every interaction
before each user's test target), full ranking over the catalog with the user's history excluded, ties
broken by item index, in plain Python/numpy. DESIGN.md's floors: popularity R@10 0.0024, transition
R@10 0.093, N@10 0.058.

    /usr/bin/python3 bench/evaluate_floors.py ../shared/data/amazon-office [runs/office/metrics.json]

With a metrics.json from `lamia run`, it prints both side by side (they should agree exactly).
"""
import glob
import json
import math
import os
import sys

import numpy as np


def load(folder):
    inter = json.load(open(glob.glob(os.path.join(folder, "*.inter.json"))[0]))
    items = json.load(open(glob.glob(os.path.join(folder, "*.item.json"))[0]))
    # DESIGN.md: each user keeps the last 20 interactions (lamia's SequenceOptions::max_length).
    return {u: [int(i) for i in seq][-20:] for u, seq in inter.items()}, len(items)


def metrics(ranks, ks=(1, 5, 10, 20)):
    out = {"users": len(ranks)}
    for k in ks:
        out[f"recall@{k}"] = float(np.mean([1.0 if 0 < r <= k else 0.0 for r in ranks]))
        out[f"ndcg@{k}"] = float(np.mean([1.0 / math.log2(r + 1) if 0 < r <= k else 0.0 for r in ranks]))
    out["mrr"] = float(np.mean([1.0 / r if r > 0 else 0.0 for r in ranks]))
    return out


def rank(scores, target, excluded, repeated_rankable=False):
    """1-based rank with the history excluded; a target among the history items is a miss (0), as lamia's
    default; repeated_rankable=True keeps it rankable (the earlier rule, printed for comparison)."""
    if target in excluded and not repeated_rankable:
        return 0
    s = scores.astype(np.float64).copy()
    t = s[target]
    keep = np.ones(len(s), dtype=bool)
    for i in excluded:
        if i != target:
            keep[i] = False
    idx = np.arange(len(s))
    better = (s > t) | ((s == t) & (idx < target))
    return 1 + int(np.sum(better & keep))


def main():
    folder = sys.argv[1]
    seqs, n = load(folder)
    users = [u for u in seqs if len(seqs[u]) >= 3]  # leave-one-out: train part, valid and test targets
    # Counts from every interaction before the test target (training sequences + validation targets).
    train = {u: seqs[u][:-1] for u in users}
    pop = np.zeros(n)
    trans = {}
    for s in train.values():
        for i in s:
            pop[i] += 1
        for a, b in zip(s, s[1:]):
            trans.setdefault(a, {}).setdefault(b, 0)
            trans[a][b] += 1
    backoff = pop / (1.0 + pop.max())
    pr, tr, pr_kept, tr_kept = [], [], [], []
    repeats = 0
    for u in users:
        hist, target = seqs[u][:-1], seqs[u][-1]
        repeats += target in hist
        t = backoff.copy()
        for b, c in trans.get(hist[-1], {}).items():
            t[b] += c
        pr.append(rank(pop, target, hist))
        tr.append(rank(t, target, hist))
        pr_kept.append(rank(pop, target, hist, repeated_rankable=True))
        tr_kept.append(rank(t, target, hist, repeated_rankable=True))
    ref = {"popularity": metrics(pr), "transition": metrics(tr)}
    kept = {"popularity": metrics(pr_kept), "transition": metrics(tr_kept)}
    print(json.dumps({"users": len(users), "items": n, "test_targets_in_history": repeats, **ref}, indent=1))
    for name in kept:
        print(f"{name:<12} with a repeated target kept rankable (the earlier rule): R@10 {kept[name]['recall@10']:.6f} "
              f"N@10 {kept[name]['ndcg@10']:.6f}")
    if len(sys.argv) > 2:
        m = json.load(open(sys.argv[2]))["methods"]
        for name in ref:
            for key in ("recall@10", "ndcg@10", "mrr"):
                print(f"{name:<12} {key:<10} reference {ref[name][key]:.6f}  lamia {m[name]['exact'][key]:.6f}")


if __name__ == "__main__":
    main()
