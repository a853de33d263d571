"""`lamia report DIR` (docs/report.md): the tables hold the numbers of metrics.json and diagnostics.json,
the 2-D map equals an independent numpy PCA of palettes.bin with the codes of semantic_ids/lamia.txt,
every figure loads in a real browser (headless Chromium), and bad input is one line, exit 1, nothing written."""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ["palette_training", "quantizer_fits", "code_utilisation", "position_independence", "recall_vs_id_length",
           "item_map"]


def lamia_cli():
    # $LAMIA_CLI (scripts/test-all.sh sets it to build/lamia), else the build tree next to pypkg/.
    # The tests need the command, not the module: they run without pylamia built.
    exe = os.environ.get("LAMIA_CLI")
    if not exe:
        try:
            import pylamia
        except ImportError:
            pytest.skip("neither LAMIA_CLI nor pylamia (to find the build tree) is there")
        exe = Path(pylamia.__file__).parent.parent.parent / "lamia"
    exe = Path(exe)
    if not exe.exists():
        pytest.skip(f"{exe} not built")
    return exe


def report_env(**extra):
    env = dict(os.environ)
    env.setdefault("LAMIA_REPORT_SCRIPT", str(ROOT / "python" / "pylamia" / "report.py"))
    env.setdefault("LAMIA_PYTHON", sys.executable)  # this interpreter has numpy and matplotlib (pytest imports them)
    env.update(extra)
    return env


def lamia_report(*args, **env):
    return subprocess.run([str(lamia_cli()), "report", *map(str, args)], capture_output=True, text=True,
                          env=report_env(**env), timeout=120)


def tiny_config():
    # tests/python/test_pipeline.py's tiny run (a partial config: the other keys keep their defaults),
    # with its training curves recorded (progress on, palette logged every step) and SASRec for an epoch.
    kmeans = {"kmeans": {"num_codes": 16}}
    return {
        "dataset": {"synthetic": {"num_items": 200, "num_users": 30}},
        "tokenizer": {"vocab_size": 350},
        "model": {"scratch": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "ffn_dim": 64}},
        "palette": {"trainer": {"batch_size": 32, "epochs": 1, "max_steps": 5, "log_every": 1},
                    "encoder": {"attribute_token_budget": 12, "answer_token_budget": 6}},
        "quantize": {"lamia": {"pca_dim": 8, **kmeans}, "residual_kmeans": kmeans, "rq_vae": {"num_codes": 16},
                     "rq_vae_train": {"max_epochs": 3}},
        "recommend": {"tokenizers": ["lamia", "rq-vae"], "baselines": ["popularity", "sasrec-ce"], "epochs": 1,
                      "sasrec_epochs": 1, "model": {"hidden_size": 16, "num_layers": 1, "num_heads": 2},
                      "sasrec": {"hidden_size": 16, "num_layers": 1}},
        "evaluate": {"max_users": 10, "beam_width": 5, "top_k": 5},
        "progress": True,
        "threads": 1,
    }


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    exe = lamia_cli()
    base = tmp_path_factory.mktemp("report")
    config = base / "config.json"
    config.write_text(json.dumps(tiny_config()))
    out = base / "run"
    subprocess.run([str(exe), "run", "--config", str(config), "--out", str(out)], check=True, capture_output=True,
                   timeout=300)
    return out


@pytest.fixture(scope="module")
def report(run_dir):
    r = lamia_report(run_dir)
    assert r.returncode == 0, r.stderr
    assert f"written: {run_dir}/report.md, {run_dir}/report.html" in r.stdout
    return run_dir


