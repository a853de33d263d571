#!/usr/bin/env python3
"""The report of a `lamia run` folder: PREFIX.md, a self-contained PREFIX.html (figures inlined as
base64 PNG) and PREFIX/figures/*.png (docs/report.md).

`lamia report DIR` computes the intermediates (DIR/report/map.json: the 2-D map of the items;
DIR/report/id_lengths.json: the ID length of every recommender) and runs this script with them:

    python3 report.py DIR --out DIR/report --map DIR/report/map.json \
        --id-lengths DIR/report/id_lengths.json [--runs DIR2 DIR3 ...]

Pure Python (json, numpy, matplotlib with the Agg backend, base64): it does not import pylamia, so
any interpreter with numpy and matplotlib runs it. Every failure is one line on stderr,
"report.py: error: <file>: <what>", and exit status 1; the output files are written only once every
figure and table is made, each atomically (a temporary file, then a rename).
"""
import argparse
import base64
import html
import io
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path


class ReportError(Exception):
    """A problem with the input: one line naming the file."""


# ----------------------------------------------------------------------------------------------
# Reading the run folder


def read_json(path):
    path = Path(path)
    if not path.exists():
        raise ReportError(f"{path}: missing")
    if not path.is_file():
        raise ReportError(f"{path}: not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ReportError(f"{path}: cannot be read ({e})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ReportError(f"{path}: invalid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    if not isinstance(data, (dict, list)):
        raise ReportError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


class Doc:
    """A JSON object read from a file: req() names the file and the key path when something is missing."""

    def __init__(self, data, path, keys=""):
        self.data, self.path, self.keys = data, Path(path), keys

    def _where(self, key):
        return f"{self.keys}.{key}" if self.keys else str(key)

    def has(self, key):
        return isinstance(self.data, dict) and key in self.data

    def req(self, key, kind=None):
        if not isinstance(self.data, dict) or key not in self.data:
            raise ReportError(f"{self.path}: key '{self._where(key)}' missing")
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if kind is not None and (not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds):
            raise ReportError(f"{self.path}: key '{self._where(key)}' is not {describe(kind)}")
        if isinstance(value, (dict, list)):
            return Doc(value, self.path, self._where(key))
        return value

    def num(self, key):
        return float(self.req(key, (int, float)))

    def opt(self, key, kind=None):
        return self.req(key, kind) if self.has(key) else None

    def items(self):
        if not isinstance(self.data, dict):
            raise ReportError(f"{self.path}: key '{self.keys}' is not an object")
        return [(k, Doc(v, self.path, self._where(k)) if isinstance(v, (dict, list)) else v) for k, v in self.data.items()]

    def list(self):
        if not isinstance(self.data, list):
            raise ReportError(f"{self.path}: key '{self.keys}' is not a list")
        return [Doc(v, self.path, f"{self.keys}[{i}]") if isinstance(v, (dict, list)) else v
                for i, v in enumerate(self.data)]

    def numbers(self):
        values = self.list()
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise ReportError(f"{self.path}: key '{self.keys}' is not a list of numbers")
        return [float(v) for v in values]

    def matrix(self):
        rows = [r.numbers() if isinstance(r, Doc) else None for r in self.list()]
        if any(r is None or len(r) != len(rows) for r in rows):
            raise ReportError(f"{self.path}: key '{self.keys}' is not a square matrix of numbers")
        return rows


def describe(kind):
    names = {dict: "an object", list: "a list", str: "a string", int: "an integer", float: "a number"}
    if isinstance(kind, tuple):
        return " or ".join(names.get(k, k.__name__) for k in kind)
    return names.get(kind, kind.__name__)


class Run:
    """A `lamia run` folder: its manifest says which artifacts its stages made."""

    def __init__(self, path):
        self.path = Path(path)
        if not (self.path / "manifest.json").exists():
            raise ReportError(f"{self.path}: not a lamia run folder (no manifest.json; `lamia run --out DIR` makes one)")
        manifest = Doc(read_json(self.path / "manifest.json"), self.path / "manifest.json")
        if manifest.opt("format") != "lamia-manifest":
            raise ReportError(f"{manifest.path}: not a lamia manifest (key 'format' is not \"lamia-manifest\")")
        self.artifacts = {name: entry.req("path", str) for name, entry in manifest.req("artifacts", dict).items()}

    def file(self, artifact, relative=None):
        """The artifact's file (or a file inside the artifact's folder) when the manifest records it,
        else None; a recorded file that is not there is an error."""
        if artifact not in self.artifacts:
            return None
        base = self.path / self.artifacts[artifact]
        path = base / relative if relative else base
        if not path.exists():
            raise ReportError(f"{path}: missing (recorded as artifact '{artifact}' in {self.path / 'manifest.json'})")
        return path

    def doc(self, artifact, relative=None):
        path = self.file(artifact, relative)
        return None if path is None else Doc(read_json(path), path)

    def histories(self, artifact):
        """{name: training.json} of the models under a folder artifact (recommenders/, baselines/)."""
        folder = self.file(artifact)
        if folder is None:
            return {}
        out = {}
        for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
            if (sub / "training.json").exists():
                out[sub.name] = Doc(read_json(sub / "training.json"), sub / "training.json")
        return out


# ----------------------------------------------------------------------------------------------
# The document: blocks rendered to Markdown and to HTML


class Figure:
    def __init__(self, name, title, caption, png):
        self.name, self.title, self.caption, self.png = name, title, caption, png


class Report:
    def __init__(self):
        self.blocks = []

    def heading(self, level, text):
        self.blocks.append(("h", level, text))

    def para(self, text):
        self.blocks.append(("p", text))

    def table(self, header, rows):
        self.blocks.append(("table", header, rows))

    def figure(self, fig):
        self.blocks.append(("figure", fig))

    def figures(self):
        return [b[1] for b in self.blocks if b[0] == "figure"]

    def markdown(self, figures_rel):
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2])
            elif b[0] == "p":
                out.append(b[1])
            elif b[0] == "table":
                header, rows = b[1], b[2]
                cell = lambda v: str(v).replace("|", "\\|")  # noqa: E731
                out.append("\n".join(["| " + " | ".join(cell(h) for h in header) + " |",
                                      "|" + "|".join("---" for _ in header) + "|"]
                                     + ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]))
            else:
                f = b[1]
                out.append(f"![{f.title}]({figures_rel}/{f.name}.png)\n\n*{f.caption}*")
        return "\n\n".join(out) + "\n"

    def html(self, title):
        def inline(text):  # `code` spans; everything else escaped
            parts = html.escape(text).split("`")
            return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))

        body = []
        for b in self.blocks:
            if b[0] == "h":
                body.append(f"<h{b[1]}>{inline(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                body.append(f"<p>{inline(b[1])}</p>")
            elif b[0] == "table":
                head = "".join(f"<th>{inline(str(h))}</th>" for h in b[1])
                rows = "".join("<tr>" + "".join(f"<td>{inline(str(v))}</td>" for v in r) + "</tr>" for r in b[2])
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            else:
                f = b[1]
                data = base64.b64encode(f.png).decode("ascii")
                body.append(f'<figure id="{f.name}"><img src="data:image/png;base64,{data}" alt="{html.escape(f.title)}">'
                            f"<figcaption>{inline(f.caption)}</figcaption></figure>")
        style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
                 "table{border-collapse:collapse;margin:1em 0;font-size:90%}"
                 "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}"
                 "th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}"
                 "img{max-width:100%}figcaption{font-size:90%;color:#444}code{background:#f3f3f3;padding:0 2px}")
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
                f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def f4(v):
    return "-" if v is None else f"{v:.4f}"


