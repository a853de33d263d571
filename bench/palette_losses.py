"""What the pipeline's default palette losses cost per training step, against the paper's losses
(issue #11): task routing one_position + batch-centred intra loss + decorrelation 0.003, on the
pipeline's default data and model (synthetic catalog in the aspect layout, r = 1, 2 layers, d = 128,
FFN 512, batch 64), steps of the two settings interleaved on the same batches; then the loss
functions alone (forward + backward) on palettes of one batch's shape, and with --profile N the top
N operators of one step of each setting by self CPU time.

    PYTHONPATH=<dir with pylamia> python3 bench/palette_losses.py [--items N] [--steps N] [--threads N] [--profile N]
"""
import argparse
import resource
import time

import torch

import pylamia


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: pylamia.default_thread_count())")
    ap.add_argument("--profile", type=int, default=0)
    args = ap.parse_args()
    pylamia.set_threads(args.threads)
    catalog = pylamia.generate_synthetic(num_items=args.items, num_users=0,
                                         attribute_layout="aspect_per_attribute").dataset.catalog
    model = dict(hidden_size=128, num_layers=2, num_heads=4, ffn_dim=512, dropout=0.0, max_position_embeddings=512,
                 seed=2024)
    common = dict(palette_size=4, attribute_token_budget=48, answer_token_budget=24)
    settings = {
        "paper": dict(),
        "pipeline default": dict(task_routing="one_position", intra_centring="batch", decorrelation_weight=0.003),
    }
    encs = {k: pylamia.PaletteEncoder.from_scratch(catalog, 1, **common, **model, **v) for k, v in settings.items()}
    batches = pylamia.PaletteTrainer(encs["paper"], batch_size=64, validation_fraction=0,
                                     log_every=0).epoch_batches(0)[: args.steps + 1]
    opts = {}
    for k, e in encs.items():
        e.train()
        opts[k] = torch.optim.Adam(e.parameters(), lr=1e-3)

    def step(k, b):
        e = encs[k]
        out = e.forward(b)
        opts[k].zero_grad()
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(e.parameters(), 1.0)
        opts[k].step()

    totals = {k: [0.0, 0.0] for k in encs}
    for i, b in enumerate(batches):
        for k in encs:  # interleaved
            c0, t0 = cpu_seconds(), time.perf_counter()
            step(k, b)
            if i > 0:  # first batch: warm-up
                totals[k][0] += time.perf_counter() - t0
                totals[k][1] += cpu_seconds() - c0
    n = len(batches) - 1
    print(f"palette losses bench: {len(catalog)} items, batch 64, {torch.get_num_threads()} torch threads, {n} steps each")
    for k, (w, c) in totals.items():
        print(f"{k:<17} {w / n * 1e3:7.0f} ms/step wall  {c / n * 1e3:7.0f} ms/step CPU")

    items = len(encs["paper"].collate(batches[1])["items"])
    p = torch.randn(items, 4, encs["paper"].decoder.options.hidden_size, requires_grad=True)

    def cost(f, reps=50):
        c0 = cpu_seconds()
        for _ in range(reps):
            f().backward()
        return (cpu_seconds() - c0) / reps * 1e3

    print(f"loss functions alone on palettes {list(p.shape)}, forward + backward, CPU ms: "
          f"intra raw {cost(lambda: pylamia.intra_palette_loss(p, 0.1)):.2f}, "
          f"intra centred {cost(lambda: pylamia.intra_palette_loss(p, 0.1, centring='batch')):.2f}, "
          f"inter {cost(lambda: pylamia.inter_palette_loss(p, 0.25)):.2f}, "
          f"decorrelation {cost(lambda: pylamia.decorrelation_loss(p)):.2f}")
    if args.profile > 0:
        for k in encs:
            with torch.autograd.profiler.profile() as prof:
                step(k, batches[1])
            print(f"profile of one step, {k} (top {args.profile} by self CPU time):")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.profile))


if __name__ == "__main__":
    main()
