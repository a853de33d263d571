"""Every configuration in configs/ loads, passes the config checks and names attributes its dataset has.

A dataset that is not on this machine (the paper-scale ones, or ../shared/data on a user's machine) is
replaced by the loader's sample in tests/data, so that the format and the attribute names are still
checked; the pretrained model path of the paper's files is checked by the tokenizer stage's own tests."""
import json
from pathlib import Path

import pytest

import pylamia

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").rglob("*.json"))
SAMPLES = {"mind": "mind/ok", "amazon": "amazon/ok", "hm": "hm/ok", "amazon-lcrec": "amazon-lcrec/ok",
           "movielens": "movielens/ok"}


def test_there_are_configs_for_every_paper_dataset_and_a_cpu_profile_of_each():
    names = {p.relative_to(ROOT / "configs").as_posix() for p in CONFIGS}
    for dataset in ["mind", "amazon-cds", "hm", "amazon-lcrec", "movielens"]:
        assert f"paper/{dataset}.json" in names
    for dataset in ["mind", "amazon-cds", "hm", "movielens"]:
        assert f"cpu/{dataset}.json" in names
    assert "amazon-office-cpu.json" in names  # the LC-Rec-format CPU profile


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.relative_to(ROOT / "configs").as_posix())
def test_config_loads_and_its_dataset_has_the_attributes(path, tmp_path, monkeypatch):
    config = json.loads(path.read_text())
    dataset = config.get("dataset", {})
    fmt = dataset.get("format", "synthetic")
    if fmt != "synthetic":
        data = (ROOT / dataset["path"]) if not Path(dataset["path"]).is_absolute() else Path(dataset["path"])
        if not data.exists():
            dataset["path"] = str(ROOT / "tests" / "data" / SAMPLES[fmt])
        else:
            dataset["path"] = str(data)
    config.setdefault("model", {}).pop("pretrained", None)  # checked with the pretrained stage's tests
    config["progress"] = False
    monkeypatch.chdir(ROOT)
    result = pylamia.run_pipeline(config, str(tmp_path / "run"), until="dataset")
    assert result["stages_run"] == ["dataset"]
    assert result["dataset"]["items"] > 0


def test_paper_configs_are_the_paper_settings():
    for path in (ROOT / "configs" / "paper").glob("*.json"):
        c = json.loads(path.read_text())
        assert c["model"]["lora_rank"] == 128, path.name
        assert c["palette"]["encoder"]["palette_size"] == 4
        assert c["palette"]["encoder"]["task_routing"] == "all"
        losses = c["palette"]["encoder"]["losses"]
        assert (losses["gamma"], losses["alpha_intra"], losses["alpha_inter"]) == (0.1, 0.1, 0.25)
        assert (c["palette"]["trainer"]["learning_rate"], c["palette"]["trainer"]["batch_size"]) == (1e-4, 128)
        assert c["quantize"]["lamia"]["pca_dim"] == 64
        assert c["quantize"]["lamia"]["kmeans"]["num_codes"] == 256
        assert c["recommend"]["model"]["max_history_items"] == 20
        assert (c["recommend"]["learning_rate"], c["recommend"]["batch_size"], c["recommend"]["patience"]) == (5e-4, 64, 5)


def test_dropping_text_less_items_is_refused_by_the_pipeline_before_anything_runs(tmp_path):
    # The semantic IDs cover every catalog item, so the pipeline's sequences keep them all: the key was
    # silently set back to false until session 13 (a MIND run with it ran unfiltered for an hour).
    config = {"sequences": {"filter": {"drop_items_without_text": True}}, "progress": False}
    with pytest.raises(ValueError, match=r"sequences\.filter\.drop_items_without_text.*not supported by the pipeline.*dataset\.drop_items_without_text"):
        pylamia.run_pipeline(config, str(tmp_path / "run"), until="dataset")
    assert not (tmp_path / "run" / "manifest.json").exists()


def test_the_dataset_section_drops_text_less_items_before_every_stage(tmp_path):
    # The MIND corpus's behaviours click N9, which news.tsv lacks: the loader's default adds it without
    # text, dataset.unknown_items=skip leaves its clicks out, dataset.drop_items_without_text removes it.
    corpus = str(Path(__file__).resolve().parents[2] / "tests" / "data" / "mind" / "ok")
    base = {"dataset": {"format": "mind", "path": corpus}, "progress": False}

    def stats(name, **dataset):
        config = json.loads(json.dumps(base))
        config["dataset"].update(dataset)
        pylamia.run_pipeline(config, str(tmp_path / name), until="dataset")
        return json.loads((tmp_path / name / "dataset.json").read_text())

    added, dropped, skipped = stats("added"), stats("dropped", drop_items_without_text=True), \
        stats("skipped", unknown_items="skip")
    direct = pylamia.drop_items_without_text(pylamia.load_mind(corpus))
    assert added["items"] == 4 and added["items_with_text"] == 3 and "dropped_without_text" not in added
    assert dropped["items"] == dropped["items_with_text"] == 3
    assert dropped["dropped_without_text"] == {"items": 1, "interactions": direct.interactions_dropped}
    assert dropped["interactions"] == added["interactions"] - direct.interactions_dropped
    assert skipped["items"] == 3 and skipped["interactions"] == dropped["interactions"]
    with pytest.raises(ValueError, match=r"dataset\.unknown_items"):
        pylamia.run_pipeline({**base, "dataset": {**base["dataset"], "unknown_items": "nope"}}, str(tmp_path / "bad"),
                             until="dataset")
