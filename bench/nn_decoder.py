"""pylamia's decoder against the same OPT written in plain PyTorch, in one run.

Prints forward and forward+backward tokens/s of both and their ratio (pylamia / PyTorch) for a tiny
model, a 4-layer d=256 model and OPT-350M's shape, plus achieved GFLOP/s as a fraction of the
float32 matmul peak measured here (the best over square sizes, as bench_nn_decoder does).

    PYTHONPATH=build-nn/pypkg /usr/bin/python3 bench/nn_decoder.py [--quick] [--cuda] [--threads N]

--threads 0 (the default) uses pylamia.default_thread_count(), the count bench_nn_decoder uses, so
that the two runs compare at the same thread setting.
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import pylamia


class RefAttention(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.h = h
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x, mask):
        B, T, D = x.shape
        hd = D // self.h
        q = self.q_proj(x) * hd ** -0.5
        k, v = self.k_proj(x), self.v_proj(x)
        q, k, v = (t.view(B, T, self.h, hd).transpose(1, 2) for t in (q, k, v))
        s = (q @ k.transpose(-1, -2)).masked_fill(~mask, torch.finfo(x.dtype).min)
        return self.out_proj((torch.softmax(s, -1) @ v).transpose(1, 2).reshape(B, T, D))


class RefLayer(nn.Module):
    def __init__(self, d, h, f, pre):
        super().__init__()
        self.pre = pre
        self.self_attn = RefAttention(d, h)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.fc1, self.fc2 = nn.Linear(d, f), nn.Linear(f, d)
        self.final_layer_norm = nn.LayerNorm(d)

    def forward(self, x, mask):
        h = self.self_attn(self.self_attn_layer_norm(x) if self.pre else x, mask) + x
        if not self.pre:
            h = self.self_attn_layer_norm(h)
        y = self.fc2(F.relu(self.fc1(self.final_layer_norm(h) if self.pre else h))) + h
        return y if self.pre else self.final_layer_norm(y)


class RefOPT(nn.Module):
    """The OPT decoder as Hugging Face computes it, parameter names without "model.decoder."."""

    def __init__(self, V, D, L, H, F_, E, pre):
        super().__init__()
        self.embed_tokens = nn.Embedding(V, E, padding_idx=1)
        self.embed_positions = nn.Embedding(2048 + 2, D)
        if E != D:
            self.project_in = nn.Linear(E, D, bias=False)
            self.project_out = nn.Linear(D, E, bias=False)
        self.layers = nn.ModuleList(RefLayer(D, H, F_, pre) for _ in range(L))
        if pre:
            self.final_layer_norm = nn.LayerNorm(D)
        self.pre, self.proj = pre, E != D

    def forward(self, ids):
        B, T = ids.shape
        x = self.embed_tokens(ids)
        if self.proj:
            x = self.project_in(x)
        h = x + self.embed_positions(torch.arange(T, device=ids.device) + 2)
        mask = torch.ones(T, T, dtype=torch.bool, device=ids.device).tril()
        for layer in self.layers:
            h = layer(h, mask)
        if self.pre:
            h = self.final_layer_norm(h)
        if self.proj:
            h = self.project_out(h)
        return h @ self.embed_tokens.weight.t()


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def time_it(iters, f, dev):
    f()
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(iters):
        f()
    sync(dev)
    return (time.perf_counter() - t0) / iters


def matmul_peak(dev):
    """Best float32 matmul GFLOP/s over square sizes (best of two timings each), the size, and all rates."""
    sizes = (1024, 2048, 4096, 8192) if dev.type == "cuda" else (512, 1024, 2048, 4096)
    budget = 2e13 if dev.type == "cuda" else 2e10  # flops per timing, as in bench/nn_decoder.cpp
    rates = {}
    with torch.no_grad():
        for n in sizes:
            a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
            fl = 2.0 * n ** 3
            iters = max(1, int(budget / fl))
            rates[n] = max(fl / time_it(iters, lambda: a @ b, dev) / 1e9 for _ in range(2))
    best = max(rates, key=rates.get)
    return rates[best], best, rates


def flops(V, D, L, F_, E, B, T):
    per_token = L * (2 * 4 * D * D + 2 * 2 * D * F_ + 2 * 2 * T * D) + 2 * E * V
    if E != D:
        per_token += 2 * 2 * E * D
    return per_token * B * T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cuda", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: pylamia.default_thread_count())")
    args = ap.parse_args()
    dev = torch.device("cuda" if args.cuda else "cpu")
    pylamia.set_threads(args.threads)  # the same count as bench_nn_decoder with the same --threads
    torch.manual_seed(0)
    peak, peak_n, rates = matmul_peak(dev)
    print(f"device {dev}  threads {torch.get_num_threads()}  float32 matmul peak {peak:.1f} GFLOP/s "
          f"(best over n x n matmuls, at n = {peak_n})  torch {torch.__version__}")
    print(pylamia.thread_summary())
    print("matmul GFLOP/s by n: " + ", ".join(f"{n}: {r:.1f}" for n, r in rates.items()))
    shapes = [
        ("tiny (V=1000 D=64 L=2)", (1000, 64, 2, 4, 256, 64, True), 8, 64, 20 if args.quick else 60),
        ("small (V=8192 D=256 L=4)", (8192, 256, 4, 4, 1024, 256, True), 8, 128, 8 if args.quick else 20),
        ("OPT-350M shape (post-LN, E=512)", (50272, 1024, 24, 16, 4096, 512, False), 8 if args.cuda else 1, 128,
         2 if args.quick else 4),
    ]
    print(f"{'shape (B x T)':<40} {'impl':<8} {'fwd tok/s':>10} {'of peak':>8} {'fwd+bwd tok/s':>14} {'of peak':>8}")
    for name, (V, D, L, H, F_, E, pre), B, T, iters in shapes:
        ours = pylamia.Decoder(V, D, L, H, ffn_dim=F_, word_embed_proj_dim=E, do_layer_norm_before=pre, dropout=0.0)
        ours.to(device=dev)
        ref = RefOPT(V, D, L, H, F_, E, pre).to(dev)
        with torch.no_grad():
            sd = dict(ours.named_parameters())
            for k, p in ref.named_parameters():
                p.copy_(sd[k])
        ids = torch.randint(V, (B, T), device=dev)
        with torch.no_grad():
            torch.testing.assert_close(ours(ids).logits, ref(ids), rtol=1e-3, atol=1e-3)
        fl = flops(V, D, L, F_, E, B, T)
        fwds = {"pylamia": lambda: ours(ids).logits, "pytorch": lambda: ref(ids)}

        def timed(impl, grad):
            if not grad:
                with torch.no_grad():
                    return time_it(1, fwds[impl], dev)
            return time_it(1, lambda: fwds[impl]().mean().backward(), dev)

        # The two sides alternate, the first one changing every round, so that a change of the machine's
        # load hits both alike (a first version timed one side after the other: two --quick runs of the
        # small shape's forward gave x0.80 and x0.92 where the interleaved rounds give x1.25).
        res = {impl: [0.0, 0.0] for impl in fwds}
        for r in range(iters):
            for impl in (("pylamia", "pytorch") if r % 2 == 0 else ("pytorch", "pylamia")):
                for j, grad in enumerate((False, True)):
                    res[impl][j] += timed(impl, grad) / iters
        for impl, (tf, tb) in res.items():
            print(f"{name + f' ({B}x{T})':<40} {impl:<8} {B * T / tf:>10.0f} {100 * fl / tf / 1e9 / peak:>7.0f}% "
                  f"{B * T / tb:>14.0f} {100 * 3 * fl / tb / 1e9 / peak:>7.0f}%")
        print(f"{'':<40} ratio    fwd x{res['pytorch'][0] / res['pylamia'][0]:.2f}  fwd+bwd x{res['pytorch'][1] / res['pylamia'][1]:.2f}  (pylamia speed / PyTorch speed)")


if __name__ == "__main__":
    main()
