"""pylamia's OPT decoder against a plain PyTorch OPT written here (no transformers needed).

The reference follows Hugging Face's OPTForCausalLM: learned positions with offset 2,
pre-/post-LN, project_in/out, ReLU FFN, tied LM head, q scaled by head_dim**-0.5, final
layer norm only with pre-LN. Weights travel through safetensors written by either side.
"""
import itertools
import json
import math
import struct

import pytest
import torch
import torch.nn.functional as F

import pylamia

P = "model.decoder."


# ----------------------------------------------------------------- reference

def ref_attention(p, pre, x, mask, num_heads):
    B, T, D = x.shape
    hd = D // num_heads
    q = F.linear(x, p[pre + "q_proj.weight"], p[pre + "q_proj.bias"]) * hd ** -0.5
    k = F.linear(x, p[pre + "k_proj.weight"], p[pre + "k_proj.bias"])
    v = F.linear(x, p[pre + "v_proj.weight"], p[pre + "v_proj.bias"])
    q, k, v = (t.view(B, T, num_heads, hd).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-1, -2)
    if mask is not None:
        m = mask[:, None]
        probs = torch.softmax(scores.masked_fill(~m, float("-inf")), -1)
        probs = torch.where(m.any(-1, keepdim=True), probs, torch.zeros_like(probs))  # rows with no key: 0
    else:
        probs = torch.softmax(scores, -1)
    out = (probs @ v).transpose(1, 2).reshape(B, T, D)
    return F.linear(out, p[pre + "out_proj.weight"], p[pre + "out_proj.bias"])


def ref_ffn(p, pre, x, pre_ln):
    D = x.shape[-1]
    h = F.layer_norm(x, (D,), p[pre + "final_layer_norm.weight"], p[pre + "final_layer_norm.bias"]) if pre_ln else x
    h = F.linear(F.relu(F.linear(h, p[pre + "fc1.weight"], p[pre + "fc1.bias"])), p[pre + "fc2.weight"], p[pre + "fc2.bias"])
    h = x + h
    if not pre_ln:
        h = F.layer_norm(h, (D,), p[pre + "final_layer_norm.weight"], p[pre + "final_layer_norm.bias"])
    return h


def ref_forward(p, cfg, ids, position_ids=None, mask=None, inputs_embeds=None, embeds_mask=None):
    B, T = ids.shape
    D = cfg["hidden_size"]
    pre_ln = cfg["do_layer_norm_before"]
    x = F.embedding(ids, p[P + "embed_tokens.weight"], padding_idx=cfg["pad_token_id"])
    if inputs_embeds is not None:
        x = torch.where(embeds_mask[..., None], inputs_embeds, x)
    if position_ids is None:
        position_ids = torch.arange(T).expand(B, T)
    if mask is None:
        mask = torch.ones(T, T, dtype=torch.bool).tril().expand(B, T, T)
    if P + "project_in.weight" in p:
        x = F.linear(x, p[P + "project_in.weight"])
    h = x + F.embedding(position_ids + 2, p[P + "embed_positions.weight"])
    hidden = []
    for i in range(cfg["num_hidden_layers"]):
        hidden.append(h)
        pre = f"{P}layers.{i}."
        a = F.layer_norm(h, (D,), p[pre + "self_attn_layer_norm.weight"], p[pre + "self_attn_layer_norm.bias"]) if pre_ln else h
        h = h + ref_attention(p, pre + "self_attn.", a, mask, cfg["num_attention_heads"])
        if not pre_ln:
            h = F.layer_norm(h, (D,), p[pre + "self_attn_layer_norm.weight"], p[pre + "self_attn_layer_norm.bias"])
        h = ref_ffn(p, pre, h, pre_ln)
    if pre_ln:
        h = F.layer_norm(h, (D,), p[P + "final_layer_norm.weight"], p[P + "final_layer_norm.bias"])
    if P + "project_out.weight" in p:
        h = F.linear(h, p[P + "project_out.weight"])
    hidden.append(h)
    head = p.get("lm_head.weight", p[P + "embed_tokens.weight"])
    return h @ head.t(), hidden


# ----------------------------------------------------------------- safetensors, written independently here

DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        raw = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blobs.append(raw)
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    inv = {v: k for k, v in DTYPES.items()}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        buf = bytearray(data[8 + n + b:8 + n + end])
        out[name] = torch.frombuffer(buf, dtype=torch.uint8).view(inv[e["dtype"]]).reshape(e["shape"]).clone()
    return out