def f3(v):
    return "-" if v is None else f"{v:.3f}"


# ----------------------------------------------------------------------------------------------
# Plotting


class Plotter:
    def __init__(self):
        try:
            import numpy
        except ImportError:
            raise ReportError(f"numpy is not installed for {sys.executable} (Debian: apt-get install python3-numpy; "
                              "or set LAMIA_PYTHON to an interpreter that has it)") from None
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise ReportError(f"matplotlib is not installed for {sys.executable} (Debian: apt-get install "
                              "python3-matplotlib; or set LAMIA_PYTHON to an interpreter that has it)") from None
        self.np, self.plt = numpy, plt

    def png(self, fig):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
        self.plt.close(fig)
        return buf.getvalue()

    def grid(self, panels, cols, width=4.2, height=3.2):
        from matplotlib.ticker import MaxNLocator
        cols = max(1, min(cols, panels))
        rows = (panels + cols - 1) // cols
        fig, axes = self.plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False,
                                      constrained_layout=True)
        flat = list(axes.flat)
        for ax in flat:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps, epochs, positions, lengths
        for ax in flat[panels:]:
            ax.set_visible(False)
        return fig, flat[:panels]


def code_colours(plotter, k):
    """k colours for k codes: a cyclic colormap in a fixed shuffled order, so that neighbouring codes differ."""
    np = plotter.np
    import matplotlib
    base = (matplotlib.colormaps["tab20"](np.arange(20)) if k <= 20
            else matplotlib.colormaps["hsv"](np.linspace(0, 1, k, endpoint=False)))
    order = np.random.RandomState(0).permutation(len(base))
    return base[order][:k] if k <= 20 else base[order]


