"""pylamia.beam_search against the Python peers' decoding loop, in one run.

The peers (LC-Rec, MiniOneRec) decode semantic IDs with Hugging Face `generate(num_beams=W,
prefix_allowed_tokens_fn=fn)`. What that costs per step, written here in Python around the same
pylamia.Decoder (so that the model's forward is the same code on both sides):

  - histories expanded to every beam (B*W rows) before the first forward, as generate does;
  - per step one model call with a KV cache (pylamia.KVCache; generate's default), the next-token
    logits of the last position only (hidden @ tied embeddings; HF's OPT computes the LM head over
    every position of the first pass, so this is the cheaper variant), log_softmax over the vocabulary;
  - HF's PrefixConstrainedLogitsProcessor: a -inf mask [B*W, V], and for *every* beam a Python call
    fn(batch_id, sent) that takes the beam's tokens (sent.tolist()), walks a dict-of-dicts trie of the
    valid IDs (vocabulary tokens) along the generated part and returns the allowed tokens, whose
    mask entries are set to 0;
  - scores = beam scores + log-probabilities + mask, top-W over W*V per user, the chosen tokens
    appended, the cache reordered to the parent beams (KVCache.reorder).

pylamia.beam_search does the same search batched on the device trie (one forward per step, the
candidate selection as a few tensor operations, no per-beam Python).

Both get the same random model (make_recommender over a CodeVocabulary of random codes, L = 4,
k = 256, 2.4k items; hidden 64, 2 layers, 4 heads), the same 20-item histories, beam 20, top 10.
The top-10 item sets are compared per user before timing. Printed: users/s of each and the ratio.

    PYTHONPATH=<folder holding pylamia/> OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/recommend_decode.py \
        [--quick] [--threads N] [--users 64] [--beam 20] [--reps 3]

--threads 0 (the default) uses pylamia.default_thread_count(), bench_recommend_decode's count.
"""
import argparse
import time

import torch

import pylamia

L, K_CODES, N_ITEMS, HISTORY = 4, 256, 2420, 20


def random_setup(users, hidden, layers, seed=1):
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(K_CODES, (N_ITEMS, L), generator=g, dtype=torch.int32)
    table = pylamia.SemanticIdTable.from_codes(codes, [K_CODES] * L)
    vocab = pylamia.CodeVocabulary.for_table(table)
    model = pylamia.make_recommender(vocab, pylamia.RecommenderModelOptions(
        hidden_size=hidden, num_layers=layers, num_heads=4, dropout=0.0), seed=0)
    model.eval()
    histories = torch.randint(N_ITEMS, (users, HISTORY), generator=g).tolist()
    return table, vocab, model, histories


def dict_trie(table, vocab):
    """The valid IDs as nested dicts keyed by vocabulary token; the last level maps to the item."""
    root = {}
    ids = table.ids().tolist()  # n x (L + 1) codes
    for item, row in enumerate(ids):
        node = root
        for level, code in enumerate(row[:-1]):
            node = node.setdefault(vocab.token(level, code), {})
        node[vocab.token(len(row) - 1, row[-1])] = item
    return root