# ----------------------------------------------------------------- helpers

CONFIGS = list(itertools.product([True, False], [0, 12]))  # (pre-LN, word_embed_proj_dim)


def hf_config(pre_ln, proj, tie=True):
    return {
        "model_type": "opt", "vocab_size": 37, "hidden_size": 24, "num_hidden_layers": 2,
        "num_attention_heads": 3, "ffn_dim": 40, "max_position_embeddings": 32,
        "word_embed_proj_dim": proj or 24, "do_layer_norm_before": pre_ln, "dropout": 0.0,
        "attention_dropout": 0.0, "pad_token_id": 1, "tie_word_embeddings": tie, "activation_function": "relu",
    }


def random_weights(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    d = pylamia.Decoder(cfg["vocab_size"], cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"],
                        ffn_dim=cfg["ffn_dim"], max_position_embeddings=cfg["max_position_embeddings"],
                        word_embed_proj_dim=cfg["word_embed_proj_dim"],
                        do_layer_norm_before=cfg["do_layer_norm_before"], dropout=0.0,
                        tie_word_embeddings=cfg["tie_word_embeddings"])
    # Random values everywhere (layer norms and biases too), so that every parameter matters.
    return {k: torch.randn(v.shape, generator=g) * 0.3 + (1.0 if "layer_norm.weight" in k else 0.0)
            for k, v in d.hf_state_dict().items()}


def model_dir(tmp_path, cfg, weights):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    write_safetensors(tmp_path / "model.safetensors", weights)
    return tmp_path


def random_inputs(cfg, B=3, T=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(cfg["vocab_size"], (B, T), generator=g)
    ids[0, 0] = cfg["pad_token_id"]
    mask = torch.rand(B, T, T, generator=g) < 0.6
    mask |= torch.eye(T, dtype=torch.bool)
    mask[1, 5] = False  # a row with no allowed key
    pos = torch.randint(0, cfg["max_position_embeddings"], (B, T), generator=g)
    E = cfg["word_embed_proj_dim"]
    embeds = torch.randn(B, T, E, generator=g, dtype=torch.float64)
    embeds_mask = torch.rand(B, T, generator=g) < 0.3
    return ids, pos, mask, embeds, embeds_mask


# ----------------------------------------------------------------- tests

@pytest.mark.parametrize("pre_ln,proj", CONFIGS)
def test_logits_hidden_states_and_gradients_match_reference(tmp_path, pre_ln, proj):
    cfg = hf_config(pre_ln, proj)
    w = random_weights(cfg, seed=1)
    d = pylamia.load_pretrained(str(model_dir(tmp_path, cfg, w)), dtype=torch.float64)
    d.eval()
    ids, pos, mask, embeds, emask = random_inputs(cfg)
    ref_p = {k: v.double().requires_grad_(True) for k, v in w.items()}
    emb_ref = embeds.clone().requires_grad_(True)
    emb_ours = embeds.clone().requires_grad_(True)
    ref_logits, ref_hidden = ref_forward(ref_p, cfg, ids, pos, mask, emb_ref, emask)
    out = d.forward(ids, position_ids=pos, attention_mask=mask, inputs_embeds=emb_ours, embeds_mask=emask,
                    output_hidden_states=True)
    assert out.logits.dtype == torch.float64
    torch.testing.assert_close(out.logits, ref_logits, rtol=1e-9, atol=1e-9)
    assert len(out.hidden_states) == cfg["num_hidden_layers"] + 1
    for a, b in zip(out.hidden_states, ref_hidden):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(out.last_hidden_state, ref_hidden[-1], rtol=1e-9, atol=1e-9)

    g = torch.Generator().manual_seed(5)
    wl = torch.randn(out.logits.shape, generator=g, dtype=torch.float64)
    wh = torch.randn(out.hidden_states[1].shape, generator=g, dtype=torch.float64)
    (out.logits * wl).sum().add((out.hidden_states[1] * wh).sum()).backward()
    (ref_logits * wl).sum().add((ref_hidden[1] * wh).sum()).backward()
    grads = {("lm_head.weight" if k.startswith("lm_head") else P + k): p.grad for k, p in d.named_parameters()}
    assert set(grads) == set(ref_p)
    for k, p in ref_p.items():
        assert grads[k] is not None, k
        torch.testing.assert_close(grads[k], p.grad, rtol=1e-8, atol=1e-9, msg=k)
    torch.testing.assert_close(emb_ours.grad, emb_ref.grad, rtol=1e-8, atol=1e-9)
    assert grads[P + "embed_tokens.weight"][cfg["pad_token_id"]].abs().sum() > 0 or not cfg["tie_word_embeddings"]


POLICIES = {  # KernelPolicy settings: how the decoder computes, never what
    "packed": dict(pack_padding=True, fused_attention=False),
    "padded": dict(pack_padding=False, fused_attention=False),
    "packed-fused": dict(pack_padding=True, fused_attention=True),
    "padded-fused": dict(pack_padding=False, fused_attention=True),
}


@pytest.fixture(params=list(POLICIES))
def kernel_policy(request):
    """Each setting of the process-wide kernel policy in turn, restored afterwards. The fused attention
    needs LibTorch >= 2.1 (the GPU machine's); Debian's 1.13 skips those cases."""
    wanted = POLICIES[request.param]
    if wanted["fused_attention"] and not pylamia.fused_attention_available():
        pytest.skip("scaled_dot_product_attention needs LibTorch >= 2.1")
    before = pylamia.set_kernel_policy(**wanted)
    assert pylamia.kernel_policy() == wanted
    yield request.param
    pylamia.set_kernel_policy(**before)


def test_kernel_policy_defaults_and_fused_attention_where_torch_lacks_it():
    assert pylamia.kernel_policy() == {"pack_padding": True, "fused_attention": False}
    if pylamia.fused_attention_available():
        q = torch.randn(1, 1, 3, 4)
        with pytest.raises(ValueError, match="shape|size|dimension|mask"):
            pylamia.fused_masked_attention(q, q, q, torch.ones(2, 5, 5, dtype=torch.bool))
        return
    with pytest.raises(ValueError, match="LibTorch >= 2.1"):
        pylamia.set_kernel_policy(fused_attention=True)
    assert pylamia.kernel_policy()["fused_attention"] is False  # a refused call changes nothing
    q = torch.randn(1, 1, 3, 4)
    with pytest.raises(ValueError, match="LibTorch >= 2.1"):
        pylamia.fused_masked_attention(q, q, q)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fused_masked_attention_matches_masked_attention(dtype):
    """scaled_dot_product_attention with lamia's rule for rows without a key (zeros, finite
    gradients): values and the gradients of q, k and v as masked_attention's."""
    if not pylamia.fused_attention_available():
        pytest.skip("scaled_dot_product_attention needs LibTorch >= 2.1")
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 3, 5, 8, generator=g, dtype=dtype) for _ in range(3))
    mask = torch.rand(2, 5, 5, generator=g) < 0.5
    mask[0, 1] = False  # a row with no key
    mask[1, :, 0] = True
    outs = []
    for f in (pylamia.masked_attention, pylamia.fused_masked_attention):
        a, b, c = (t.clone().requires_grad_(True) for t in (q, k, v))
        out = f(a, b, c, mask)
        (out * torch.arange(out.numel(), dtype=dtype).reshape(out.shape).sin()).sum().backward()
        outs.append((out.detach(), a.grad, b.grad, c.grad))
    tol = dict(rtol=1e-9, atol=1e-9) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-5)
    for ours, fused in zip(*outs):
        assert torch.isfinite(fused).all()
        torch.testing.assert_close(fused, ours, **tol)
    assert (outs[1][0][0, :, 1] == 0).all()