# ----------------------------------------------------------------------------------------------
# The sections


def history_points(doc, key):
    """[(step, record Doc)] of a training.json history (an empty list when not recorded)."""
    if not doc.has(key):
        return []
    return [(r.num("step"), r) for r in doc.req(key, list).list()]


def section_training(report, plotter, run, diagnostics, palette):
    report.heading(2, "1. Training curves")
    records = []  # (stage, model, what is recorded)
    plt = plotter.plt

    # The palette encoder.
    if palette is None:
        records.append(("palette", "palette encoder", "not in this run (the palette stage did not run)"))
    else:
        train = history_points(palette, "train_history")
        valid = history_points(palette, "validation_history")
        steps = palette.opt("steps", (int, float))
        records.append(("palette", "palette encoder", f"{len(train)} training points, {len(valid)} validation points "
                        f"over {steps if steps is not None else '?'} steps ({palette.path})"))
        if train or valid:
            parts = [("loss", "total loss"), ("generation_loss", "generation loss"), ("intra_loss", "intra loss"),
                     ("inter_loss", "inter loss"), ("token_accuracy", "token accuracy")]
            fig, axes = plotter.grid(len(parts), 5, width=3.4, height=2.8)
            for ax, (key, label) in zip(axes, parts):
                if train:
                    ax.plot([s for s, _ in train], [r.num(key) for _, r in train], "-", lw=1.2, label="training")
                if valid:
                    ax.plot([s for s, _ in valid], [r.num(key) for _, r in valid], "o--", ms=4, lw=1, label="validation")
                ax.set_title(label, fontsize=10)
                ax.set_xlabel("step")
                ax.grid(alpha=0.3)
            axes[0].legend(fontsize=8)
            report.figure(Figure("palette_training", "Palette encoder training",
                                 f"The palette encoder's loss parts and teacher-forced token accuracy per step "
                                 f"(training: the mean over each logging interval; validation: the held-out items). "
                                 f"Source: {palette.path}.", plotter.png(fig)))
        if not train:
            report.para(f"The palette encoder has no training-loss points in {palette.path}: its training loop records "
                        "one every `palette.trainer.log_every` steps (runs made before lamia recorded the curve with progress "
                        "off have none when they ran with `--quiet`)." + (" Its validation points are drawn." if valid else ""))
        before, after = palette.opt("before", dict), palette.opt("after", dict)
        if after is not None:
            keys = [k for k in ("loss", "generation_loss", "intra_loss", "inter_loss", "token_accuracy", "mean_intra_cosine")
                    if after.has(k)]
            report.para("The palette encoder on its held-out items before and after training "
                        f"({palette.path}, keys `before` and `after`):")
            report.table(["measure", "before", "after"],
                         [[k, f4(before.num(k)) if before is not None and before.has(k) else "-", f4(after.num(k))]
                          for k in keys])

    # The quantizers: RQ-VAE's losses per epoch, K-Means' objective per iteration.
    panels = []
    if diagnostics is not None:
        tokenizers = diagnostics.req("tokenizers", dict)
        for name, tok in tokenizers.items():
            fit = tok.opt("fit", dict)
            if fit is None:
                records.append(("quantize", name, "no fit report"))
            elif fit.has("reconstruction_loss"):
                rec, q = fit.req("reconstruction_loss", list).numbers(), fit.req("quantization_loss", list).numbers()
                records.append(("quantize", name, f"reconstruction and quantization loss per epoch, {len(rec)} epochs "
                                f"({diagnostics.path}, `tokenizers.{name}.fit`)"))
                if rec:
                    panels.append((f"{name}: losses per epoch", "epoch",
                                   [("reconstruction", rec), ("quantization", q)], False))
            elif fit.has("positions") or fit.has("objective"):
                if fit.has("positions"):  # LAMIA: one K-Means per position; the restart it kept
                    curves = []
                    for p in fit.req("positions", list).list():
                        best, restarts = int(p.num("best_restart")), p.req("objective", list).list()
                        curves.append((f"position {len(curves)}", restarts[best].numbers() if best < len(restarts) else []))
                else:  # residual K-Means: one per level; the restart with the lowest final objective
                    curves = []
                    for level in fit.req("objective", list).list():
                        restarts = [r.numbers() for r in level.list()] if isinstance(level, Doc) else []
                        restarts = [r for r in restarts if r]
                        curves.append((f"level {len(curves)}", min(restarts, key=lambda r: r[-1]) if restarts else []))
                n_iter = max((len(c) for _, c in curves), default=0)
                records.append(("quantize", name, f"K-Means objective per iteration, {len(curves)} fits of up to "
                                f"{n_iter} iterations ({diagnostics.path}, `tokenizers.{name}.fit`); not trained by gradient"))
                if n_iter:
                    panels.append((f"{name}: K-Means objective", "iteration", curves, True))
            else:
                records.append(("quantize", name, "no curve in its fit report"))
    else:
        records.append(("quantize", "tokenizers", "not in this run (the quantize stage did not run)"))
    if panels:
        fig, axes = plotter.grid(len(panels), 3)
        for ax, (title, xlabel, curves, relative) in zip(axes, panels):
            for label, ys in curves:
                if not ys:
                    continue
                ys = plotter.np.asarray(ys)
                if relative and ys[0] != 0:
                    ys = ys / ys[0]
                ax.plot(range(1, len(ys) + 1), ys, "-", marker="o" if len(ys) < 30 else None, ms=3, lw=1.2, label=label)
            ax.set_title(title, fontsize=10)
            ax.set_xlabel(xlabel)
            if relative:
                ax.set_ylabel("objective / first iteration's")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        report.figure(Figure("quantizer_fits", "Quantizer fits",
                             "RQ-VAE's reconstruction and quantization losses per epoch; each K-Means fit's objective per "
                             "iteration (its kept restart), relative to the first iteration. "
                             f"Source: {diagnostics.path}, key `tokenizers.<name>.fit`.", plotter.png(fig)))

    # The recommenders and SASRec: the training loop's histories.
    models = [("recommend", f"recommender[{n}]", d) for n, d in run.histories("recommenders").items()]
    models += [("recommend", n, d) for n, d in run.histories("baselines").items()]
    if "recommenders" not in run.artifacts:
        records.append(("recommend", "recommenders", "not in this run (the recommend stage did not run)"))
    curves = []
    for stage, label, doc in models:
        train = history_points(doc, "train_history")
        valid = history_points(doc, "validation_history")
        steps = doc.opt("steps", (int, float))
        note = f"{len(train)} training points, {len(valid)} validation points over {steps if steps is not None else '?'} steps ({doc.path})"
        if not train:
            note += ("; no training-loss points (the pipeline records about 50 per run; a folder made before it did, "
                     "with progress off or fewer than 100 steps, has none)")
        records.append((stage, label, note))
        if train or valid:
            curves.append((label, train, valid))
    if curves:
        fig, axes = plotter.grid(2, 2, width=5.2, height=3.4)
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, (label, train, valid) in enumerate(curves):
            c = colours[i % len(colours)]
            if train:
                axes[0].plot([s for s, _ in train], [r.num("loss") for _, r in train], "-", color=c, lw=1.2, label=label)
            if valid:
                axes[1].plot([s for s, _ in valid], [r.num("loss") for _, r in valid], "o-", color=c, ms=3, lw=1.2, label=label)
        for ax, title in zip(axes, ("training loss", "validation loss")):
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(fontsize=7)
            else:
                ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes, color="#777")
        report.figure(Figure("recommender_training", "Recommender training",
                             "Each generative recommender's and each SASRec's loss per step (training: the mean over each "
                             "logging interval; validation: per evaluation; the losses of different models are not on one "
                             "scale: the recommenders predict code tokens, SASRec items). "
                             "Source: recommenders/<tokenizer>/training.json, baselines/<name>/training.json.",
                             plotter.png(fig)))
    report.para("What each stage recorded (popularity and transition are counts, not trained; a stage that does not record "
                "a curve is said here, none is drawn for it):")
    report.table(["stage", "model", "record"], [list(r) for r in records])


