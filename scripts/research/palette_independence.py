#!/usr/bin/env python3
"""Issue #11's measurements on a `lamia run` folder (made with `--until quantize` or a full run), each with
its chance level, printed as one markdown table row per run plus the controls:

    PYTHONPATH=build/pypkg /usr/bin/python3 scripts/research/palette_independence.py runs/a [runs/b ...]

Per run: LAMIA's quantized IDs (the pipeline's quantizer settings, from the folder's config.json):
collision rate, mean adjusted mutual information (AMI, sklearn's definition; 0 = what independent
partitions of the same sizes give) between positions, each position's best aspect by AMI, and the palette
diagnostics of diagnostics.json (cross-position ridge R^2, probe accuracy against its chance level, norm
share of the per-position mean, centred intra cosine). Controls, on the same items:
- copies: position 0 copied L times, each copy quantized with its own K-Means seed: the AMI that K-Means
  seeds alone leave between identical information (E1);
- random: uniform random codes of the same sizes: AMI about 0;
- forced collisions: the share of items whose aspect values another item shares (a perfect aspect
  tokenizer collides that much).
"""
import json
import os
import sys

import torch

import pylamia


def mean_off_diagonal(m):
    m = torch.as_tensor(m, dtype=torch.float64)
    L = m.shape[0]
    return float((m.sum() - m.diagonal().sum()) / (L * (L - 1))) if L > 1 else float("nan")


def ami_matrix(codes):
    L = codes.shape[1]
    out = torch.eye(L, dtype=torch.float64)
    for i in range(L):
        for j in range(i + 1, L):
            out[i, j] = out[j, i] = pylamia.adjusted_mutual_info(codes[:, i], codes[:, j])
    return out


def collision_rate(codes):
    rows = [tuple(r) for r in codes.tolist()]
    seen = {}
    for r in rows:
        seen[r] = seen.get(r, 0) + 1
    return 1.0 - len(seen) / len(rows)


def quantize(palettes, qopts, seed=None):
    opts = dict(qopts)
    if seed is not None:
        opts = json.loads(json.dumps(opts))
        opts["kmeans"]["seed"] = seed
    q = pylamia.PaletteQuantizer(pylamia.PaletteQuantizerOptions(opts))
    q.fit(palettes)
    return q.training_codes()


def analyse(folder):
    config = json.load(open(os.path.join(folder, "config.json")))
    diag = json.load(open(os.path.join(folder, "diagnostics.json")))
    reader = pylamia.PaletteFileReader(os.path.join(folder, "palettes.bin"))
    palettes = reader.read(0, reader.num_items)
    aspects, names = None, []
    if config["dataset"].get("format", "synthetic") == "synthetic":  # real data has no ground truth
        synth = pylamia.generate_synthetic(config["dataset"]["synthetic"])
        catalog = synth.dataset.catalog  # palettes.bin lists items by id
        aspects = synth.item_aspects[torch.tensor([catalog.index_of(i) for i in reader.item_ids])]
        names = synth.aspect_names
    qopts = config["quantize"]["lamia"]
    L = palettes.shape[1]
    codes = quantize(palettes, qopts)
    ami_pos = ami_matrix(codes)
    best = []
    for l in range(L if aspects is not None else 0):
        scores = [pylamia.adjusted_mutual_info(codes[:, l], aspects[:, a]) for a in range(len(names))]
        a = max(range(len(names)), key=lambda k: scores[k])
        best.append(f"{names[a]}({scores[a]:.2f})")
    copies = torch.stack([quantize(palettes[:, :1], qopts, seed=qopts["kmeans"]["seed"] + 101 * j)[:, 0]
                          for j in range(L)], dim=1)
    sizes = [int(codes[:, l].max()) + 1 for l in range(L)]
    g = torch.Generator().manual_seed(0)
    random_codes = torch.stack([torch.randint(0, k, (codes.shape[0],), generator=g) for k in sizes], dim=1)
    pal = diag.get("palettes", {})
    training = os.path.join(folder, "palette_encoder", "training.json")
    after = json.load(open(training)).get("after", {}) if os.path.exists(training) else {}
    row = {
        "run": os.path.basename(folder.rstrip("/")),
        "collision": collision_rate(codes),
        "ami_pos": mean_off_diagonal(ami_pos),
        "ami_pos_max": float((ami_pos - torch.eye(L, dtype=torch.float64)).max()),
        "best_aspect": " ".join(best) or "-",
        "copies_ami": mean_off_diagonal(ami_matrix(copies)),
        "random_ami": mean_off_diagonal(ami_matrix(random_codes)),
        "forced_collision": collision_rate(aspects) if aspects is not None else float("nan"),
        "palette_diag": pal,
        "gen_acc": (f"gen {after['generation_loss']:.2f} / acc {after['token_accuracy']:.2f}"
                    if "generation_loss" in after else "gen -"),
    }
    return row


def palette_summary(p):
    """Cross-position R^2 (mean off-diagonal), per aspect the best probe accuracy over positions and its chance
    level, the mean offset share, and the raw / centred intra cosines."""
    if not p:
        return "-"
    r2 = mean_off_diagonal(p["cross_position_r2"])
    offset = sum(x["offset_share"] for x in p["positions"]) / len(p["positions"])
    probe = "-"
    if "linear_probe" in p:
        acc = torch.tensor(p["linear_probe"]["accuracy"])  # positions x aspects
        chance = p["linear_probe"]["chance_accuracy"]
        names = p.get("label_names", [str(a) for a in range(acc.shape[1])])
        best = acc.max(0)
        probe = " ".join(f"{names[a]} {float(best.values[a]):.2f}@{int(best.indices[a])} ({chance[a]:.2f})"
                         for a in range(acc.shape[1]))
    return (f"R2 {r2:.3f} | offset share {offset:.2f} | intra cos {p['intra_cosine']:.2f} / centred "
            f"{p['centred_intra_cosine']:.2f} | probe {probe}")


def main():
    rows = [analyse(f) for f in sys.argv[1:]]
    print("| run | collision (forced) | AMI between positions: mean / max | copies of position 0 | random codes |"
          " best aspect per position (AMI) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {r['collision']:.3f} ({r['forced_collision']:.3f}) | {r['ami_pos']:.3f} / "
              f"{r['ami_pos_max']:.3f} | {r['copies_ami']:.3f} | {r['random_ami']:.3f} | {r['best_aspect']} |")
    print()
    print("palette diagnostics (cross-position ridge R^2, chance ~0; probe: best held-out accuracy @ position "
          "(majority-class chance)):")
    for r in rows:
        print(f"- {r['run']}: {r['gen_acc']} | {palette_summary(r['palette_diag'])}")


if __name__ == "__main__":
    main()
