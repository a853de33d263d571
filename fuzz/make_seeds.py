#!/usr/bin/env python3
"""Writes the seed corpora of lamia's fuzz targets: one folder per target under OUT.

    fuzz/make_seeds.py OUT [--shared ../shared/data] [--max-bytes 4096]

Seeds come from tests/data (every case of each format: the `ok` sample and the hostile ones)
and, when --shared names an existing folder, from small slices of the real datasets there
(read at run time, never copied into the repository). A target that reads several files gets
them in one input, joined by the file separator of fuzz/fuzz_util.hpp; seeds with the first
file only are written too. Seeds longer than --max-bytes are left out (libFuzzer would cut them).
Standard library only.
"""
import argparse
import gzip
import hashlib
import json
import pathlib
import sys

SEP = b"\n--lamia-fuzz-next-file--\n"  # fuzz/fuzz_util.hpp, kFileSeparator
ROOT = pathlib.Path(__file__).resolve().parent.parent
TEST_DATA = ROOT / "tests" / "data"

# target -> (tests/data folder, file patterns in the target's order; a pattern may be a glob)
DATASET_TARGETS = {
    "fuzz_mind": ("mind", ["news.tsv", "behaviors.tsv"]),
    "fuzz_amazon_lcrec": ("amazon-lcrec", ["*.item.json", "*.inter.json"]),
    "fuzz_amazon": ("amazon", ["meta_*", "reviews_*"]),
    "fuzz_hm": ("hm", ["articles.csv", "transactions_train.csv"]),
    "fuzz_movielens": ("movielens", ["movies.csv", "ratings.csv", "tags.csv"]),
    "fuzz_movielens:100k": ("movielens", ["u.item", "u.data", "u.genre"]),
    "fuzz_jsonl": ("jsonl", ["items.jsonl", "interactions.jsonl"]),
    "fuzz_csv": ("csv", ["items.*", "interactions.*"]),
}


class Corpus:
    def __init__(self, out: pathlib.Path, max_bytes: int):
        self.out, self.max_bytes = out, max_bytes
        self.counts, self.skipped = {}, 0

    def add(self, target: str, parts):
        data = SEP.join(parts)
        if not data:
            return
        if len(data) > self.max_bytes:
            self.skipped += 1
            return
        folder = self.out / target
        folder.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha1(data).hexdigest()
        path = folder / name
        if not path.exists():
            path.write_bytes(data)
            self.counts[target] = self.counts.get(target, 0) + 1

    def add_files(self, target: str, parts):
        """Adds all parts joined, and the first part alone."""
        while parts and parts[-1] is None:  # trailing optional files that are absent
            parts = parts[:-1]
        if not parts or any(p is None for p in parts):
            return
        self.add(target, parts)
        self.add(target, parts[:1])


def first(folder: pathlib.Path, pattern: str):
    found = sorted(folder.glob(pattern))
    return found[0].read_bytes() if found else None


def from_test_data(corpus: Corpus):
    for target, (fmt, patterns) in DATASET_TARGETS.items():
        target = target.split(":")[0]
        for case in sorted((TEST_DATA / fmt).iterdir()):
            if case.is_dir():
                corpus.add_files(target, [first(case, p) for p in patterns])


def mini_vocab(vocab: dict, merges: list, max_merges: int):
    """The first 260 tokens of a byte-level vocabulary (the bytes and a few specials) and the
    merges among them, in rank order, with each merged token added."""
    keep = dict(sorted(vocab.items(), key=lambda kv: kv[1])[:260])
    kept_merges = []
    next_id = max(keep.values()) + 1
    for a, b in merges:
        if len(kept_merges) >= max_merges:
            break
        if a in keep and b in keep:
            kept_merges.append((a, b))
            if a + b not in keep:
                keep[a + b] = vocab.get(a + b, next_id)
                next_id = max(next_id, keep[a + b]) + 1
    return keep, kept_merges