def positions_of(tok):
    return [(p.num("used_codes"), p.num("codebook_size"), p.num("utilization"), p.num("entropy"), p.num("perplexity"),
             p.num("largest_cluster_share")) for p in tok.req("positions", list).list()]


def section_utilisation(report, plotter, diagnostics):
    report.heading(2, "2. Code utilisation per position")
    if diagnostics is None:
        report.para("Not in this run: the quantize stage did not run (no diagnostics.json).")
        return
    tokenizers = diagnostics.req("tokenizers", dict).items()
    rows, data = [], []
    for name, tok in tokenizers:
        pos = positions_of(tok)
        data.append((name, pos))
        for l, (used, k, util, h, ppl, largest) in enumerate(pos):
            rows.append([name, l, int(k), int(used), f4(util), f4(h), f3(ppl), f4(largest)])
    np = plotter.np
    fig, axes = plotter.grid(2, 2, width=5.2, height=3.4)
    width = 0.8 / max(1, len(data))
    for i, (name, pos) in enumerate(data):
        x = np.arange(len(pos)) + (i - (len(data) - 1) / 2) * width
        axes[0].bar(x, [p[2] for p in pos], width, label=name)
        axes[1].bar(x, [p[4] for p in pos], width, label=name)
    sizes = sorted({int(p[1]) for _, pos in data for p in pos})
    for k in sizes:
        axes[1].axhline(k, color="#888", lw=0.8, ls="--")
    axes[0].set_title("used codes / codebook size", fontsize=10)
    axes[0].set_ylim(0, 1.05)
    axes[1].set_title("perplexity exp(entropy) (dashed: codebook size)", fontsize=10)
    for ax in axes:
        ax.set_xlabel("position")
        ax.set_xticks(range(max(len(pos) for _, pos in data)))
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=7)
    report.figure(Figure("code_utilisation", "Code utilisation per position",
                         "Per tokenizer and position: the share of the codebook that some item uses, and the perplexity "
                         "of the code distribution (exp of its entropy in nats; the codebook size if every code held as "
                         f"many items). Source: {diagnostics.path}, key `tokenizers.<name>.positions`.", plotter.png(fig)))
    report.table(["tokenizer", "position", "codebook", "used", "utilisation", "entropy (nats)", "perplexity",
                  "largest code's share"], rows)


