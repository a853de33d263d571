#!/usr/bin/env python3
"""How much the old repeated-target rule favoured full rankings (docs/recommend.md, "Metrics and protocol"):
SASRec-CE trained on the default synthetic catalog's leave-one-out split (early stopping on validation), then
its Recall@10 on the first 1,000 test users under both rules, from the same scores:

    PYTHONPATH=build/pypkg /usr/bin/python3 scripts/research/repeated_targets.py

- miss (lamia's rule): history items leave the ranking; a target among them is a miss, as for beam search;
- rankable (the earlier rule): every history item except the target leaves the ranking.
"""
import torch

import pylamia


def main():
    torch.manual_seed(0)
    syn = pylamia.generate_synthetic()
    seqs = pylamia.build_sequences(syn.dataset)
    split = pylamia.split_leave_one_out(seqs)
    n = len(seqs.catalog)
    test = split.test[:1000]
    repeats = sum(e.target in set(e.history) for e in split.test)
    print(f"test targets that repeat a history item: {repeats} of {len(split.test)} ({repeats / len(split.test):.3f})")
    model = pylamia.SasRec(n, seed=2024)
    pylamia.train_sasrec(model, [list(e.history) + [e.target] for e in split.train], split.valid, epochs=30,
                         patience=3, seed=2024, log_every=0)
    scores = model.score([e.history for e in test])
    hits = {"miss": 0, "rankable": 0}
    for i, e in enumerate(test):
        for rule in hits:
            s = scores[i].clone()
            banned = [h for h in e.history if rule == "miss" or h != e.target]
            if banned:
                s[torch.tensor(banned)] = -float("inf")
            if e.target in e.history and rule == "miss":
                continue  # unreachable
            hits[rule] += int(e.target in s.topk(10).indices.tolist())
    for rule, h in hits.items():
        print(f"SASRec-CE R@10, rule {rule}: {h / len(test):.4f}")


if __name__ == "__main__":
    main()
