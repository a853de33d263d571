"""pylamia.train_recommender (the C++ training loop) against the same training written in Python, in one run.

Three loops train the same generative recommender (make_recommender over a CodeVocabulary of random
codes, L = 4, k = 256, 2.4k items; hidden 64, 2 layers, 4 heads, dropout 0) from the same initial
weights, on the same examples (20-item histories, so that every batch is [64, 105] tokens), for the
same number of steps, with Adam (lr 1e-3) and gradient clipping at norm 1:

  cpp      pylamia.train_recommender: batches, loss, backward, clipping and Adam all in C++
           (lamia/nn/training_loop.hpp), one Python call.
  py+lamia the pylamia.Decoder driven from Python: make_recommender_batch, recommender_loss,
           loss.backward(), torch.nn.utils.clip_grad_norm_, torch.optim.Adam over model.parameters().
  pytorch  the OPT architecture written in plain torch.nn (bench/nn_decoder.py's RefOPT layers), the
           weights copied from the pylamia model (its loss on the first batch is checked against
           recommender_loss), the input_ids/labels of make_recommender_batch, the loss over the
           labelled positions only, as recommender_loss does; clipping and torch.optim.Adam.

The two Python loops see the very same batches in the same order; train_recommender shuffles the
same examples with its own generator (mt19937_64), so its batches hold other examples of the same
shape and token count. loss_on_history is on (lamia run's default): every position is labelled.
Printed: training tokens/s (input tokens over the wall time of the steps; the best of --reps runs, the
three loops in rotating order) and the ratios.

    PYTHONPATH=<folder holding pylamia/> OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/recommend_train.py \
        [--quick] [--threads N] [--steps N] [--batch 64] [--reps N]

--threads 0 (the default) uses pylamia.default_thread_count().
"""
import argparse
import os
import random
import sys
import time

import torch
import torch.nn as nn

import pylamia

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nn_decoder import RefLayer  # noqa: E402  the OPT layer in plain torch.nn

L, K_CODES, N_ITEMS, HISTORY = 4, 256, 2420, 20


class PlainOPT(nn.Module):
    """The recommender's decoder (pre-LN OPT, tied head, pad token 0) in plain torch.nn."""

    def __init__(self, V, D, layers, heads, ffn, max_positions, pad):
        super().__init__()
        self.embed_tokens = nn.Embedding(V, D, padding_idx=pad)
        self.embed_positions = nn.Embedding(max_positions + 2, D)
        self.layers = nn.ModuleList(RefLayer(D, heads, ffn, True) for _ in range(layers))
        self.final_layer_norm = nn.LayerNorm(D)

    def forward(self, ids, position_ids, mask):
        h = self.embed_tokens(ids) + self.embed_positions(position_ids + 2)
        m = mask.unsqueeze(1)  # [B, 1, T, T] over heads
        for layer in self.layers:
            h = layer(h, m)
        return self.final_layer_norm(h)

    def loss(self, batch):
        h = self.forward(batch["input_ids"], batch["position_ids"], batch["attention_mask"])
        labels = batch["labels"].reshape(-1)
        idx = (labels != -100).nonzero().view(-1)
        logits = h.reshape(-1, h.shape[-1]).index_select(0, idx) @ self.embed_tokens.weight.t()
        return nn.functional.cross_entropy(logits, labels.index_select(0, idx))


def setup(num_examples, hidden, layers, seed=1):
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(K_CODES, (N_ITEMS, L), generator=g, dtype=torch.int32)
    table = pylamia.SemanticIdTable.from_codes(codes, [K_CODES] * L)
    vocab = pylamia.CodeVocabulary.for_table(table)
    seqs = torch.randint(N_ITEMS, (num_examples, HISTORY + 1), generator=g).tolist()
    examples = [(s[:-1], s[-1]) for s in seqs]
    opts = pylamia.RecommenderModelOptions(hidden_size=hidden, num_layers=layers, num_heads=4, dropout=0.0)
    return table, vocab, examples, opts