def table_rows(markdown, header_start):
    """The rows (lists of cells) of the first Markdown table whose header starts with header_start."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def test_report_tables_hold_the_numbers_of_metrics_and_diagnostics(report):
    md = (report / "report.md").read_text()
    metrics = json.loads((report / "metrics.json").read_text())
    ks = metrics["ks"]
    rows = {r[0]: r for r in table_rows(md, "| method | kind | users |")}
    assert set(rows) == set(metrics["methods"]) == {"lamia", "rq-vae", "popularity", "sasrec-ce"}
    for name, m in metrics["methods"].items():
        main = m["beam"] if m["kind"] == "generative" else m["exact"]
        want = [f"{main[f'recall@{k}']:.4f}" for k in ks] + [f"{main[f'ndcg@{k}']:.4f}" for k in ks]
        assert rows[name][3:3 + 2 * len(ks)] == want, name
        assert rows[name][3 + 2 * len(ks)] == f"{main['mrr']:.4f}"

    diagnostics = json.loads((report / "diagnostics.json").read_text())
    tokenizers = diagnostics["tokenizers"]
    rows = {r[0]: r for r in table_rows(md, "| tokenizer | L | codebook sizes |")}
    assert set(rows) == set(tokenizers)
    for name, d in tokenizers.items():
        ami = np.array(d["ami_between_positions"])
        off = ami[~np.eye(len(ami), dtype=bool)].mean()
        assert rows[name][1] == str(d["num_positions"])
        assert rows[name][5] == f"{d['table']['collision_rate']:.4f}"
        assert rows[name][6] == str(d["table"]["unique_codes"])
        assert rows[name][8] == f"{off:.4f}"
    used = {(r[0], int(r[1])): r for r in table_rows(md, "| tokenizer | position | codebook | used |")}
    for name, d in tokenizers.items():
        for p in d["positions"]:
            row = used[(name, p["position"])]
            assert row[2:5] == [str(p["codebook_size"]), str(p["used_codes"]), f"{p['utilization']:.4f}"]
            assert row[6] == f"{p['perplexity']:.3f}"

    # What each stage recorded: the palette encoder's curve (log_every 1) and the recommenders' files.
    records = {(r[0], r[1]): r[2] for r in table_rows(md, "| stage | model | record |")}
    palette = json.loads((report / "palette_encoder" / "training.json").read_text())
    assert len(palette["train_history"]) == palette["steps"] == 5
    assert records[("palette", "palette encoder")].startswith("5 training points")
    assert ("recommend", "recommender[lamia]") in records and ("recommend", "sasrec-ce") in records
    # One run: one point per tokenizer, and the report says so.
    assert "one ID length per tokenizer (one run)" in md
    lengths = {r[0]: int(r[1]) for r in table_rows(md, "| tokenizer | L | run |")}
    assert lengths == {"lamia": 4, "rq-vae": 4}


def test_report_figures_are_files_and_inline_images(report):
    md = (report / "report.md").read_text()
    page = (report / "report.html").read_text()
    linked = re.findall(r"!\[[^]]*\]\(report/figures/([a-z_]+)\.png\)", md)
    assert set(FIGURES) <= set(linked)
    assert sorted(p.stem for p in (report / "report" / "figures").glob("*.png")) == sorted(linked)
    assert page.count('<img src="data:image/png;base64,') == len(linked)
    assert "http://" not in page and "https://" not in page  # self-contained
    assert "AMI 0 = chance" in page


def read_palettes(path):
    """palettes.bin read here from its documented layout (include/lamia/palette/palette_file.hpp)."""
    data = path.read_bytes()
    assert data[:8] == b"LAMIAPAL"
    version, dtype, n, L, D = struct.unpack_from("<IIQQQ", data, 8)
    assert (version, dtype) == (1, 0)
    offset = 8 + 4 + 4 + 24
    for _ in range(n):
        (length,) = struct.unpack_from("<I", data, offset)
        offset += 4 + length
    return np.frombuffer(data, dtype="<f4", count=n * L * D, offset=offset).reshape(n, L, D).astype(np.float64)


def lamia_codes(run_dir, L):
    lines = [l for l in (run_dir / "semantic_ids" / "lamia.txt").read_text().splitlines() if not l.startswith("#")]
    return np.array([[int(t) for t in l.split("\t")[1].split()] for l in lines])[:, :L]


def assert_map_matches(item_map, palettes, codes):
    """map.json against a numpy PCA of the sampled items' palettes and the codes of lamia.txt."""
    items = np.array(item_map["items"])
    assert len(items) == item_map["sampled"] and len(set(items.tolist())) == len(items)
    assert len(item_map["positions"]) == palettes.shape[1]
    for l, p in enumerate(item_map["positions"]):
        assert p["code"] == codes[items, l].tolist()
        x = palettes[items, l, :] - palettes[items, l, :].mean(axis=0)
        _, s, vt = np.linalg.svd(x, full_matrices=False)
        want = x @ vt[:2].T
        got = np.array([p["x"], p["y"]]).T
        for c in range(2):  # components agree up to sign
            sign = np.sign(want[:, c] @ got[:, c])
            assert np.abs(got[:, c] - sign * want[:, c]).max() < 1e-3 * np.abs(want[:, c]).max(), (l, c)
        assert np.allclose(p["explained_variance_ratio"], s[:2] ** 2 / (s ** 2).sum(), rtol=1e-3, atol=1e-6)


def test_item_map_is_a_pca_of_each_position_coloured_by_its_codes(report):
    item_map = json.loads((report / "report" / "map.json").read_text())
    palettes = read_palettes(report / "palettes.bin")
    n, L, _ = palettes.shape
    assert item_map["num_items"] == item_map["sampled"] == n  # 200 items: all drawn
    assert item_map["items"] == list(range(n))
    assert_map_matches(item_map, palettes, lamia_codes(report, L))