def mean_off_diagonal(m):
    vals = [m[i][j] for i in range(len(m)) for j in range(len(m)) if i != j]
    return sum(vals) / len(vals) if vals else None


def section_independence(report, plotter, diagnostics):
    report.heading(2, "3. Independence between positions")
    if diagnostics is None:
        report.para("Not in this run: the quantize stage did not run (no diagnostics.json).")
        return
    mats = []
    for name, tok in diagnostics.req("tokenizers", dict).items():
        if tok.has("ami_between_positions"):
            ami = tok.req("ami_between_positions", list).matrix()
            nmi = tok.req("nmi_between_positions", list).matrix() if tok.has("nmi_between_positions") else None
            chance = tok.req("expected_nmi_between_positions", list).matrix() if tok.has("expected_nmi_between_positions") else None
            mats.append((name, "AMI", ami, nmi, chance))
        else:
            mats.append((name, "NMI", tok.req("nmi_between_positions", list).matrix(), None, None))
    if any(len(m[2]) < 2 for m in mats):
        report.para("A tokenizer has a single position: there is no pair of positions to compare.")
    fig, axes = plotter.grid(len(mats), 3, width=3.8, height=3.4)
    for ax, (name, measure, m, _, _) in zip(axes, mats):
        im = ax.imshow(m, vmin=0, vmax=1, cmap="viridis")
        for i in range(len(m)):
            for j in range(len(m)):
                ax.text(j, i, f"{m[i][j]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if m[i][j] < 0.6 else "black")
        ax.set_title(f"{name} ({measure})", fontsize=10)
        ax.set_xlabel("position")
        ax.set_ylabel("position")
        ax.set_xticks(range(len(m)))
        ax.set_yticks(range(len(m)))
    fig.colorbar(im, ax=axes, shrink=0.8)
    measures = sorted({m[1] for m in mats})
    report.figure(Figure("position_independence", "Independence between positions",
                         "Adjusted mutual information between the codes of every two positions (1 on the diagonal). "
                         "AMI 0 = chance: what independent partitions of the same sizes give; 1 = the two positions "
                         "partition the items identically. Plain NMI is not 0 by chance (its chance level for these "
                         "sizes is in the table below)."
                         + (" Shown: NMI (this diagnostics.json has no AMI)." if "NMI" in measures else "")
                         + f" Source: {diagnostics.path}, key `tokenizers.<name>.ami_between_positions`.",
                         plotter.png(fig)))
    report.table(["tokenizer", "mean AMI between positions", "mean NMI between positions", "NMI's chance level (mean)"],
                 [[name, f4(mean_off_diagonal(m)) if measure == "AMI" else "-",
                   f4(mean_off_diagonal(nmi if nmi is not None else m)),
                   f4(mean_off_diagonal(chance)) if chance is not None else "-"]
                  for name, measure, m, nmi, chance in mats])


def generative_methods(metrics):
    """{tokenizer: method Doc} of a metrics.json's generative recommenders."""
    out = {}
    for name, m in metrics.req("methods", dict).items():
        if m.opt("kind") == "generative":
            out[m.opt("tokenizer", str) or name] = m
    return out


def section_recall_vs_length(report, plotter, runs, metrics_docs, lengths):
    report.heading(2, "4. R@K against ID length")
    points = {}  # tokenizer -> [(L, {K: recall}, run)]
    ks_all = None
    notes = []
    for run, metrics in zip(runs, metrics_docs):
        if metrics is None:
            notes.append(f"{run.path}: no metrics.json (its evaluate stage did not run)")
            continue
        ks = [int(k) for k in metrics.req("ks", list).numbers()]
        ks_all = ks if ks_all is None else [k for k in ks_all if k in ks]
        levels = lengths.get(str(run.path), {})
        diag = run.doc("diagnostics")
        for tok, m in generative_methods(metrics).items():
            L = levels.get(tok)
            if L is None and diag is not None and diag.req("tokenizers", dict).has(tok):
                L = int(diag.req("tokenizers", dict).req(tok, dict).num("num_positions"))
            if L is None:
                notes.append(f"{run.path}: no ID length for '{tok}' (no recommenders/{tok}/semantic_ids.bin)")
                continue
            beam = m.req("beam", dict)
            points.setdefault(tok, []).append((L, {k: beam.num(f"recall@{k}") for k in ks if beam.has(f"recall@{k}")},
                                               run))
    if not points:
        report.para("No generative recommender was evaluated in these runs: nothing to draw. " + "; ".join(notes))
        return
    ks_all = ks_all or []
    show = [k for k in ks_all if k in (5, 10, 20)] or ks_all[:3]
    fig, axes = plotter.grid(len(show), 3, width=4.0, height=3.2)
    for ax, k in zip(axes, show):
        for tok, pts in sorted(points.items()):
            pts = sorted(pts, key=lambda p: p[0])
            ax.plot([p[0] for p in pts], [p[1].get(k, float("nan")) for p in pts], "o-", ms=5, lw=1.2, label=tok)
        ax.set_title(f"R@{k}", fontsize=10)
        ax.set_xlabel("ID length L (codes, without the index token)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    single = all(len(p) == 1 for p in points.values())
    report.figure(Figure("recall_vs_id_length", "R@K against ID length",
                         "Recall@K of each generative recommender's constrained beam search (metrics.json, "
                         "`methods.<name>.beam`) against the number of codes L in its semantic IDs "
                         "(recommenders/<name>/semantic_ids.bin; every ID also carries one index token), one line per "
                         "tokenizer over the runs given (paper Figure 6)."
                         + (" With one run each tokenizer is a single point: pass `--runs` with runs of other "
                            "palette sizes (`palette.encoder.palette_size`) to draw lines." if single else ""),
                         plotter.png(fig)))
    if single:
        report.para("This report has one ID length per tokenizer (one run), so each tokenizer is a single point; "
                    "`lamia report DIR --runs DIR2 DIR3` adds the runs made at other palette sizes.")
    rows = []
    for tok, pts in sorted(points.items()):
        for L, rec, run in sorted(pts, key=lambda p: p[0]):
            rows.append([tok, L, str(run.path)] + [f4(rec.get(k)) for k in ks_all])
    report.table(["tokenizer", "L", "run"] + [f"R@{k}" for k in ks_all], rows)
    for n in notes:
        report.para(n)


def section_map(report, plotter, item_map):
    report.heading(2, "5. Items coloured by code per position")
    if item_map is None:
        report.para("No map: the intermediate DIR/report/map.json was not given (`lamia report` computes it).")
        return
    if not item_map.req("available", bool):
        report.para(f"No map: {item_map.req('reason', str)}.")
        return
    np = plotter.np
    positions = item_map.req("positions", list).list()
    fig, axes = plotter.grid(len(positions), 4, width=3.6, height=3.4)
    for ax, p in zip(axes, positions):
        x, y = np.asarray(p.req("x", list).numbers()), np.asarray(p.req("y", list).numbers())
        codes = np.asarray(p.req("code", list).numbers(), dtype=int)
        if not (len(x) == len(y) == len(codes)):
            raise ReportError(f"{item_map.path}: position {int(p.num('position'))}: x, y and code differ in length")
        k = int(p.num("codebook_size"))
        if len(codes) and (codes.min() < 0 or codes.max() >= k):
            raise ReportError(f"{item_map.path}: position {int(p.num('position'))}: a code outside [0, {k})")
        colours = code_colours(plotter, k)
        ax.scatter(x, y, c=colours[codes], s=5, alpha=0.8, linewidths=0)
        ratio = p.req("explained_variance_ratio", list).numbers()
        ax.set_title(f"position {int(p.num('position'))}: {len(set(codes.tolist()))} of {k} codes", fontsize=10)
        ax.set_xlabel(f"PC1 ({100 * ratio[0]:.0f}% of variance)" if ratio else "PC1")
        ax.set_ylabel(f"PC2 ({100 * ratio[1]:.0f}%)" if len(ratio) > 1 else "PC2")
        ax.set_xticks([])
        ax.set_yticks([])
    n, m = int(item_map.num("num_items")), int(item_map.num("sampled"))
    sample = f"all {n} items" if m == n else f"{m} of the {n} items (a sample with seed {int(item_map.num('seed'))})"
    report.figure(Figure("item_map", "Items coloured by code per position",
                         f"Each panel is one palette position: {sample}, placed by the first two principal components "
                         "of that position's palette vectors (fitted on the items drawn), coloured by the item's "
                         f"'{item_map.req('tokenizer', str)}' code at that position (one colour per code; colours repeat "
                         "beyond 20 codes only by hue). Codes that separate into regions were found in that position's "
                         "own space (paper Figure 7). Source: DIR/report/map.json, from palettes.bin and "
                         f"semantic_ids/{item_map.req('tokenizer', str)}.bin.", plotter.png(fig)))


def section_metrics(report, metrics):
    report.heading(2, "6. Metrics")
    if metrics is None:
        report.para("Not in this run: the evaluate stage did not run (no metrics.json).")
        return
    ks = [int(k) for k in metrics.req("ks", list).numbers()]
    exact_users = metrics.opt("exact_users", (int, float))
    report.para(f"{metrics.opt('protocol', str) or '?'} protocol, {metrics.opt('test_users', (int, float))} test users, "
                f"{metrics.opt('num_items', (int, float))} items; history excluded: "
                f"{'yes' if metrics.opt('exclude_history', bool) else 'no'}; test targets that repeat a history item: "
                f"{metrics.opt('test_targets_in_history', (int, float))} (rule: {metrics.opt('repeated_targets', str)}). "
                f"Generative recommenders: the top-{metrics.opt('top_k', (int, float))} list of constrained beam search "
                f"(beam {metrics.opt('beam_width', (int, float))}); ID-based methods: full ranking of their scores. "
                + (f"Exact R@10: full ranking by exact scoring on the first {exact_users} users." if exact_users
                   else "Exact scoring is off (`evaluate.exact`).")
                + f" Source: {metrics.path}.")
    rows = []
    for name, m in metrics.req("methods", dict).items():
        main = m.req("beam", dict) if m.has("beam") else m.opt("exact", dict)
        row = [name, m.opt("kind", str) or "-", int(main.num("users")) if main is not None and main.has("users") else "-"]
        row += [f4(main.num(f"recall@{k}")) if main is not None and main.has(f"recall@{k}") else "-" for k in ks]
        row += [f4(main.num(f"ndcg@{k}")) if main is not None and main.has(f"ndcg@{k}") else "-" for k in ks]
        row.append(f4(main.num("mrr")) if main is not None and main.has("mrr") else "-")
        exact = m.opt("exact", dict) if m.has("beam") else None
        row.append(f4(exact.num("recall@10")) if exact is not None and exact.has("recall@10") else "-")
        rows.append(row)
    report.table(["method", "kind", "users"] + [f"R@{k}" for k in ks] + [f"N@{k}" for k in ks] + ["MRR", "exact R@10"],
                 rows)


def section_diagnostics(report, diagnostics):
    report.heading(2, "7. Tokenizer diagnostics")
    if diagnostics is None:
        report.para("Not in this run: the quantize stage did not run (no diagnostics.json).")
        return
    rows = []
    labels = diagnostics.opt("labels", list)
    for name, tok in diagnostics.req("tokenizers", dict).items():
        pos = positions_of(tok)
        table = tok.req("table", dict)
        ami = tok.req("ami_between_positions", list).matrix() if tok.has("ami_between_positions") else None
        best = "-"
        if tok.has("ami_with_labels"):
            names = tok.req("label_names", list).list() if tok.has("label_names") else None
            parts = []
            for row in tok.req("ami_with_labels", list).list():
                vals = row.numbers()
                a = max(range(len(vals)), key=lambda i: vals[i])
                parts.append(f"{names[a] if names else a} ({vals[a]:.2f})")
            best = ", ".join(parts)
        rows.append([name, len(pos), "/".join(str(int(p[1])) for p in pos),
                     f3(sum(p[2] for p in pos) / len(pos)) if pos else "-",
                     f"{sum(p[4] for p in pos) / len(pos):.1f}" if pos else "-",
                     f4(table.num("collision_rate")), int(table.num("unique_codes")), int(table.num("max_group_size")),
                     f4(mean_off_diagonal(ami)) if ami is not None else "-", best])
    report.para(f"Source: {diagnostics.path} (docs/quantize.md explains each measure). util and perplexity are means over "
                "positions; AMI(pos) is the mean AMI between two different positions (0 = chance)"
                + ("; the last column is, per position, the ground-truth aspect with the highest AMI." if labels is not None
                   or any(r[-1] != "-" for r in rows) else "."))
    report.table(["tokenizer", "L", "codebook sizes", "util", "perplexity", "collision", "unique IDs", "largest group",
                  "AMI(pos)", "best aspect per position (AMI)"], rows)


# ----------------------------------------------------------------------------------------------


def build(args):
    plotter = Plotter()
    run = Run(args.run)
    others = [Run(r) for r in args.runs]
    diagnostics = run.doc("diagnostics")
    metrics = run.doc("metrics")
    palette = run.doc("palette_training")
    dataset = run.doc("dataset")
    item_map = Doc(read_json(args.map), args.map) if args.map else None
    lengths = {}
    if args.id_lengths:
        doc = Doc(read_json(args.id_lengths), args.id_lengths)
        for entry in doc.list():
            if not isinstance(entry, Doc):
                raise ReportError(f"{args.id_lengths}: expected a list of objects")
            lengths[str(Path(entry.req("run", str)))] = {
                name: int(t.num("levels")) for name, t in entry.req("tokenizers", dict).items()}
    other_metrics = []
    for r in others:
        m = r.doc("metrics")
        if m is None:
            raise ReportError(f"{r.path}: has no metrics.json (its evaluate stage did not run); --runs needs evaluated runs")
        other_metrics.append(m)

    report = Report()
    report.heading(1, f"lamia report: {run.path}")
    summary = f"Made by `lamia report` from the run folder `{run.path}`"
    if dataset is not None:
        stats = dataset.opt("statistics", dict) or dataset
        parts = []
        for key in ("format", "num_items", "num_users", "num_interactions"):
            for d in (dataset, stats):
                if d.has(key) and not isinstance(d.data[key], (dict, list)):
                    parts.append(f"{key.replace('num_', '')} {d.data[key]}")
                    break
        if parts:
            summary += " (dataset: " + ", ".join(parts) + ")"
    if others:
        summary += "; R@K against ID length also reads " + ", ".join(f"`{r.path}`" for r in others)
    report.para(summary + ". docs/report.md says what each figure shows.")
    section_training(report, plotter, run, diagnostics, palette)
    section_utilisation(report, plotter, diagnostics)
    section_independence(report, plotter, diagnostics)
    section_recall_vs_length(report, plotter, [run] + others, [metrics] + other_metrics, lengths)
    section_map(report, plotter, item_map)
    section_metrics(report, metrics)
    section_diagnostics(report, diagnostics)
    return report


def umask():
    old = os.umask(0o022)
    os.umask(old)
    return old


def write_atomically(path, data):
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp's 0600 -> what open() would have made
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write(report, prefix):
    prefix = Path(prefix)
    md_path, html_path = Path(f"{prefix}.md"), Path(f"{prefix}.html")
    figures_dir = prefix / "figures"
    try:
        figures_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".figures.", dir=figures_dir.parent))
        try:
            os.chmod(tmp, 0o777 & ~umask())
            for f in report.figures():
                (tmp / f"{f.name}.png").write_bytes(f.png)
            old = None
            if figures_dir.exists():
                old = Path(tempfile.mkdtemp(prefix=".figures.old.", dir=figures_dir.parent))
                os.replace(figures_dir, old / "figures")
            os.replace(tmp, figures_dir)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        rel = os.path.relpath(figures_dir, md_path.parent)
        write_atomically(md_path, report.markdown(Path(rel).as_posix()).encode("utf-8"))
        write_atomically(html_path, report.html(f"lamia report: {prefix}").encode("utf-8"))
    except OSError as e:
        raise ReportError(f"{e.filename or prefix}: cannot be written ({e.strerror or e})") from None
    return md_path, html_path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="the run folder (made by `lamia run --out DIR`)")
    parser.add_argument("--out", help="output prefix: PREFIX.md, PREFIX.html, PREFIX/figures/ (default DIR/report)")
    parser.add_argument("--runs", nargs="*", default=[], help="more run folders for R@K against ID length")
    parser.add_argument("--map", help="DIR/report/map.json, written by `lamia report`")
    parser.add_argument("--id-lengths", help="DIR/report/id_lengths.json, written by `lamia report`")
    args = parser.parse_args(argv)
    try:
        report = build(args)
        md, page = write(report, args.out or Path(args.run) / "report")
    except ReportError as e:
        print(f"report.py: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # a bug here, not a bad input: the traceback, then the one line
        import traceback
        traceback.print_exc()
        print(f"report.py: error: internal error ({type(e).__name__}: {e}); please report it", file=sys.stderr)
        return 1
    print(f"written: {md}")
    print(f"written: {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
