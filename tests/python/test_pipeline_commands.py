"""The stage commands (train-palette, export-palettes, quantize, train-rec, evaluate) and `lamia inspect`
on one run folder, from the CLI and from pylamia."""
import json
import subprocess

import pytest

import pylamia
from test_pipeline import lamia_cli, tiny_config


def lamia(*args, check=True):
    proc = subprocess.run([str(lamia_cli()), *map(str, args)], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"lamia {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc


def one_line_error(proc):
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A folder made step by step by the stage commands, in pipeline order."""
    tmp = tmp_path_factory.mktemp("commands")
    config = tiny_config()
    config["recommend"]["baselines"] = ["popularity"]
    config_file = tmp / "tiny.json"
    config_file.write_text(json.dumps(config))
    out = tmp / "run"
    # Each command before its inputs exist: one line naming the stage that must run first.
    line = one_line_error(lamia("quantize", out, "--config", config_file, check=False))
    assert "stage 'dataset'" in line and "lamia train-palette" in line
    assert not (out / "config.json").exists(), "a refused command must not leave files behind"

    p = lamia("train-palette", out, "--config", config_file, "--quiet")
    assert "palette encoder:" in p.stdout and "held-out loss" in p.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["stages"]) == {"dataset", "tokenizer", "palette"}
    line = one_line_error(lamia("train-rec", out, check=False))
    assert "stage 'export'" in line and "lamia export-palettes" in line

    lamia("export-palettes", out, "--quiet")  # the folder's config.json from here on
    q = lamia("quantize", out, "--quiet")
    assert "lamia" in q.stdout and "rq-vae" in q.stdout
    lamia("train-rec", out, "--quiet")
    e = lamia("evaluate", out, "--quiet")
    assert "R@10" in e.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert all(s["completed"] for s in manifest["stages"].values())
    assert set(manifest["stages"]) == {"dataset", "tokenizer", "palette", "export", "quantize", "recommend", "evaluate"}
    return out


def test_stage_commands_make_what_lamia_run_makes(run_dir):
    # Rerunning the whole pipeline on the folder finds every stage up to date.
    result = pylamia.run_pipeline(json.loads((run_dir / "config.json").read_text()), str(run_dir))
    assert result["stages_run"] == []
    assert set(result["metrics"]["methods"]) == {"lamia", "popularity"}


def test_a_stage_reruns_with_other_settings_and_later_stages_refuse_until_rerun(run_dir, tmp_path):
    import shutil
    work = tmp_path / "run"
    shutil.copytree(run_dir, work)
    before = (work / "semantic_ids" / "lamia.bin").read_bytes()
    lamia("quantize", work, "--quiet", "--set", "quantize.lamia.kmeans.num_codes=12")
    table = pylamia.SemanticIdTable.load(str(work / "semantic_ids" / "lamia.bin"))
    assert table.codebook_sizes[0] == 12 and (work / "semantic_ids" / "lamia.bin").read_bytes() != before
    # The recommenders were trained on the old IDs: evaluate refuses, naming what to run.
    line = one_line_error(lamia("evaluate", work, check=False))
    assert "stage 'recommend'" in line and "out of date" in line and "lamia train-rec" in line
    # A key of an earlier stage that differs is named with both values.
    line = one_line_error(lamia("train-rec", work, "--set", "palette.trainer.max_steps=6", check=False))
    assert "stage 'palette'" in line and "trainer.max_steps is 5 in the folder, 6 here" in line
    assert "lamia train-palette" in line
    lamia("train-rec", work, "--quiet")
    lamia("evaluate", work, "--quiet")
    assert json.loads((work / "metrics.json").read_text())["methods"]["lamia"]["beam"]["users"] > 0


def test_pylamia_stages_match_the_commands(run_dir):
    assert pylamia.stage_commands()["train-palette"] == ["dataset", "tokenizer", "palette"]
    assert pylamia.stage_commands()["quantize"] == ["quantize"]
    config = json.loads((run_dir / "config.json").read_text())
    result = pylamia.run_pipeline(config, str(run_dir), stages=["evaluate"])
    assert result["stages_run"] == [] and result["stages_skipped"][-1] == "evaluate"
    config["palette"]["trainer"]["max_steps"] = 7
    with pytest.raises(ValueError, match="stage 'palette'.*trainer.max_steps is 5 in the folder, 7 here"):
        pylamia.run_pipeline(config, str(run_dir), stages=["evaluate"])


def test_set_errors_name_the_key(run_dir):
    line = one_line_error(lamia("evaluate", run_dir, "--set", "evaluate.topk=3", check=False))
    assert "evaluate.topk" in line
    line = one_line_error(lamia("evaluate", run_dir, "--set", "evaluate.top_k", check=False))
    assert "KEY=VALUE" in line
    line = one_line_error(lamia("evaluate", run_dir, "--set", "evaluate.top_k=-1", check=False))
    assert "evaluate.top_k" in line


def test_inspect_item_shows_its_ids_under_every_tokenizer(run_dir):
    config = json.loads((run_dir / "config.json").read_text())
    item = pylamia.inspect_item(run_dir, pylamia.generate_synthetic(config["dataset"]["synthetic"]).dataset.catalog.id(7))
    assert item["index"] == 7
    assert set(item["ids"]) == {"lamia", "rq-vae", "residual-kmeans"}
    for name, id_ in item["ids"].items():
        table = pylamia.SemanticIdTable.load(str(run_dir / "semantic_ids" / f"{name}.bin"))
        assert id_ == table.ids()[7].tolist(), name
    p = lamia("inspect", run_dir, "--item", item["item"])
    assert item["item"] in p.stdout and "-".join(map(str, item["ids"]["lamia"])) in p.stdout
    line = one_line_error(lamia("inspect", run_dir, "--item", "no-such-item", check=False))
    assert "'no-such-item' is not in the catalog" in line


def test_inspect_prefix_lists_exactly_the_items_under_it(run_dir):
    table = pylamia.SemanticIdTable.load(str(run_dir / "semantic_ids" / "lamia.bin"))
    codes = table.ids()
    first = int(codes[0, 0])
    got = pylamia.inspect_prefix(run_dir, "lamia", [first], limit=1000)
    expected = int((codes[:, 0] == first).sum())  # independent: a tensor count
    assert got["count"] == expected == len(got["items"])
    assert all(e["id"][0] == first for e in got["items"])
    two = pylamia.inspect_prefix(run_dir, "lamia", [first, int(codes[0, 1])])
    assert two["count"] == int(((codes[:, 0] == first) & (codes[:, 1] == codes[0, 1])).sum())
    p = lamia("inspect", run_dir, "--prefix", f"{first}")
    assert f"{expected} items with lamia prefix {first}" in p.stdout
    line = one_line_error(lamia("inspect", run_dir, "--prefix", "999999", check=False))
    assert "outside the codebook" in line
    line = one_line_error(lamia("inspect", run_dir, "--prefix", "3,x", check=False))
    assert "'x' is not a code" in line


def test_inspect_user_recommends_real_items_outside_the_history(run_dir):
    config = json.loads((run_dir / "config.json").read_text())
    seqs = pylamia.build_sequences(pylamia.generate_synthetic(config["dataset"]["synthetic"]).dataset,
                                   config["sequences"]["filter"])
    user = seqs.users[0]
    out = pylamia.inspect_user(run_dir, user.id, top_k=5)
    assert out["tokenizer"] == "lamia"
    # leave-one-out: the history is the sequence without its last item, which is held out
    history = [h["item"] for h in out["history"]]
    ids = [seqs.catalog.id(i) for i in user.items]
    assert history == ids[:-1] and out["held_out"]["item"] == ids[-1]
    recs = out["recommendations"]
    assert 1 <= len(recs) <= 5
    items = [r["item"] for r in recs]
    assert len(set(items)) == len(items) and not set(items) & set(history)
    scores = [r["score"] for r in recs]
    assert scores == sorted(scores, reverse=True) and all(s <= 0 for s in scores)
    table = pylamia.SemanticIdTable.load(str(run_dir / "recommenders" / "lamia" / "semantic_ids.bin"))
    for r in recs:  # each recommended ID is the item's real ID
        assert r["id"] == table.ids()[seqs.catalog.index_of(r["item"])].tolist()
    rank = out["held_out"]["rank"]
    assert rank == (items.index(ids[-1]) + 1 if ids[-1] in items else 0)
    p = lamia("inspect", run_dir, "--user", user.id, "-k", "5")
    assert "held-out next item" in p.stdout and recs[0]["item"] in p.stdout
    line = one_line_error(lamia("inspect", run_dir, "--user", "nobody", check=False))
    assert "user 'nobody'" in line


def test_inspect_refuses_a_folder_that_is_not_a_run(tmp_path):
    line = one_line_error(lamia("inspect", tmp_path, "--item", "x", check=False))
    assert "not a lamia run folder" in line


def test_set_makes_a_section_the_config_leaves_out(tmp_path):
    # The built-in default is an empty JSON object before --set: a nested key makes its sections.
    out = tmp_path / "run"
    lamia("run", "--out", out, "--until", "dataset", "--quiet", "--set", "recommend.epochs=1",
          "--set", "dataset.synthetic.num_items=300")
    config = json.loads((out / "config.json").read_text())
    assert config["recommend"]["epochs"] == 1 and config["dataset"]["synthetic"]["num_items"] == 300
    line = one_line_error(lamia("run", "--out", tmp_path / "other", "--until", "dataset", "--set",
                                "recommend.epochs=1", "--set", "recommend.epochs.x=2", check=False))
    assert "'recommend.epochs' is not a section" in line


def test_a_config_file_that_sets_a_key_twice_is_refused_at_the_second(tmp_path):
    # JSON parsers keep the last of two equal keys; the first value would be lost without a word.
    config = tmp_path / "twice.json"
    config.write_text('{"recommend": {"epochs": 1,\n  "epochs": 2}}')
    line = one_line_error(lamia("run", "--config", config, "--out", tmp_path / "run", "--until", "dataset",
                                check=False))
    assert "twice.json:2" in line and "recommend.epochs" in line and "twice" in line
    assert not (tmp_path / "run" / "config.json").exists()


def test_a_list_longer_than_the_catalog_is_refused_not_cut(run_dir):
    # top_k or a cut-off above the catalog size was cut to the catalog in silence.
    items = json.loads((run_dir / "dataset.json").read_text())["items"]
    line = one_line_error(lamia("evaluate", run_dir, "--set", f"evaluate.top_k={items + 1}",
                                "--set", f"evaluate.beam_width={items + 1}", check=False))
    assert "evaluate.top_k" in line and f"catalog ({items} items)" in line
    # The folder's config.json keeps what a stage command was given (the refused top_k too), so the
    # next commands set the fixture's values back.
    back = ["--set", "evaluate.top_k=5", "--set", "evaluate.beam_width=5"]
    line = one_line_error(lamia("evaluate", run_dir, *back, "--set", f"evaluate.ks=[1, {items + 5}]", check=False))
    assert "evaluate.ks" in line and f"{items + 5} is larger" in line
    lamia("evaluate", run_dir, *back, "--set", "evaluate.ks=[1, 5, 10, 20]", "--quiet")
    # Cut-offs above top_k are allowed (the exact rankings cover the catalog) and recorded: the beam
    # metrics at 10 and 20 are those of 5-item lists.
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["top_k"] == 5 and metrics["beam_cutoffs_above_top_k"] == [10, 20]
