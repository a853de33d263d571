#!/usr/bin/env python3
"""Python reference for bench/data_loaders.cpp: reads the same files with the json / csv
modules into the same shape (items with their text attributes, per-user sequences, sorted by
time where the loader sorts) and prints one JSON line: best seconds over --repeat runs, rows
(items + interactions) and the peak RSS of this process in KiB.

  python3 bench/data_loaders.py --format movielens --path ../shared/data/movielens-latest-small
  python3 bench/data_loaders.py --baseline      # the interpreter alone (peak RSS only)
"""
import argparse
import csv
import json
import resource
import time
from pathlib import Path


def load_movielens(d):
    items = {}
    with open(d / "movies.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            items[r["movieId"]] = [r["title"], r["genres"], ""]
    tags = {}
    if (d / "tags.csv").exists():
        with open(d / "tags.csv", newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                lst = tags.setdefault(r["movieId"], [])
                if r["tag"] and r["tag"] not in lst:
                    lst.append(r["tag"])
        for k, v in tags.items():
            items[k][2] = "|".join(v)
    users = {}
    with open(d / "ratings.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["movieId"] not in items:
                raise ValueError(f"unknown movie {r['movieId']}")
            users.setdefault(r["userId"], []).append((int(r["timestamp"]), r["movieId"], float(r["rating"])))
    for seq in users.values():
        seq.sort(key=lambda e: e[0])
    return items, users


def load_amazon_lcrec(d):
    item_file = next(d.glob("*.item.json"))
    inter_file = next(d.glob("*.inter.json"))
    with open(item_file, encoding="utf-8") as f:
        raw = json.load(f)
    items = {k: [v.get("title", ""), v.get("description", ""), v.get("brand", ""), v.get("categories", "")]
             for k, v in raw.items()}
    with open(inter_file, encoding="utf-8") as f:
        inter = json.load(f)
    users = {}
    for u, seq in inter.items():
        ids = [str(i) for i in seq]
        for i in ids:
            if i not in items:
                raise ValueError(f"unknown item {i}")
        users[u] = ids
    return items, users


def load_hm(d):
    items = {}
    with open(d / "articles.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            items[r["article_id"].zfill(10)] = [v for k, v in r.items() if k.endswith("_name") or k == "detail_desc"]
    users = {}
    with open(d / "transactions_train.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            a = r["article_id"].zfill(10)
            if a not in items:
                raise ValueError(f"unknown article {a}")
            users.setdefault(r["customer_id"], []).append((r["t_dat"], a))
    for seq in users.values():
        seq.sort(key=lambda e: e[0])
    return items, users


def load_mind(d):
    items = {}
    with open(d / "news.tsv", encoding="utf-8") as f:
        for line in f:
            c = line.rstrip("\n").split("\t")
            items[c[0]] = [c[3], c[4], c[1], c[2]]
    users = {}
    with open(d / "behaviors.tsv", encoding="utf-8") as f:
        for line in f:
            c = line.rstrip("\n").split("\t")
            t = time.mktime(time.strptime(c[2], "%m/%d/%Y %I:%M:%S %p"))
            seq = users.get(c[1])
            if seq is None:
                seq = users[c[1]] = [(0, n) for n in c[3].split()]
            seq.extend((t, tok[:-2]) for tok in c[4].split() if tok.endswith("-1"))
    for seq in users.values():
        seq.sort(key=lambda e: e[0])
    for seq in users.values():
        for _, n in seq:
            items.setdefault(n, ["", "", "", ""])
    return items, users


LOADERS = {"movielens": load_movielens, "amazon-lcrec": load_amazon_lcrec, "hm": load_hm, "mind": load_mind}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--format", choices=sorted(LOADERS))
    p.add_argument("--path", type=Path)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--baseline", action="store_true")
    a = p.parse_args()
    if a.baseline:
        print(json.dumps({"peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
        return
    best, rows = float("inf"), 0
    for _ in range(a.repeat):
        t = time.perf_counter()
        items, users = LOADERS[a.format](a.path)
        best = min(best, time.perf_counter() - t)
        rows = len(items) + sum(len(s) for s in users.values())
        del items, users
    print(json.dumps({"seconds": best, "rows": rows, "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


if __name__ == "__main__":
    main()