def tokenizer_seeds(corpus: Corpus):
    tok = TEST_DATA / "tokenizer"
    vocab = json.loads((tok / "opt-mini" / "vocab.json").read_text(encoding="utf-8"))
    merges = [tuple(l.split(" ")) for l in (tok / "opt-mini" / "merges.txt").read_text(encoding="utf-8").splitlines()
              if l and not l.startswith("#version")]
    smap = (tok / "opt-mini" / "special_tokens_map.json").read_bytes()
    config = (tok / "opt-mini" / "tokenizer_config.json").read_bytes()
    for n in (0, 8, 40):
        v, m = mini_vocab(vocab, merges, n)
        vj = json.dumps(v, ensure_ascii=False).encode()
        mt = ("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in m)).encode()
        corpus.add_files("fuzz_tokenizer_files", [vj, mt, smap, config])
        corpus.add("fuzz_tokenizer_files", [vj, mt])
        corpus.add("fuzz_tokenizer_files", [vj, mt, b"{}", b"{}", json.dumps({"<x>": max(v.values()) + 1}).encode()])
    fast = json.loads((tok / "opt-mini-fast" / "tokenizer.json").read_text(encoding="utf-8"))
    fmerges = [tuple(x.split(" ")) if isinstance(x, str) else tuple(x) for x in fast["model"]["merges"]]
    for n in (0, 8, 40):
        v, m = mini_vocab(fast["model"]["vocab"], fmerges, n)
        small = dict(fast)
        small["model"] = dict(fast["model"], vocab=v, merges=[f"{a} {b}" for a, b in m])
        small["added_tokens"] = [t for t in fast.get("added_tokens", []) if t.get("id", 1 << 30) < 260]
        tj = json.dumps(small, ensure_ascii=False).encode()
        corpus.add_files("fuzz_tokenizer_json", [tj, config, smap])
        corpus.add("fuzz_tokenizer_json", [tj])
        if n == 8:  # the same model with merges as pairs (the newer tokenizer.json form)
            small["model"] = dict(small["model"], merges=[[a, b] for a, b in m])
            corpus.add("fuzz_tokenizer_json", [json.dumps(small, ensure_ascii=False).encode()])


def manifest_seeds(corpus: Corpus):
    """Manifests as `lamia run` writes them (include/lamia/pipeline/manifest.hpp), and near misses."""
    art = {"path": "palettes.bin", "stage": "export", "format_version": 1, "size": 123,
           "checksum": "crc32:0123abcd", "config_hash": "fnv1a:0011223344556677",
           "inputs_hash": "fnv1a:8899aabbccddeeff", "lamia_version": "0.1.0"}
    stage = {"config_hash": "fnv1a:0011223344556677", "inputs_hash": "fnv1a:8899aabbccddeeff",
             "completed": True, "outputs": ["palettes"], "config": {"epochs": 3, "lr": 0.001, "names": ["a"]}}
    full = {"format": "lamia-manifest", "version": 1, "lamia_version": "0.1.0",
            "stages": {"export": stage, "quantize": dict(stage, completed=False, outputs=["table"])},
            "artifacts": {"palettes": art, "table": dict(art, path="sid/table.bin", stage="quantize", size=0)}}
    empty = {"format": "lamia-manifest", "version": 1, "lamia_version": "0.1.0", "stages": {}, "artifacts": {}}
    for doc in (full, empty, dict(full, version=2), {"format": 3},
                dict(full, artifacts={"x": dict(art, path="../x")})):
        corpus.add("fuzz_manifest", [json.dumps(doc, indent=2).encode()])
    no_config = dict(full, stages={"export": {k: v for k, v in stage.items() if k != "config"}})
    corpus.add("fuzz_manifest", [json.dumps(no_config).encode()])


def config_seeds(corpus: Corpus):
    """The pipeline configs of configs/ (fuzz_config also writes the built-in default itself)."""
    for path in sorted((ROOT / "configs").rglob("*.json")):
        corpus.add("fuzz_config", [path.read_bytes()])


def lines(path: pathlib.Path, n: int, skip_header=False):
    with open(path, "rb") as f:
        out = []
        for i, line in enumerate(f):
            if i >= n:
                break
            out.append(line)
    return out


def from_shared(corpus: Corpus, shared: pathlib.Path):
    """Small, consistent slices of the real datasets (items first, then interactions that use them)."""
    mind = shared / "mind-small-subset"
    if mind.is_dir():
        news = lines(mind / "news.tsv", 6)
        beh = [l[:400].rsplit(b" ", 1)[0] + b"\n" if len(l) > 400 else l for l in lines(mind / "behaviors.tsv", 4)]
        corpus.add_files("fuzz_mind", [b"".join(news), b"".join(beh)])
    hm = shared / "hm-sample"
    if hm.is_dir():
        arts = lines(hm / "articles.csv", 5)
        ids = {l.split(b",")[1] for l in arts[1:]}
        tx = lines(hm / "transactions_train.csv", 20000)
        keep = [tx[0]] + [l for l in tx[1:] if l.split(b",")[2] in ids][:8]
        corpus.add_files("fuzz_hm", [b"".join(arts), b"".join(keep)])
    ml = shared / "movielens-latest-small"
    if ml.is_dir():
        movies = lines(ml / "movies.csv", 30)
        ids = {l.split(b",")[0] for l in movies[1:]}
        ratings = lines(ml / "ratings.csv", 3000)
        keep = [ratings[0]] + [l for l in ratings[1:] if l.split(b",")[1] in ids][:30]
        tags = lines(ml / "tags.csv", 3000)
        keep_tags = [tags[0]] + [l for l in tags[1:] if l.split(b",")[1] in ids][:10]
        corpus.add_files("fuzz_movielens", [b"".join(movies), b"".join(keep), b"".join(keep_tags)])
    office = shared / "amazon-office"
    if office.is_dir():
        items = json.loads((office / "Office.item.json").read_text(encoding="utf-8"))
        inter = json.loads((office / "Office.inter.json").read_text(encoding="utf-8"))
        some = dict(list(items.items())[:4])
        users = {u: [i for i in seq if str(i) in some] for u, seq in list(inter.items())[:3000]}
        users = dict([(u, s) for u, s in users.items() if s][:5])
        corpus.add_files("fuzz_amazon_lcrec", [json.dumps(some, indent=1, ensure_ascii=False).encode(),
                                               json.dumps(users).encode()])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=pathlib.Path)
    ap.add_argument("--shared", type=pathlib.Path, default=None)
    ap.add_argument("--max-bytes", type=int, default=8192)
    args = ap.parse_args()
    corpus = Corpus(args.out, args.max_bytes)
    from_test_data(corpus)
    tokenizer_seeds(corpus)
    manifest_seeds(corpus)
    config_seeds(corpus)
    if args.shared is not None and args.shared.is_dir():
        from_shared(corpus, args.shared)
    # A gzipped variant of each raw Amazon seed's review part (zlib reads both the same way).
    for path in sorted((args.out / "fuzz_amazon").glob("*")):
        parts = path.read_bytes().split(SEP)
        if len(parts) == 2 and not parts[1].startswith(b"\x1f\x8b"):
            corpus.add("fuzz_amazon", [parts[0], gzip.compress(parts[1], mtime=0)])
    for target in sorted(corpus.counts):
        print(f"{target}: {corpus.counts[target]} seeds")
    if corpus.skipped:
        print(f"({corpus.skipped} seeds longer than {args.max_bytes} bytes left out)")


if __name__ == "__main__":
    sys.exit(main())