def test_runs_join_the_recall_against_id_length_table_and_the_map_sample_is_capped(report, tmp_path):
    other = copy_run(report, tmp_path)
    r = lamia_report(other, "--out", tmp_path / "joined", "--runs", report, "--map-items", 50, "--seed", 7)
    assert r.returncode == 0, r.stderr
    md = (tmp_path / "joined.md").read_text()
    rows = table_rows(md, "| tokenizer | L | run |")
    assert sorted((row[0], row[2]) for row in rows) == sorted(
        (t, str(d)) for t in ("lamia", "rq-vae") for d in (report, other))
    assert "one ID length per tokenizer (one run)" not in md
    assert (tmp_path / "joined.html").exists() and (tmp_path / "joined" / "figures" / "item_map.png").exists()
    # The map: a sample of 50 of the 200 items, still the PCA of those items with their codes.
    item_map = json.loads((other / "report" / "map.json").read_text())
    assert item_map["sampled"] == 50 and item_map["seed"] == 7 and len(item_map["positions"][0]["x"]) == 50
    assert "50 of the 200 items" in md
    palettes = read_palettes(other / "palettes.bin")
    assert_map_matches(item_map, palettes, lamia_codes(other, palettes.shape[1]))
    assert_one_line_error(lamia_report(report, "--runs", tmp_path / "nothing"), "nothing")


# ---- the browser check ----------------------------------------------------------------------

CHECK = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var out = document.createElement('pre');
  out.id = 'image-check';
  out.textContent = 'images=' + imgs.length + ' loaded=' + ok;
  document.body.appendChild(out);
});
</script>
"""


def images_loaded_in_chromium(html_path, tmp_path):
    """(images, loaded) as headless Chromium sees them in a copy of the page with CHECK appended."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    page = tmp_path / "checked.html"
    page.write_text(html_path.read_text().replace("</body>", CHECK + "</body>"))
    with tempfile.TemporaryDirectory() as profile:
        r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                            f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom",
                            page.as_uri()], capture_output=True, text=True, timeout=90)
    m = re.search(r'<pre id="image-check">images=(\d+) loaded=(\d+)</pre>', r.stdout)
    assert m, f"no result from chromium (exit {r.returncode}): {r.stderr[-2000:]}"
    return int(m.group(1)), int(m.group(2))


def test_every_image_of_the_html_loads_in_chromium(report, tmp_path):
    figures = len(list((report / "report" / "figures").glob("*.png")))
    assert figures >= len(FIGURES)
    assert images_loaded_in_chromium(report / "report.html", tmp_path) == (figures, figures)


def test_the_browser_check_fails_on_a_broken_image(report, tmp_path):
    page = (report / "report.html").read_text()
    start = page.index("data:image/png;base64,") + len("data:image/png;base64,")
    end = page.index('"', start)
    broken = tmp_path / "broken.html"
    broken.write_text(page[:start] + "bm90IGEgcG5n" + page[end:])  # base64 of "not a png"
    images, loaded = images_loaded_in_chromium(broken, tmp_path)
    assert loaded == images - 1


# ---- errors: one line, exit 1, nothing written ------------------------------------------------


def assert_one_line_error(r, *fragments):
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lamia: error: "), r.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def test_a_folder_that_is_not_a_run_is_refused(tmp_path):
    r = lamia_report(tmp_path)
    assert_one_line_error(r, str(tmp_path), "no manifest.json")
    assert not (tmp_path / "report.md").exists()
    r = lamia_report(tmp_path / "absent")
    assert_one_line_error(r, "absent")


def copy_run(run_dir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("report*", "checkpoints"))
    return copy


def test_a_corrupt_or_missing_file_is_named_and_nothing_is_written(report, tmp_path):
    copy = copy_run(report, tmp_path)
    (copy / "metrics.json").write_text('{"methods": ')
    assert_one_line_error(lamia_report(copy), str(copy / "metrics.json"), "invalid JSON")
    assert not (copy / "report.md").exists() and not (copy / "report.html").exists()
    assert not (copy / "report" / "figures").exists()
    (copy / "metrics.json").unlink()
    assert_one_line_error(lamia_report(copy), str(copy / "metrics.json"), "missing")
    shutil.copy(report / "metrics.json", copy / "metrics.json")
    with open(copy / "palettes.bin", "r+b") as f:  # one flipped byte: the palette file's crc32 catches it
        f.seek(-8, os.SEEK_END)
        byte = f.read(1)
        f.seek(-8, os.SEEK_END)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert_one_line_error(lamia_report(copy), "palettes.bin")
    assert not (copy / "report.md").exists()


def test_matplotlib_missing_is_one_line_and_leaves_the_report_as_it_was(report, tmp_path):
    # An interpreter where `import matplotlib` fails: this one, with a package of that name that raises.
    fake = tmp_path / "fake"
    (fake / "matplotlib").mkdir(parents=True)
    (fake / "matplotlib" / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\nPYTHONPATH="{fake}" exec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    before = (report / "report.md").read_bytes()
    r = lamia_report(report, LAMIA_PYTHON=str(python))
    assert_one_line_error(r, "matplotlib is not installed")
    assert (report / "report.md").read_bytes() == before
    r = lamia_report(report, LAMIA_PYTHON=str(tmp_path / "no-such-python"))
    assert_one_line_error(r, "no-such-python", "LAMIA_PYTHON")