def plain_copy(model, vocab, opts):
    o = model.options
    ffn = o.ffn_dim if o.ffn_dim > 0 else 4 * o.hidden_size
    ref = PlainOPT(vocab.size, o.hidden_size, o.num_layers, o.num_heads, ffn, o.max_position_embeddings,
                   vocab.PAD)
    with torch.no_grad():
        sd = dict(model.named_parameters())
        names = {k for k, _ in ref.named_parameters()}
        assert names == set(sd), f"parameter names differ: {sorted(names ^ set(sd))}"
        for k, p in ref.named_parameters():
            p.copy_(sd[k])
    return ref


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: pylamia.default_thread_count())")
    ap.add_argument("--steps", type=int, default=0, help="timed steps of each loop and rep (0: 10 with --quick, else 40)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--reps", type=int, default=0,
                    help="repetitions of the three loops, the best kept (0: 3)")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    args = ap.parse_args()
    pylamia.set_threads(args.threads)
    steps = args.steps or (10 if args.quick else 40)
    warm = 3
    reps = args.reps or 3
    print(f"torch.get_num_threads() = {torch.get_num_threads()}  torch {torch.__version__}")
    print(pylamia.thread_summary())
    B = args.batch
    table, vocab, examples, opts = setup(B * (steps + warm), args.hidden, args.layers)
    loh = True
    lr, clip = 1e-3, 1.0

    def fresh():
        return pylamia.make_recommender(vocab, opts, seed=0)

    # The Python loops' batches: one fixed shuffle of the examples, cut into batches of B.
    order = list(range(len(examples)))
    random.Random(0).shuffle(order)
    batches = [pylamia.make_recommender_batch(table, vocab, [examples[i] for i in order[s * B:(s + 1) * B]],
                                              HISTORY, loh) for s in range(steps + warm)]
    tokens_per_batch = batches[0]["tokens"]
    assert all(b["tokens"] == tokens_per_batch for b in batches)
    print(f"model: hidden {args.hidden}, layers {args.layers}, heads 4, dropout 0 (random init); vocabulary "
          f"{vocab.size}; {table.num_items} items, L = {L}, k = {K_CODES}; batch {B} x "
          f"{tuple(batches[0]['input_ids'].shape)[1]} tokens ({tokens_per_batch} tokens), loss_on_history "
          f"{loh}; {steps} timed steps after {warm} warm-up steps, best of {reps}; Adam lr {lr}, clip {clip}")

    # Check: the plain torch.nn model computes the same loss as recommender_loss.
    m0 = fresh()
    ref0 = plain_copy(m0, vocab, opts)
    with torch.no_grad():
        ours_loss = pylamia.recommender_loss(m0, batches[0])[0].item()
        ref_loss = ref0.loss(batches[0]).item()
    print(f"first-batch loss: recommender_loss {ours_loss:.6f}, plain torch.nn {ref_loss:.6f} "
          f"(|diff| {abs(ours_loss - ref_loss):.1e})")
    assert abs(ours_loss - ref_loss) < 1e-4

    def run_cpp():
        # A throwaway warm-up run, then the timed one on a fresh model.
        pylamia.train_recommender(fresh(), table, examples, None, batch_size=B, epochs=1, max_steps=warm,
                                  learning_rate=lr, grad_clip_norm=clip, loss_on_history=loh, log_every=0)
        model = fresh()
        t0 = time.perf_counter()
        r = pylamia.train_recommender(model, table, examples, None, batch_size=B, epochs=1, max_steps=steps,
                                      learning_rate=lr, grad_clip_norm=clip, loss_on_history=loh, log_every=0)
        wall = time.perf_counter() - t0
        assert r["steps"] == steps, r
        with torch.no_grad():
            final = pylamia.recommender_loss(model, batches[-1])[0].item()
        return wall, final, f"(the loop's own step-time figure: {r['tokens_per_second']:.0f} tok/s)"

    def python_loop(model_params, loss_fn, train, eval_mode):
        # The warm-up steps train the model too (it has taken steps + warm steps at the end).
        opt = torch.optim.Adam(model_params, lr=lr)
        train()
        t_start = None
        for s, b in enumerate(batches):
            if s == warm:
                t_start = time.perf_counter()
            opt.zero_grad()
            loss = loss_fn(b)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model_params, clip)
            opt.step()
        wall = time.perf_counter() - t_start
        eval_mode()
        with torch.no_grad():
            return wall, loss_fn(batches[-1]).item(), ""

    def run_py_lamia():
        model = fresh()
        return python_loop(model.parameters(), lambda b: pylamia.recommender_loss(model, b)[0],
                           lambda: model.train(), lambda: model.eval())

    def run_pytorch():
        ref = plain_copy(fresh(), vocab, opts)
        return python_loop(list(ref.parameters()), ref.loss, lambda: ref.train(), lambda: ref.eval())

    runs = [("cpp", run_cpp), ("py+lamia", run_py_lamia), ("pytorch", run_pytorch)]
    results = {}
    all_walls = {k: [] for k, _ in runs}
    for rep in range(reps):  # the order rotates, so that a change of load hits every loop
        for k, f in runs[rep % 3:] + runs[:rep % 3]:
            res = f()
            all_walls[k].append(res[0])
            if k not in results or res[0] < results[k][0]:
                results[k] = res

    labels = {"cpp": "pylamia.train_recommender (C++ loop)",
              "py+lamia": "pylamia.Decoder from Python + torch.optim.Adam",
              "pytorch": "plain torch.nn OPT + torch.optim.Adam"}
    print(f"{'loop':<50} {'tok/s':>9} {'s/step':>8} {'loss on the last batch':>24}")
    for k, (wall, final, note) in results.items():
        print(f"{labels[k]:<50} {steps * tokens_per_batch / wall:>9.0f} {wall / steps:>8.4f} {final:>24.4f} {note}")
        if reps > 1:
            print(f"{'':<50} all reps: {', '.join(f'{steps * tokens_per_batch / w:.0f}' for w in all_walls[k])} tok/s")
    c = results["cpp"][0]
    print(f"ratios (C++ loop tok/s / other): vs py+lamia {results['py+lamia'][0] / c:.2f}x, "
          f"vs pytorch {results['pytorch'][0] / c:.2f}x; py+lamia vs pytorch "
          f"{results['pytorch'][0] / results['py+lamia'][0]:.2f}x")
    print("(the last-batch losses of py+lamia and pytorch should agree closely: same batches, same start; the "
          "C++ loop's batches are another shuffle, and it has taken `steps` steps, the others steps + warm-up)")


if __name__ == "__main__":
    main()