@pytest.mark.parametrize("pre_ln,proj", CONFIGS)
@pytest.mark.parametrize("some_outputs", [False, True])
@pytest.mark.parametrize("keyless_real_row", [True, False])
def test_token_mask_skips_padding_and_matches_reference(tmp_path, pre_ln, proj, some_outputs, keyless_real_row,
                                                        kernel_policy):
    """The packed forward (token_mask): the real tokens' outputs and every gradient as the reference
    computes them on the padded batch; zeros at the padding. With output_mask, the same at the
    positions asked for and zeros at the others (the earlier layers' hidden states unchanged).
    keyless_real_row: a real token may attend no key at all (its attention must give zeros); without
    one, the attention leaves the padding rows' probabilities as softmax makes them (they are dropped);
    a padding row here has no key. Under every kernel policy: packed or padded, lamia's or the fused
    attention, the results are the same."""
    cfg = hf_config(pre_ln, proj)
    w = random_weights(cfg, seed=2)
    d = pylamia.load_pretrained(str(model_dir(tmp_path, cfg, w)), dtype=torch.float64)
    d.eval()
    ids, pos, mask, embeds, emask = random_inputs(cfg, B=3, T=8, seed=4)
    real = torch.ones(3, 8, dtype=torch.bool)
    real[0, 6:] = False  # tail padding
    real[1, 2] = False   # padding inside a row
    real[2, 0] = False   # and at its start
    mask = mask & real[:, None, :]  # no real token attends padding (padding rows may attend anything)
    if not keyless_real_row:
        mask[1, 5, 5] = True  # random_inputs leaves token 5 of row 1 (real) without a key
    mask[0, 6] = False  # a padding row without a key
    assert (~mask.any(-1) & real).any() == keyless_real_row and (~mask.any(-1) & ~real).any()
    ref_p = {k: v.double().requires_grad_(True) for k, v in w.items()}
    emb_ref, emb_ours = embeds.clone().requires_grad_(True), embeds.clone().requires_grad_(True)
    ref_logits, ref_hidden = ref_forward(ref_p, cfg, ids, pos, mask, emb_ref, emask)
    wanted = real.clone()
    if some_outputs:
        wanted &= torch.rand(3, 8, generator=torch.Generator().manual_seed(9)) < 0.4
        wanted[0, 0] = True
    out = d.forward(ids, position_ids=pos, attention_mask=mask, inputs_embeds=emb_ours, embeds_mask=emask,
                    output_hidden_states=True, token_mask=real, output_mask=wanted if some_outputs else None)
    keep, final = real[..., None], wanted[..., None]
    torch.testing.assert_close(out.logits[wanted], ref_logits[wanted], rtol=1e-9, atol=1e-9)
    assert (out.logits.masked_select(~final) == 0).all() and (out.last_hidden_state.masked_select(~final) == 0).all()
    for a, b in zip(out.hidden_states[:-1], ref_hidden[:-1]):
        torch.testing.assert_close(a[real], b[real], rtol=1e-9, atol=1e-9)
        assert (a.masked_select(~keep) == 0).all()
    torch.testing.assert_close(out.hidden_states[-1][wanted], ref_hidden[-1][wanted], rtol=1e-9, atol=1e-9)
    keep = final

    g = torch.Generator().manual_seed(6)
    wl = torch.randn(out.logits.shape, generator=g, dtype=torch.float64) * keep
    (out.logits * wl).sum().backward()
    (ref_logits * wl).sum().backward()
    grads = {("lm_head.weight" if k.startswith("lm_head") else P + k): p.grad for k, p in d.named_parameters()}
    for k, p in ref_p.items():
        torch.testing.assert_close(grads[k], p.grad, rtol=1e-8, atol=1e-9, msg=k)
    torch.testing.assert_close(emb_ours.grad, emb_ref.grad, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("packed", [False, True])
def test_many_rows_fused_qkv_gemm_matches_reference(tmp_path, packed):
    """Without gradients, from 256 rows and up to D = 256, the q/k/v projections run as one GEMM on the
    concatenated weights (k and v alone when the last layer computes only some rows' q); with gradients
    they run separately (bench/qkv_fusion.py). Both: outputs as the reference's separate projections,
    every gradient too, and in float32 what the same rows in a small batch (which runs them separately)
    give, to float32 rounding. The profile shows which path ran."""
    cfg = hf_config(True, None)
    w = random_weights(cfg, seed=3)
    d = pylamia.load_pretrained(str(model_dir(tmp_path, cfg, w)), dtype=torch.float64)
    B, T = 135, 32  # 4,320 rows (4,185 real ones when packed)
    g = torch.Generator().manual_seed(8)
    ids = torch.randint(cfg["vocab_size"], (B, T), generator=g)
    real = torch.ones(B, T, dtype=torch.bool)
    wanted = real.clone()
    if packed:
        real[:, -1] = False  # still >= 4,096 rows
        wanted = real & (torch.rand(B, T, generator=g) < 0.5)
    mask = torch.ones(T, T, dtype=torch.bool).tril().expand(B, T, T) & real[:, None, :]
    ref_p = {k: v.double().requires_grad_(True) for k, v in w.items()}
    ref_logits, _ = ref_forward(ref_p, cfg, ids, mask=mask)
    D = cfg["hidden_size"]

    def forward_and_fused_weights():
        with torch.autograd.profiler.profile(record_shapes=True) as prof:
            out = d.forward(ids, attention_mask=mask, token_mask=real if packed else None,
                            output_mask=wanted if packed else None)
        rows = {e.input_shapes[1][0] for e in prof.function_events
                if e.name == "aten::linear" and len(e.input_shapes) > 1 and e.input_shapes[1][1:] == [D]}
        return out, rows & {2 * D, 3 * D}

    with torch.no_grad():
        inference, fused = forward_and_fused_weights()
    assert fused == ({2 * D, 3 * D} if packed else {3 * D})
    torch.testing.assert_close(inference.logits[wanted], ref_logits[wanted], rtol=1e-9, atol=1e-9)
    out, fused = forward_and_fused_weights()
    assert fused == set()
    torch.testing.assert_close(out.logits[wanted], ref_logits[wanted], rtol=1e-9, atol=1e-9)
    wl = torch.randn(out.logits.shape, generator=g, dtype=torch.float64) * wanted[..., None]
    (out.logits * wl).sum().backward()
    (ref_logits * wl).sum().backward()
    grads = {("lm_head.weight" if k.startswith("lm_head") else P + k): p.grad for k, p in d.named_parameters()}
    for k, p in ref_p.items():
        torch.testing.assert_close(grads[k], p.grad, rtol=1e-8, atol=1e-9, msg=k)

    d32 = pylamia.load_pretrained(str(model_dir(tmp_path, cfg, w)))
    with torch.no_grad():
        many = d32.forward(ids, attention_mask=mask).logits
        few = d32.forward(ids[:3], attention_mask=mask[:3]).logits
    # Not bit for bit: BLAS rounds the last bit differently with the number of rows as well.
    torch.testing.assert_close(many[:3], few, rtol=1e-5, atol=1e-5 * few.abs().max().item())


def test_token_mask_refuses_attention_to_padding_and_a_cache(kernel_policy):
    d = pylamia.Decoder(30, 16, 1, 2, dropout=0.0, max_position_embeddings=16)
    ids = torch.randint(30, (2, 5))
    real = torch.ones(2, 5, dtype=torch.bool)
    real[1, 3:] = False
    # Causal: right padding is never attended by a real token; left padding is.
    full = d(ids).logits
    torch.testing.assert_close(d(ids, token_mask=real).logits[real], full[real], rtol=1e-5, atol=1e-5)
    left = torch.ones(2, 5, dtype=torch.bool)
    left[0, 0] = False
    with pytest.raises(ValueError, match="attend a padding position"):
        d(ids, token_mask=left)
    with pytest.raises(ValueError, match="KV cache"):
        d(ids, token_mask=real, cache=pylamia.KVCache())
    with pytest.raises(ValueError, match="token_mask must be bool"):
        d(ids, token_mask=real.long())
    with pytest.raises(ValueError, match="outside token_mask"):
        d(ids, token_mask=real, output_mask=~real)
    # output_mask alone: every token is real.
    last = torch.zeros(2, 5, dtype=torch.bool)
    last[:, -1] = True
    torch.testing.assert_close(d(ids, output_mask=last).logits[:, -1], full[:, -1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("pre_ln,proj", CONFIGS)
def test_float32_causal_forward_matches_reference(tmp_path, pre_ln, proj):
    cfg = hf_config(pre_ln, proj, tie=False)
    w = random_weights(cfg, seed=2)
    d = pylamia.load_pretrained(str(model_dir(tmp_path, cfg, w)))
    ids = torch.randint(cfg["vocab_size"], (2, 9))
    with torch.no_grad():
        ref, _ = ref_forward(w, cfg, ids)
        torch.testing.assert_close(d(ids).logits, ref, rtol=1e-4, atol=1e-4)


def test_per_layer_attention_and_ffn_match_reference(tmp_path):
    for pre_ln in (True, False):
        cfg = hf_config(pre_ln, 0)
        w = random_weights(cfg, seed=3)
        d = pylamia.load_pretrained(str(model_dir(tmp_path / str(pre_ln), cfg, w)), dtype=torch.float64)
        p = {k: v.double() for k, v in w.items()}
        x = torch.randn(2, 6, 24, dtype=torch.float64)
        mask = torch.rand(2, 6, 6) < 0.5
        mask[0, 2] = False
        for i in range(2):
            pre = f"{P}layers.{i}."
            torch.testing.assert_close(d.layer_attention(i, x, mask), ref_attention(p, pre + "self_attn.", x, mask, 3),
                                       rtol=1e-10, atol=1e-10)
            torch.testing.assert_close(d.layer_feed_forward(i, x), ref_ffn(p, pre, x, pre_ln), rtol=1e-10, atol=1e-10)
        with pytest.raises(IndexError):
            d.layer_attention(5, x)


def test_save_pretrained_is_readable_by_an_independent_reader(tmp_path):
    torch.manual_seed(0)
    d = pylamia.Decoder(50, 16, 2, 2, word_embed_proj_dim=8, do_layer_norm_before=False, dropout=0.0,
                        max_position_embeddings=20)
    d.save_pretrained(str(tmp_path))
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["model_type"] == "opt" and cfg["word_embed_proj_dim"] == 8 and cfg["do_layer_norm_before"] is False
    w = read_safetensors(tmp_path / "model.safetensors")
    assert "lm_head.weight" not in w
    assert w[P + "embed_positions.weight"].shape == (22, 16)
    ids = torch.randint(50, (2, 5))
    with torch.no_grad():
        ref, _ = ref_forward(w, cfg, ids)
        torch.testing.assert_close(d(ids).logits, ref, rtol=1e-5, atol=1e-5)


def test_sharded_bf16_checkpoint_round_trip(tmp_path):
    torch.manual_seed(1)
    d = pylamia.Decoder(40, 16, 2, 2, dropout=0.0, max_position_embeddings=16)
    d.save_pretrained(str(tmp_path), max_shard_bytes=2000, dtype=torch.bfloat16)
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    e = pylamia.load_pretrained(str(tmp_path))
    for (k, a), (k2, b) in zip(d.named_parameters(), e.named_parameters()):
        assert k == k2
        torch.testing.assert_close(b, a.detach().to(torch.bfloat16).float(), rtol=0, atol=0)


def test_python_optimizer_trains_the_real_parameters():
    torch.manual_seed(2)
    d = pylamia.Decoder(30, 16, 1, 2, dropout=0.0, max_position_embeddings=16)
    d.train()
    params = d.parameters()
    assert all(p.requires_grad for p in params)
    opt = torch.optim.Adam(params, lr=1e-2)
    ids = torch.randint(30, (4, 8))
    losses = []
    for _ in range(30):
        opt.zero_grad()
        logits = d(ids).logits
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, 30), ids[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    # The module sees the trained values.
    sd = d.state_dict()
    torch.testing.assert_close(sd["layers.0.fc1.weight"], params[[k for k, _ in d.named_parameters()].index("layers.0.fc1.weight")].detach())


def test_kv_cache_from_python_matches_full_forward():
    torch.manual_seed(3)
    d = pylamia.Decoder(30, 16, 2, 2, dropout=0.0, max_position_embeddings=16)
    d.eval()
    ids = torch.randint(30, (2, 6))
    with torch.no_grad():
        full = d(ids).logits
        cache = pylamia.KVCache()
        parts = [d(ids[:, :3], cache=cache).logits]
        for t in range(3, 6):
            parts.append(d(ids[:, t:t + 1], cache=cache).logits)
    assert cache.length == 6
    torch.testing.assert_close(torch.cat(parts, 1), full, rtol=1e-5, atol=1e-5)


def test_lora_from_python(tmp_path):
    torch.manual_seed(4)
    d = pylamia.Decoder(30, 16, 2, 2, dropout=0.0, max_position_embeddings=16)
    d.eval()
    ids = torch.randint(30, (2, 5))
    base = d(ids).logits.detach()
    d.apply_lora(4, alpha=8.0, target_modules=["q", "v", "fc2"])
    trainable = [k for k, p in d.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_" in k for k in trainable)
    with torch.no_grad():
        for k, p in d.named_parameters():
            if "lora_B" in k:
                p.normal_()
    adapted = d(ids).logits.detach()
    assert not torch.allclose(adapted, base)
    d.merge_lora()
    torch.testing.assert_close(d(ids).logits.detach(), adapted, rtol=1e-4, atol=1e-4)
    d.unmerge_lora()
    d.save_lora(str(tmp_path / "adapter_model.safetensors"))
    names = pylamia.load_safetensors(str(tmp_path / "adapter_model.safetensors"))
    assert "base_model.model.model.decoder.layers.1.fc2.lora_A.weight" in names


def test_safetensors_from_python_and_errors(tmp_path):
    t = {"a": torch.randn(3, 4), "b": torch.arange(5), "c": torch.randn(2).half()}
    pylamia.save_safetensors(str(tmp_path / "x.safetensors"), t, {"k": "v"})
    back = read_safetensors(tmp_path / "x.safetensors")
    for k in t:
        assert torch.equal(back[k], t[k])
    write_safetensors(tmp_path / "y.safetensors", t)
    back = pylamia.load_safetensors(str(tmp_path / "y.safetensors"))
    for k in t:
        assert torch.equal(back[k], t[k])
    assert pylamia.load_safetensors_metadata(str(tmp_path / "x.safetensors")) == {"k": "v"}
    raw = (tmp_path / "y.safetensors").read_bytes()
    (tmp_path / "z.safetensors").write_bytes(raw[:-3])
    with pytest.raises(ValueError, match="z.safetensors"):
        pylamia.load_safetensors(str(tmp_path / "z.safetensors"))
    with pytest.raises(OSError):
        pylamia.load_safetensors(str(tmp_path / "missing.safetensors"))


def test_bad_arguments_raise_value_error():
    d = pylamia.Decoder(30, 16, 1, 2, max_position_embeddings=16)
    with pytest.raises(ValueError, match="attention_mask"):
        d(torch.zeros(1, 4, dtype=torch.long), attention_mask=torch.ones(1, 4, 3, dtype=torch.bool))
    with pytest.raises(ValueError):
        pylamia.Decoder(30, 15, 1, 2)
    with pytest.raises(ValueError, match="missing tensor"):
        d.load_hf_state_dict({})


def test_to_dtype_and_masked_attention():
    d = pylamia.Decoder(30, 16, 1, 2, max_position_embeddings=16)
    d.to(dtype=torch.float64)
    assert d.dtype == torch.float64
    assert all(p.dtype == torch.float64 for p in d.parameters())
    q = torch.randn(1, 1, 3, 4)
    m = torch.ones(1, 3, 3, dtype=torch.bool)
    m[0, 2] = False
    out = pylamia.masked_attention(q, q, q, m)
    assert out[0, 0, 2].abs().max() == 0
    torch.testing.assert_close(out[0, 0, :2], (torch.softmax(q @ q.transpose(-1, -2), -1) @ q)[0, 0, :2])


def test_lora_logits_and_adapter_gradients_match_reference(tmp_path):
    cfg = hf_config(True, 12)
    w = random_weights(cfg, seed=7)
    d = pylamia.load_pretrained(str(model_dir(tmp_path, cfg, w)), dtype=torch.float64)
    d.apply_lora(3, alpha=6.0, target_modules=["q_proj", "fc1"])
    g = torch.Generator().manual_seed(8)
    with torch.no_grad():
        for k, p in d.named_parameters():
            if "lora_B" in k:
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.2)
    lora = dict(d.named_parameters())
    ref_p = {k: v.double() for k, v in w.items()}
    ref_ab = {}
    for k in list(lora):
        if ".lora_A" in k:
            base = k[: -len(".lora_A")]
            a = lora[k].detach().clone().requires_grad_(True)
            b = lora[base + ".lora_B"].detach().clone().requires_grad_(True)
            ref_ab[base] = (a, b)
            ref_p[P + base + ".weight"] = ref_p[P + base + ".weight"] + (6.0 / 3) * b @ a  # merged form
    ids = torch.randint(cfg["vocab_size"], (2, 6))
    ours = d(ids).logits
    ref, _ = ref_forward(ref_p, cfg, ids)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-9)
    wl = torch.randn(ours.shape, generator=g, dtype=torch.float64)
    (ours * wl).sum().backward()
    (ref * wl).sum().backward()
    assert len(ref_ab) == 2 * 2
    for base, (a, b) in ref_ab.items():
        torch.testing.assert_close(lora[base + ".lora_A"].grad, a.grad, rtol=1e-8, atol=1e-10, msg=base)
        torch.testing.assert_close(lora[base + ".lora_B"].grad, b.grad, rtol=1e-8, atol=1e-10, msg=base)
    assert all(p.grad is None for k, p in d.named_parameters() if ".lora_" not in k)
