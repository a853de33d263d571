"""The pipeline split over processes (docs/distributed.md, "Running the pipeline across machines"):
`lamia export-palettes DIR --shard i/n` and `--merge` against an unsplit export (the same bytes), each
refusal of the merge, and `lamia evaluate DIR --shard i/n` merged against the unsplit evaluation."""
import json
import shutil
import struct

import pytest

from pipeline_testing import assert_metrics_close, tiny_config, without_times
from test_pipeline_commands import lamia, one_line_error

SHARDS = 3


def shard_name(kind, i, n, ext=".bin"):
    return f"{kind}-{i:05d}-of-{n:05d}{ext}"


def shard_record(path):
    """The metadata (the shard's record) of a version-2 palette file, read by hand."""
    data = path.read_bytes()
    assert data[:8] == b"LAMIAPAL"
    version, dtype, n, L, D, length = struct.unpack_from("<IIQQQQ", data, 8)
    assert (version, dtype) == (2, 0)
    return json.loads(data[8 + 40:8 + 40 + length]), (n, L, D)


def write_config(tmp, **synthetic):
    config = tiny_config()
    # 600 items: the export's batches of 256 items straddle the shards' borders (200, 400).
    config["dataset"]["synthetic"].update({"num_items": 600, "num_users": 60, **synthetic})
    config["recommend"]["baselines"] = ["popularity", "transition"]
    # Exact scoring on the first 3 test users: all of them in the first of two parts.
    config["evaluate"].update(max_users=20, top_k=10, beam_width=10, exact=True, exact_users=3)
    path = tmp / ("tiny%s.json" % "".join(f"-{k}{v}" for k, v in synthetic.items()))
    path.write_text(json.dumps(config))
    return path


def export_shards(run, n=SHARDS, indices=None):
    for i in range(n) if indices is None else indices:
        p = lamia("export-palettes", run, "--shard", f"{i}/{n}", "--quiet")
        assert f"shard {i}/{n} written" in p.stdout


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """base: the palette encoder trained; unsplit: base exported in one process; sharded: base exported
    in 3 shards (not merged)."""
    tmp = tmp_path_factory.mktemp("shards")
    base = tmp / "base"
    lamia("train-palette", base, "--config", write_config(tmp), "--quiet")
    unsplit, sharded = tmp / "unsplit", tmp / "sharded"
    shutil.copytree(base, unsplit)
    lamia("export-palettes", unsplit, "--quiet")
    shutil.copytree(base, sharded)
    export_shards(sharded)
    return {"tmp": tmp, "base": base, "unsplit": unsplit, "sharded": sharded}


