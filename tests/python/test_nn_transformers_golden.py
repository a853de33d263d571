"""lamia's OPT decoder against Hugging Face transformers itself (the golden reference).

Small random OPTForCausalLM models (pre-LN; post-LN with project_in/out as OPT-350M; untied head;
sharded weights) are saved with transformers' save_pretrained (safetensors) and loaded with
pylamia.load_pretrained; logits and every hidden state must agree in float32, with left padding
(HF's 2-D attention mask; lamia's [B,T,T] mask and positions counted over the real tokens) and
without (lamia's causal path). The other way round, a folder written by lamia's save_pretrained
loads in transformers with no missing or unexpected weight and the same outputs. On CUDA too
where available.

Skipped where transformers cannot be imported (it is not a dependency of lamia);
LAMIA_EXPECT_TRANSFORMERS=1 (set by scripts/device-check.sh where it imports) makes that a failure.
"""
import json
import os
import warnings

import pytest
import torch

import pylamia

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import transformers
        from transformers import OPTConfig, OPTForCausalLM
    IMPORT_ERROR = None
except Exception as e:  # ImportError, or a transformers that does not fit this torch
    transformers = None
    IMPORT_ERROR = f"{type(e).__name__}: {e}"

EXPECTED = os.environ.get("LAMIA_EXPECT_TRANSFORMERS") == "1"
needs_transformers = pytest.mark.skipif(transformers is None and not EXPECTED,
                                        reason=f"transformers not importable ({IMPORT_ERROR})")
# Whatever transformers warns about (deprecations of its own or of torch) is not what this compares.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                 reason="CUDA not available"))]
# float32 on both sides; on CUDA the two use different attention kernels.
TOLERANCE = {"cpu": 2e-5, "cuda": 1e-4}

BASE = dict(vocab_size=120, hidden_size=64, num_hidden_layers=3, num_attention_heads=4, ffn_dim=96,
            max_position_embeddings=64, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
            layerdrop=0.0, activation_function="relu", pad_token_id=1, bos_token_id=2, eos_token_id=2,
            enable_bias=True, layer_norm_elementwise_affine=True, init_std=0.02)
CONFIGS = {
    "pre_ln": dict(do_layer_norm_before=True, word_embed_proj_dim=64, tie_word_embeddings=True),
    "post_ln_project": dict(do_layer_norm_before=False, word_embed_proj_dim=32, tie_word_embeddings=True),
    "pre_ln_project_untied": dict(do_layer_norm_before=True, word_embed_proj_dim=48, tie_word_embeddings=False),
    "post_ln_untied_sharded": dict(do_layer_norm_before=False, word_embed_proj_dim=64, tie_word_embeddings=False,
                                   shard="40KB"),
}


def test_transformers_importable_where_expected():
    if not EXPECTED:
        pytest.skip("transformers not expected (LAMIA_EXPECT_TRANSFORMERS is not 1)")
    assert transformers is not None, f"LAMIA_EXPECT_TRANSFORMERS=1 but: {IMPORT_ERROR}"
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")


def hf_model(name, attn, seed=0):
    """A random OPTForCausalLM of CONFIGS[name] with attention implementation attn, eval mode."""
    if transformers is None:
        pytest.fail(f"transformers not importable: {IMPORT_ERROR}")
    cfg = dict(BASE)
    cfg.update({k: v for k, v in CONFIGS[name].items() if k != "shard"})
    config = OPTConfig(**cfg)
    torch.manual_seed(seed)
    try:
        model = OPTForCausalLM._from_config(config, attn_implementation=attn)
    except (TypeError, AttributeError):
        config._attn_implementation = attn
        model = OPTForCausalLM(config)
    got = getattr(model.config, "_attn_implementation", None)
    if got != attn:
        pytest.skip(f"transformers {transformers.__version__} did not select attn_implementation {attn!r} ({got!r})")
    model = model.float().eval()
    # Every parameter random (biases and layer norms too), larger than the init, so that each matters.
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if "layer_norm" in pname and pname.endswith(".weight"):
                p.copy_(1.0 + 0.2 * noise)
            else:
                p.copy_(0.15 * noise)
    return model


def save_hf(model, path, shard=None):
    kw = {"max_shard_size": shard} if shard else {}
    try:
        model.save_pretrained(str(path), safe_serialization=True, **kw)
    except TypeError:  # a transformers without the safe_serialization switch (always safetensors)
        model.save_pretrained(str(path), **kw)
    files = sorted(os.listdir(path))
    assert "config.json" in files, files
    assert ("model.safetensors.index.json" in files) if shard else ("model.safetensors" in files), files
    return files