def peers_beam_search(model, trie, vocab, enc, W, K, timing=None):
    """The generate + prefix_allowed_tokens_fn loop (see the file comment). Returns [B, K] items;
    adds the seconds spent in the model (forward + LM head + log_softmax) to timing["forward"]."""
    V = vocab.size
    depth_total = vocab.num_levels
    B, T = enc.tokens.shape
    emb = dict(model.named_parameters())["embed_tokens.weight"]
    tokens = enc.tokens.repeat_interleave(W, 0)
    keys = enc.key_mask.repeat_interleave(W, 0)
    lengths = enc.lengths.repeat_interleave(W, 0)
    cache = pylamia.KVCache()

    def next_logp(input_ids, position_ids, mask):
        t0 = time.perf_counter()
        out = model.forward(input_ids, position_ids=position_ids, attention_mask=mask, compute_logits=False,
                            cache=cache)
        logp = torch.log_softmax(out.last_hidden_state[:, -1] @ emb.t(), -1)
        if timing is not None:
            timing["forward"] = timing.get("forward", 0.0) + time.perf_counter() - t0
        return logp

    def prefix_allowed_tokens_fn(batch_id, sent):
        node = trie
        for t in sent.tolist()[T:]:
            node = node.get(t)
            if node is None:  # a dead beam (-inf) can carry any token
                return []
        return list(node.keys())

    with torch.no_grad():
        logp = next_logp(tokens, enc.position_ids.repeat_interleave(W, 0), pylamia.causal_padded_mask(keys))
        beam = torch.full((B, W), float("-inf"))
        beam[:, 0] = 0  # one live beam per user at the start
        beam = beam.view(-1)
        seqs = tokens
        for depth in range(depth_total):
            mask = torch.full((B * W, V), float("-inf"))
            for batch_id, beam_sent in enumerate(seqs.view(B, W, -1)):
                for beam_id, sent in enumerate(beam_sent):
                    mask[batch_id * W + beam_id, prefix_allowed_tokens_fn(batch_id, sent)] = 0
            scores = (beam.unsqueeze(1) + logp + mask).view(B, W * V)
            best, idx = scores.topk(W, 1)
            parent = (idx // V + torch.arange(B).unsqueeze(1) * W).view(-1)
            token = (idx % V).view(-1)
            beam = best.view(-1)
            seqs = torch.cat([seqs[parent], token.unsqueeze(1)], 1)
            if depth + 1 == depth_total:
                break
            cache.reorder(parent)
            step_mask = torch.cat([keys, torch.ones(B * W, depth + 1, dtype=torch.bool)], 1).unsqueeze(1)
            logp = next_logp(token.unsqueeze(1), (lengths + depth).unsqueeze(1), step_mask)
    items = torch.full((B, K), -1, dtype=torch.long)
    gen = seqs[:, T:].tolist()
    bl = beam.tolist()
    for b in range(B):
        for k in range(K):
            if bl[b * W + k] > float("-inf"):
                node = trie
                for t in gen[b * W + k]:
                    node = node[t]
                items[b, k] = node
    return items


def same_sets(a, b):
    return sum(set(x) == set(y) for x, y in zip(a.tolist(), b.tolist())) / a.shape[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: pylamia.default_thread_count())")
    ap.add_argument("--users", type=int, default=64)
    ap.add_argument("--beam", type=int, default=20)
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--reps", type=int, default=0, help="timed repetitions of each (0: 3 with --quick, else 5)")
    args = ap.parse_args()
    pylamia.set_threads(args.threads)
    reps = args.reps or (3 if args.quick else 5)
    W, K = max(args.beam, args.top), args.top
    print(f"torch.get_num_threads() = {torch.get_num_threads()}  torch {torch.__version__}")
    print(pylamia.thread_summary())
    table, vocab, model, histories = random_setup(args.users, args.hidden, args.layers)
    dev_trie = pylamia.DeviceTrie(table, vocab)
    trie = dict_trie(table, vocab)
    enc = pylamia.encode_histories(table, vocab, histories, HISTORY)
    print(f"model: hidden {args.hidden}, layers {args.layers}, heads 4 (random); vocabulary {vocab.size}; "
          f"{table.num_items} items, L = {L}, k = {K_CODES} ({dev_trie.num_nodes} trie nodes); "
          f"{args.users} users x {HISTORY} items (T = {enc.tokens.shape[1]}); beam {W}, top {K}")

    def ours():
        return pylamia.beam_search(model, dev_trie, enc, beam_width=W, top_k=K, batch_size=args.users)["items"]

    peer_timing = {}

    def peers():
        return peers_beam_search(model, trie, vocab, enc, W, K, peer_timing)

    a, b = ours(), peers()  # warm up, and the check
    share = same_sets(a, b)
    print(f"same top-{K} item sets (pylamia.beam_search vs the Python loop): {100 * share:.1f}% of "
          f"{args.users} users")
    peer_timing.clear()
    times = {"ours": [], "peers": []}
    for _ in range(reps):  # interleaved, so that a change of load hits both
        for name, f in (("ours", ours), ("peers", peers)):
            t0 = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t0)
    for name, label in (("ours", "pylamia.beam_search (batched, device trie, KV cache)"),
                        ("peers", "Python loop (KV cache, per-beam dict-trie prefix fn + -inf mask)")):
        ups = [args.users / t for t in times[name]]
        print(f"  {label:<68} {max(ups):9.1f} users/s  (best of {reps}; all: "
              f"{', '.join(f'{u:.1f}' for u in ups)})")
    st = pylamia.beam_search(model, dev_trie, enc, beam_width=W, top_k=K, batch_size=args.users,
                             profile=True)["stats"]
    print(f"  pylamia.beam_search's time outside the model forward (profiled, {st['forward_calls']} forwards): "
          f"{100 * (1 - st['forward_seconds'] / st['total_seconds']):.0f}%")
    outside = 1 - peer_timing["forward"] / sum(times["peers"])
    print(f"  the Python loop's time outside the model calls (prefix fn, mask, top-k, bookkeeping): "
          f"{100 * outside:.0f}%")
    ratio = min(times["peers"]) / min(times["ours"])
    print(f"  ratio (pylamia / Python loop, users/s): {ratio:.1f}x at beam {W}  (goal >= 10x)")


if __name__ == "__main__":
    main()