def test_shards_record_their_part_and_origin(folders):
    sharded = folders["sharded"]
    ids = []
    for i in range(SHARDS):
        record, (n, L, D) = shard_record(sharded / "shards" / shard_name("palettes", i, SHARDS))
        assert record["shard"] == i and record["shards"] == SHARDS and record["total"] == 600
        assert (record["first"], record["count"]) == (i * 600 // SHARDS, 200) and n == 200
        assert record["item_order"].startswith("fnv1a:") and record["encoder"].startswith("crc32:")
        emb, (n_emb, one, _) = shard_record(sharded / "shards" / shard_name("embeddings", i, SHARDS))
        assert emb["kind"] == "embeddings" and (n_emb, one) == (200, 1)
        ids.append(record["item_order"])
    assert len(set(ids)) == 1
    manifest = json.loads((sharded / "manifest.json").read_text())
    assert "export" not in manifest["stages"], "a shard is no artifact: the manifest is unchanged"


def test_merged_export_is_byte_identical_and_quantize_runs_on_it(folders, tmp_path):
    work = tmp_path / "run"
    shutil.copytree(folders["sharded"], work)
    p = lamia("export-palettes", work, "--merge", "--quiet")
    assert "palettes.bin" in p.stdout
    unsplit = folders["unsplit"]
    for name in ("palettes.bin", "embeddings.bin"):
        assert (work / name).read_bytes() == (unsplit / name).read_bytes(), name
    manifest = json.loads((work / "manifest.json").read_text())
    reference = json.loads((unsplit / "manifest.json").read_text())
    assert manifest["stages"]["export"]["completed"]
    for name in ("palettes", "embeddings"):
        assert manifest["artifacts"][name]["checksum"] == reference["artifacts"][name]["checksum"]
    q = lamia("quantize", work, "--quiet")
    assert "written:" in q.stdout and (work / "semantic_ids" / "lamia.bin").exists()
    assert json.loads((work / "manifest.json").read_text())["stages"]["quantize"]["completed"]


def merge_refusal(folders, tmp_path, damage):
    work = tmp_path / "run"
    shutil.copytree(folders["sharded"], work)
    damage(work / "shards")
    line = one_line_error(lamia("export-palettes", work, "--merge", check=False))
    assert not (work / "palettes.bin").exists()
    return line


def test_merge_refuses_a_missing_shard(folders, tmp_path):
    line = merge_refusal(folders, tmp_path, lambda d: (d / shard_name("palettes", 1, SHARDS)).unlink())
    assert "shard 1 of 3 is missing" in line and shard_name("palettes", 1, SHARDS) in line


def test_merge_refuses_a_duplicate_shard(folders, tmp_path):
    name = shard_name("embeddings", 2, SHARDS)
    line = merge_refusal(folders, tmp_path,
                         lambda d: shutil.copyfile(d / shard_name("embeddings", 0, SHARDS), d / name))
    assert name in line and "duplicate of shard 0" in line


def test_merge_refuses_shards_of_another_split(folders, tmp_path):
    def add_a_half(d):
        work = d.parent
        export_shards(work, n=2, indices=[1])
    line = merge_refusal(folders, tmp_path, add_a_half)
    assert "different splits" in line and shard_name("palettes", 1, 2) in line


def test_merge_refuses_a_truncated_or_corrupt_shard(folders, tmp_path):
    name = shard_name("palettes", 2, SHARDS)

    def truncate(d):
        data = (d / name).read_bytes()
        (d / name).write_bytes(data[:-10])
    line = merge_refusal(folders, tmp_path, truncate)
    assert name in line and "palettes" in line

    def flip(d):
        data = bytearray((d / name).read_bytes())
        data[-100] ^= 0x40
        (d / name).write_bytes(bytes(data))
    shutil.rmtree(tmp_path / "run")
    line = merge_refusal(folders, tmp_path, flip)
    assert name in line and "checksum mismatch" in line


def test_merge_refuses_a_shard_of_another_encoder_or_item_order(folders, tmp_path):
    tmp = folders["tmp"]
    name = shard_name("palettes", 1, SHARDS)
    # Another encoder: the same catalog, the encoder trained one step longer.
    other = tmp_path / "other-encoder"
    lamia("train-palette", other, "--config", write_config(tmp), "--set", "palette.trainer.max_steps=6", "--quiet")
    export_shards(other, indices=[1])
    line = merge_refusal(folders, tmp_path,
                         lambda d: shutil.copyfile(other / "shards" / name, d / name))
    assert name in line and "another encoder checkpoint" in line
    # Another item order: a catalog with one item more (its shard 1 of 3 holds the same items).
    shutil.rmtree(tmp_path / "run")
    other = tmp_path / "other-items"
    lamia("train-palette", other, "--config", write_config(tmp, num_items=601), "--quiet")
    export_shards(other, indices=[1])
    line = merge_refusal(folders, tmp_path,
                         lambda d: shutil.copyfile(other / "shards" / name, d / name))
    assert name in line and "another item order" in line


def test_sharded_evaluation_merges_to_the_unsplit_metrics(folders, tmp_path):
    work = tmp_path / "run"
    shutil.copytree(folders["unsplit"], work)
    for command in ("quantize", "train-rec"):
        lamia(command, work, "--quiet")
    unsplit = tmp_path / "unsplit"
    shutil.copytree(work, unsplit)
    lamia("evaluate", unsplit, "--quiet")
    expected = json.loads((unsplit / "metrics.json").read_text())

    for i in range(2):
        lamia("evaluate", work, "--shard", f"{i}/2", "--quiet")
    assert not (work / "metrics.json").exists()
    # A part missing: one line naming the file expected.
    (work / "eval_shards" / "evaluate-00001-of-00002.json").rename(work / "part1.json")
    line = one_line_error(lamia("evaluate", work, "--merge", check=False))
    assert "shard 1 of 2 is missing" in line and "evaluate-00001-of-00002.json" in line
    (work / "part1.json").rename(work / "eval_shards" / "evaluate-00001-of-00002.json")

    p = lamia("evaluate", work, "--merge", "--quiet")
    assert "R@10" in p.stdout
    merged = json.loads((work / "metrics.json").read_text())
    assert merged["test_users"] == expected["test_users"] == 20 and merged["exact_users"] == 3
    lamia_method = merged["methods"]["lamia"]
    assert lamia_method["exact"]["users"] == 3 and lamia_method["beam"]["users"] == 20
    assert lamia_method["exact"]["mrr"] > 0 and merged["methods"]["popularity"]["exact"]["mrr"] > 0
    assert set(merged["methods"]) == {"lamia", "popularity", "transition"}

    assert_metrics_close(without_times(merged), without_times(expected))
    manifest = json.loads((work / "manifest.json").read_text())
    assert manifest["stages"]["evaluate"]["completed"]
    # Parts made with other settings: the folder's config.json now says top_k 4 (the shard run wrote
    # it), so the part of shard 1, made with top_k 5, is refused, naming its file.
    lamia("evaluate", work, "--shard", "0/2", "--set", "evaluate.top_k=4", "--quiet")
    line = one_line_error(lamia("evaluate", work, "--merge", check=False))
    assert "evaluate-00001-of-00002.json" in line and "other settings" in line