def batch(seed, padded, B=3, T=11, vocab=120):
    """ids [B,T] and HF's 2-D mask [B,T] (1 = token): left padding with the pad id where padded."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    if padded:
        for b, n in enumerate([0, 3, 6][:B]):
            ids[b, :n] = 1
            mask[b, :n] = 0
    return ids, mask


def lamia_inputs(mask):
    """The same padding for lamia: [B,T,T] bool (causal and a real key) and positions over real tokens."""
    T = mask.shape[1]
    valid = mask.bool()
    attn = torch.ones(T, T, dtype=torch.bool).tril()[None] & valid[:, None, :]
    pos = (mask.cumsum(1) - 1).clamp(min=0)
    return attn, pos


def compare(label, lam, hf, rows, tol, report):
    """Relative error max|a-b|/max|b| over the real-token rows; recorded for the failure message."""
    a = lam.detach().double().cpu()[rows]
    b = hf.detach().double().cpu()[rows]
    err = ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()
    report.append(f"{label}: {err:.2e}")
    return err <= tol


def run_both(model, dec, device, padded, seed):
    ids, mask = batch(seed, padded)
    with torch.no_grad():
        if padded:
            hf = model(input_ids=ids.to(device), attention_mask=mask.to(device), output_hidden_states=True)
            attn, pos = lamia_inputs(mask)
            lam = dec.forward(ids.to(device), attention_mask=attn.to(device), position_ids=pos.to(device),
                              output_hidden_states=True)
        else:
            hf = model(input_ids=ids.to(device), output_hidden_states=True)
            lam = dec.forward(ids.to(device), output_hidden_states=True)  # the causal (fused) path
    return hf, lam, mask.bool()


def check_outputs(hf, lam, rows, tol, what):
    report = []
    ok = compare("logits", lam.logits, hf.logits, rows, tol, report)
    assert len(lam.hidden_states) == len(hf.hidden_states), (len(lam.hidden_states), len(hf.hidden_states))
    for i, (x, y) in enumerate(zip(lam.hidden_states, hf.hidden_states)):
        ok &= compare(f"hidden_states[{i}]", x, y, rows, tol, report)
    print(f"{what}: " + ", ".join(report))
    assert ok, f"{what}: lamia differs from transformers beyond {tol:g}: " + ", ".join(report)


@needs_transformers
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_hf_folder_loads_and_matches_transformers(tmp_path, name, attn, device):
    model = hf_model(name, attn)
    files = save_hf(model, tmp_path, CONFIGS[name].get("shard"))
    model.to(device)
    dec = pylamia.load_pretrained(str(tmp_path), device=device)
    dec.eval()
    o = dec.options
    assert (o.do_layer_norm_before, o.word_embed_proj_dim, o.tie_word_embeddings) == (
        CONFIGS[name]["do_layer_norm_before"], CONFIGS[name]["word_embed_proj_dim"],
        CONFIGS[name]["tie_word_embeddings"]), f"options read from config.json: {o!r}; files {files}"
    for padded in (False, True):
        hf, lam, rows = run_both(model, dec, device, padded, seed=7 if padded else 8)
        check_outputs(hf, lam, rows, TOLERANCE[device], f"{name} {attn} {device} padded={padded}")


@needs_transformers
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["pre_ln_project_untied", "post_ln_project"])
def test_lamia_folder_loads_in_transformers(tmp_path, name, device):
    if transformers is None:
        pytest.fail(f"transformers not importable: {IMPORT_ERROR}")
    c = CONFIGS[name]
    torch.manual_seed(3)
    dec = pylamia.Decoder(BASE["vocab_size"], BASE["hidden_size"], BASE["num_hidden_layers"],
                          BASE["num_attention_heads"], ffn_dim=BASE["ffn_dim"],
                          max_position_embeddings=BASE["max_position_embeddings"],
                          word_embed_proj_dim=c["word_embed_proj_dim"], do_layer_norm_before=c["do_layer_norm_before"],
                          dropout=0.0, tie_word_embeddings=c["tie_word_embeddings"])
    with torch.no_grad():
        for p in dec.parameters():
            p.add_(torch.randn(p.shape) * 0.15)
    dec.save_pretrained(str(tmp_path))
    with open(tmp_path / "config.json") as f:
        assert json.load(f)["model_type"] == "opt"
    model, info = OPTForCausalLM.from_pretrained(str(tmp_path), output_loading_info=True, attn_implementation="eager")
    problems = {k: v for k, v in info.items() if v}
    assert not problems, f"transformers loading lamia's folder: {problems}"
    model = model.float().eval().to(device)
    dec.to(device=device)
    dec.eval()
    for padded in (False, True):
        hf, lam, rows = run_both(model, dec, device, padded, seed=9)
        check_outputs(hf, lam, rows, TOLERANCE[device], f"lamia->HF {name} {device} padded={padded}")
