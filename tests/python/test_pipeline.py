"""run_pipeline from Python: the same artifacts as `lamia run`, config errors as ValueError."""
import json
import signal
import subprocess
import time

import pytest

import pylamia
from pipeline_testing import lamia_cli, tiny_config, without_times


def test_run_pipeline_writes_diagnostics_matching_the_result(tmp_path):
    result = pylamia.run_pipeline(tiny_config(), str(tmp_path))
    on_disk = json.loads((tmp_path / "diagnostics.json").read_text())
    assert set(on_disk["tokenizers"]) == {"lamia", "rq-vae", "residual-kmeans"}
    assert on_disk["tokenizers"]["lamia"]["table"]["num_items"] == 200
    assert result["diagnostics"]["tokenizers"]["lamia"]["table"] == on_disk["tokenizers"]["lamia"]["table"]
    table = pylamia.SemanticIdTable.load(str(tmp_path / "semantic_ids" / "lamia.bin"))
    assert table.num_items == 200
    assert set(result["metrics"]["methods"]) == {"lamia", "popularity"}
    assert result["stages_run"][-1] == "evaluate"


def test_unknown_config_key_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="palette.trainer.batchsize"):
        pylamia.run_pipeline({"palette": {"trainer": {"batchsize": 3}}}, str(tmp_path))
    with pytest.raises(ValueError, match="quantize.lamia.kmeans.num_codes"):
        pylamia.run_pipeline({"quantize": {"lamia": {"kmeans": {"num_codes": 0}}}}, str(tmp_path))


def test_lamia_run_killed_during_palette_training_resumes_to_the_same_result(tmp_path):
    exe = lamia_cli()
    config = tiny_config()
    config["palette"]["trainer"].update(epochs=6, max_steps=0)
    config["threads"] = 1  # bit-exact comparisons need the same reduction order
    config["progress"] = True  # the rerun's log says what it skipped and resumed
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))

    reference = tmp_path / "reference"
    subprocess.run([str(exe), "run", "--quiet", "--config", str(config_file), "--out", str(reference)],
                   check=True, capture_output=True)

    killed = tmp_path / "killed"
    proc = subprocess.Popen([str(exe), "run", "--config", str(config_file), "--out", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    checkpoint = killed / "palette_encoder" / "trainer.ckpt"
    deadline = time.time() + 300
    while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed during palette training"
    assert not (killed / "palettes.bin").exists()
    manifest = json.loads((killed / "manifest.json").read_text())
    assert manifest["stages"]["palette"]["completed"] is False

    rerun = subprocess.run([str(exe), "run", "--config", str(config_file), "--out", str(killed)],
                           capture_output=True, text=True, check=True)
    assert "stage dataset: up to date" in rerun.stderr
    assert "resumed from" in rerun.stderr
    for artifact in ["palettes.bin", "embeddings.bin", "semantic_ids/lamia.bin", "semantic_ids/rq-vae.bin",
                     "semantic_ids/residual-kmeans.bin"]:
        assert (killed / artifact).read_bytes() == (reference / artifact).read_bytes(), artifact

    assert without_times(json.loads((killed / "metrics.json").read_text())) == \
        without_times(json.loads((reference / "metrics.json").read_text()))
