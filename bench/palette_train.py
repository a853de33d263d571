"""Palette encoder training step: pylamia (C++) against a plain PyTorch implementation of the same
step (same model, same weights, same batches), in the same run.

    PYTHONPATH=<dir with pylamia> python3 bench/palette_train.py [--items N] [--steps N] [--batch N] [--threads N]
        [--profile N [--by-shape]] [--keep-freed-memory]

--threads 0 (the default) uses pylamia.default_thread_count(), as bench_palette_train does, so that
the C++ and Python runs compare at the same thread count.

The PyTorch model is an OPT decoder (pre-LN, learned positions with OPT's offset 2, ReLU FFN, tied
LM head) written here from scratch; the step is the fast path: pass 1 on [content; LaP] per item,
pass 2 on [LdP; task] per sample with the palettes as LdP inputs, cross-entropy on answer tokens and
eos, intra + inter hinge losses (mean), Adam, gradient clipping. Before timing, the two
implementations are checked to give the same loss on the same weights.

The two steps alternate (pylamia step i, PyTorch step i, and the other order on odd steps), so that a
change of machine load, or the growth of the process's heap, hits both alike; besides wall time each side's process CPU time and minor page faults are summed. --profile N:
after the timed steps, the top N operators of one more step of each side by self CPU time
(torch.autograd.profiler, which sees the ATen operators pylamia's C++ code calls as well); --by-shape
groups them by input shapes too.
"""
import argparse
import math
import os
import resource
import time

import torch
import torch.nn.functional as F
from torch import nn

import pylamia


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads, self.dh = heads, d // heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x, mask):
        B, T, D = x.shape
        q = (self.q_proj(x) * self.dh ** -0.5).view(B, T, self.heads, self.dh).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.heads, self.dh).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.heads, self.dh).transpose(1, 2)
        m = mask.unsqueeze(1)
        s = (q @ k.transpose(-1, -2)).masked_fill(~m, torch.finfo(q.dtype).min)
        p = torch.softmax(s, -1) * m  # rows with no allowed key give 0
        return self.out_proj((p @ v).transpose(1, 2).reshape(B, T, D))


class Layer(nn.Module):
    def __init__(self, d, heads, ffn):
        super().__init__()
        self.self_attn = Attention(d, heads)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.fc1, self.fc2 = nn.Linear(d, ffn), nn.Linear(ffn, d)
        self.final_layer_norm = nn.LayerNorm(d)

    def forward(self, h, mask):
        h = h + self.self_attn(self.self_attn_layer_norm(h), mask)
        return h + self.fc2(F.relu(self.fc1(self.final_layer_norm(h))))


class Decoder(nn.Module):
    def __init__(self, vocab, d, layers, heads, ffn, max_pos):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, d)
        self.embed_positions = nn.Embedding(max_pos + 2, d)
        self.layers = nn.ModuleList(Layer(d, heads, ffn) for _ in range(layers))
        self.final_layer_norm = nn.LayerNorm(d)

    def forward(self, ids, pos, mask, embeds=None, embeds_mask=None):
        x = self.embed_tokens(ids)
        if embeds is not None:
            x = torch.where(embeds_mask.unsqueeze(-1), embeds, x)
        h = x + self.embed_positions(pos + 2)
        for layer in self.layers:
            h = layer(h, mask)
        return self.final_layer_norm(h)


def attention_mask(block_types):
    """The hierarchical mask, written from the DESIGN.md table."""
    T = block_types.shape[1]
    q, k = block_types.unsqueeze(2), block_types.unsqueeze(1)
    causal = torch.ones(T, T, dtype=torch.bool).tril().unsqueeze(0)
    same = (q == k) & causal & (q != 0)
    return same | ((q == 2) & (k == 1)) | ((q == 4) & (k == 3))


def hinge(sim, alpha):
    n = sim.shape[1]
    off = ~torch.eye(n, dtype=torch.bool)
    pairs = sim.shape[0] * n * (n - 1)
    return (torch.relu(sim - alpha) ** 2 * off).sum() / pairs if pairs else sim.sum() * 0


