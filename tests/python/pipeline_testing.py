"""Helpers shared by the pipeline tests (imported by name: pytest puts this folder on sys.path)."""
import os
from pathlib import Path

import pytest

import pylamia


def tiny_config():
    """A pipeline configuration that runs end to end in a few seconds (200 items, 30 users)."""
    c = pylamia.default_pipeline_config()
    c["dataset"]["synthetic"].update(num_items=200, num_users=30)
    c["tokenizer"]["vocab_size"] = 350
    c["model"]["scratch"].update(hidden_size=32, num_layers=1, num_heads=2, ffn_dim=64)
    c["palette"]["trainer"].update(batch_size=32, epochs=1, max_steps=5)
    c["palette"]["encoder"].update(attribute_token_budget=12, answer_token_budget=6)
    q = c["quantize"]
    q["lamia"]["pca_dim"] = 8
    for kmeans in (q["lamia"]["kmeans"], q["residual_kmeans"]["kmeans"]):
        kmeans["num_codes"] = 16
    q["rq_vae"]["num_codes"] = 16
    q["rq_vae_train"]["max_epochs"] = 3
    c["recommend"].update(tokenizers=["lamia"], baselines=["popularity"], epochs=1)
    c["recommend"]["model"].update(hidden_size=16, num_layers=1, num_heads=2)
    c["evaluate"].update(max_users=10, beam_width=5, top_k=5)
    c["progress"] = False
    return c


def lamia_cli():
    """The `lamia` executable: $LAMIA_CLI (scripts/test-all.sh sets it to build/lamia), else the build
    tree next to pypkg/; the test skips where it is not built."""
    exe = Path(os.environ.get("LAMIA_CLI") or Path(pylamia.__file__).parent.parent.parent / "lamia")
    if not exe.exists():
        pytest.skip(f"{exe} not built")
    return exe


def without_times(j):
    """A JSON value without wall times and the rates made from them (keys ending in 'seconds' or
    'per_second'), which differ between runs."""
    if isinstance(j, dict):
        return {k: without_times(v) for k, v in j.items() if not k.endswith(("seconds", "per_second"))}
    if isinstance(j, list):
        return [without_times(v) for v in j]
    return j


def assert_metrics_close(a, b, where="metrics"):
    """Two metrics.json values equal up to the summation order of their sums (1e-12 relative)."""
    if isinstance(a, dict):
        assert set(a) == set(b), where
        for k in a:
            assert_metrics_close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-15), where
    else:
        assert a == b, where
