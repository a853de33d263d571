"""run_pipeline from Python: the same artifacts as `lamia run`, config errors as ValueError."""
import json

import pytest

import pylamia


def tiny_config():
    c = pylamia.default_pipeline_config()
    c["dataset"]["synthetic"].update(num_items=200, num_users=30)
    c["tokenizer"]["vocab_size"] = 350
    c["model"].update(hidden_size=32, num_layers=1, num_heads=2, ffn_dim=64)
    c["palette"].update(batch_size=32, epochs=1, max_steps=5, attribute_token_budget=12, answer_token_budget=6)
    c["quantize"].update(pca_dim=8, num_codes=16, rqvae_max_epochs=3)
    c["progress"] = False
    return c


def test_run_pipeline_writes_diagnostics_matching_the_result(tmp_path):
    result = pylamia.run_pipeline(tiny_config(), str(tmp_path))
    on_disk = json.loads((tmp_path / "diagnostics.json").read_text())
    assert set(on_disk["tokenizers"]) == {"lamia", "rq-vae", "residual-kmeans"}
    assert on_disk["tokenizers"]["lamia"]["table"]["num_items"] == 200
    assert result["diagnostics"]["tokenizers"]["lamia"]["table"] == on_disk["tokenizers"]["lamia"]["table"]
    table = pylamia.SemanticIdTable.load(str(tmp_path / "semantic_ids" / "lamia.bin"))
    assert table.num_items == 200


def test_unknown_config_key_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="palette.batchsize"):
        pylamia.run_pipeline({"palette": {"batchsize": 3}}, str(tmp_path))