def torch_step_loss(model, b, L):
    enc, dec = b["encode"], b["decode"]
    h1 = model(enc["input_ids"], enc["position_ids"], attention_mask(enc["block_types"]))
    idx = b["encode_lap_index"].unsqueeze(-1).expand(-1, -1, h1.shape[-1])
    palettes = h1.gather(1, idx)
    per_sample = palettes.index_select(0, b["sample_item_row"])
    B, T = dec["input_ids"].shape
    embeds = torch.cat([per_sample, per_sample.new_zeros(B, T - L, per_sample.shape[-1])], 1)
    h2 = model(dec["input_ids"], dec["position_ids"], attention_mask(dec["block_types"]), embeds,
               dec["block_types"] == 3)
    labels = dec["labels"].reshape(-1)
    keep = labels != -100
    logits = h2.reshape(-1, h2.shape[-1])[keep] @ model.embed_tokens.weight.t()
    gen = F.cross_entropy(logits, labels[keep])
    p = F.normalize(palettes, dim=-1)
    intra = hinge(p @ p.transpose(1, 2), 0.1)
    pt = p.transpose(0, 1)
    inter = hinge(pt @ pt.transpose(1, 2), 0.25)
    return gen + 0.1 * (intra + inter)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: pylamia.default_thread_count())")
    ap.add_argument("--profile", type=int, default=0, help="print the top N operators of one step of each side")
    ap.add_argument("--by-shape", action="store_true", help="--profile: group the operators by input shapes too")
    ap.add_argument("--keep-freed-memory", action="store_true",
                    help="pylamia.keep_freed_memory() first, as the lamia tool does (both sides share the process)")
    args = ap.parse_args()
    if args.keep_freed_memory:
        pylamia.keep_freed_memory()
    pylamia.set_threads(args.threads)

    catalog = pylamia.generate_synthetic(num_items=args.items, num_users=0).dataset.catalog
    enc = pylamia.PaletteEncoder.from_scratch(catalog, 2, palette_size=4, dropout=0.0)  # 4 layers, d = 256
    L = enc.palette_size
    dec_opts = enc.decoder.options
    trainer = pylamia.PaletteTrainer(enc, batch_size=args.batch, validation_fraction=0, log_every=0)
    batches = trainer.epoch_batches(0)[: args.steps + 1]
    collated = [enc.collate(b) for b in batches]

    model = Decoder(dec_opts.vocab_size, dec_opts.hidden_size, dec_opts.num_layers, dec_opts.num_heads,
                    dec_opts.ffn_dim or 4 * dec_opts.hidden_size, dec_opts.max_position_embeddings)
    state = {k[len("decoder."):]: v.detach().clone() for k, v in enc.named_parameters().items()}
    model.load_state_dict(state, strict=True)
    with torch.no_grad():
        ours = enc.forward(batches[0])["loss"].item()
        theirs = torch_step_loss(model, collated[0], L).item()
    print(f"palette bench (python): {len(catalog)} items, batch {args.batch}, {torch.get_num_threads()} torch threads; "
          f"same weights, first-batch loss pylamia {ours:.6f} / pytorch {theirs:.6f}")
    print(pylamia.thread_summary())
    # Both sides share the process's thread pools, which decide the absolute speed (docs/palette.md, "Session 13").
    print(f"{pylamia.blas_thread_summary()}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')} (this bench calls forward/backward "
          f"directly: OpenBLAS keeps its count)")
    assert math.isclose(ours, theirs, rel_tol=1e-4), "the PyTorch reference does not compute the same loss"

    enc.train()
    opt_c = torch.optim.Adam(enc.parameters(), lr=1e-4)

    def step_pylamia(i, b):
        out = enc.forward(b)
        opt_c.zero_grad()
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(enc.parameters(), 1.0)
        opt_c.step()

    opt_p = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step_torch(i, b):
        # Collating is part of the step on both sides: pylamia builds its batch inside forward().
        c = enc.collate(b)
        loss = torch_step_loss(model, c, L)
        opt_p.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt_p.step()

    sides = {"pylamia": step_pylamia, "PyTorch": step_torch}
    totals = {name: {"s": 0.0, "cpu": 0.0, "minflt": 0, "tok": 0} for name in sides}
    for i, b in enumerate(batches):
        # Interleaved, and the side that goes first alternates: the first step of a pair to need more
        # memory than the process holds pays the page faults of growing it.
        for name, step in (list(sides.items()) if i % 2 == 0 else list(sides.items())[::-1]):
            r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            step(i, b)
            dt, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
            if i > 0:  # first batch: warm-up
                t = totals[name]
                t["s"] += dt
                t["cpu"] += r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
                t["minflt"] += r1.ru_minflt - r0.ru_minflt
                t["tok"] += collated[i]["num_tokens"]
    n = len(batches) - 1
    for name, t in totals.items():
        print(f"{name + ' fast path:':<19} {t['tok'] / t['s']:9.0f} tok/s  {t['s'] / n:7.3f} s/step  CPU {t['cpu'] / n:7.3f} s/step "
              f"({t['tok'] / t['cpu']:9.0f} tok/CPU-s)  {t['minflt'] / n:8.0f} minor faults/step")
    c, p = totals["pylamia"], totals["PyTorch"]
    print(f"pylamia / PyTorch: {(c['tok'] / c['s']) / (p['tok'] / p['s']):.2f}x tokens/s (wall), "
          f"{(c['tok'] / c['cpu']) / (p['tok'] / p['cpu']):.2f}x tokens per CPU second")
    if args.profile > 0:
        b = batches[1] if len(batches) > 1 else batches[0]
        for name, step in sides.items():
            with torch.autograd.profiler.profile(record_shapes=args.by_shape) as prof:
                step(1, b)
            print(f"profile of one {name} step (top {args.profile} by self CPU time):")
            print(prof.key_averages(group_by_input_shape=args.by_shape).table(sort_by="self_cpu_time_total",
                                                                              row_limit=args.profile))


if __name__ == "__main__":
    main()
