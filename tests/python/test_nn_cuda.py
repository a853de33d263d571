"""pylamia's decoder on CUDA tensors: the same results as on the CPU (logits, hidden states,
gradients), a Python optimizer on the GPU, KV cache, float16, HF folders loaded onto the GPU.

Skipped where CUDA is not available; LAMIA_EXPECT_CUDA=1 (set by scripts/device-check.sh on a GPU
machine) makes a missing CUDA a failure, LAMIA_CUDA_TESTS_ON_CPU=1 runs the tests with the CPU
standing in for the GPU (a dry run of the test code; float16 parts are left out there).
"""

import pytest
import torch

import pylamia

from lamia_testing import DEVICE, DRY_RUN, assert_grad_close, needs_cuda, norm_rel, rel, require_cuda_where_expected


def test_cuda_is_visible_where_expected():
    require_cuda_where_expected()


def make_decoder(seed, pre_ln=True, proj=0, tie=True):
    torch.manual_seed(seed)
    d = pylamia.Decoder(97, 64, 3, 4, ffn_dim=96, max_position_embeddings=64, word_embed_proj_dim=proj,
                        do_layer_norm_before=pre_ln, dropout=0.0, tie_word_embeddings=tie)
    with torch.no_grad():
        for p in d.parameters():
            p.add_(torch.randn(p.shape) * 0.1)  # every parameter away from its init
    return d


def twin(d):
    """A copy of d's weights on DEVICE (through state_dict, which copies across devices)."""
    o = d.options
    c = pylamia.Decoder(o.vocab_size, o.hidden_size, o.num_layers, o.num_heads, ffn_dim=o.ffn_dim,
                        max_position_embeddings=o.max_position_embeddings, word_embed_proj_dim=o.word_embed_proj_dim,
                        do_layer_norm_before=o.do_layer_norm_before, dropout=0.0,
                        tie_word_embeddings=o.tie_word_embeddings)
    c.to(device=DEVICE)
    c.load_state_dict(d.state_dict())
    return c


def left_padding(T, pads):
    valid = torch.ones(len(pads), T, dtype=torch.bool)
    for b, n in enumerate(pads):
        valid[b, :n] = False
    mask = torch.ones(T, T, dtype=torch.bool).tril()[None] & valid[:, None, :]
    pos = (valid.long().cumsum(1) - 1).clamp(min=0)
    return mask, pos


@needs_cuda
@pytest.mark.parametrize("pre_ln,proj", [(True, 0), (False, 32)])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("inputs_on_device", [True, False])
def test_cuda_forward_and_gradients_equal_cpu(pre_ln, proj, masked, inputs_on_device):
    cpu = make_decoder(1, pre_ln, proj)
    gpu = twin(cpu)
    assert gpu.device.type == torch.device(DEVICE).type
    torch.manual_seed(2)
    ids = torch.randint(0, 97, (3, 10))
    kw = {}
    if masked:
        kw["attention_mask"], kw["position_ids"] = left_padding(10, [0, 3, 5])
    a = cpu.forward(ids, output_hidden_states=True, **kw)
    kw_dev = {k: v.to(DEVICE) for k, v in kw.items()} if inputs_on_device else kw
    b = gpu.forward(ids.to(DEVICE) if inputs_on_device else ids, output_hidden_states=True, **kw_dev)
    assert b.logits.device.type == torch.device(DEVICE).type
    assert rel(b.logits, a.logits) < 1e-4
    assert len(b.hidden_states) == len(a.hidden_states) == 4
    errors = [rel(x, y) for x, y in zip(b.hidden_states, a.hidden_states)]
    assert max(errors) < 1e-4, errors
    w = torch.randn(a.logits.shape)
    (a.logits * w).sum().backward()
    (b.logits * w.to(DEVICE)).sum().backward()
    ga = dict(cpu.named_parameters())
    scale = max(g.grad.abs().max().item() for g in ga.values())
    for name, p in gpu.named_parameters():
        assert p.grad is not None and p.grad.device.type == torch.device(DEVICE).type, name
        assert_grad_close(name, p.grad, ga[name].grad, scale)


@needs_cuda
def test_python_optimizer_trains_on_cuda():
    d = make_decoder(3)
    d.to(device=DEVICE)
    d.train()
    opt = torch.optim.Adam(d.parameters(), lr=3e-3)
    torch.manual_seed(4)
    ids = torch.randint(0, 97, (8, 12), device=DEVICE)
    losses = []
    for _ in range(30):
        logits = d.forward(ids).logits
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 97), ids[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
    assert all(p.device.type == torch.device(DEVICE).type for p in d.parameters())


@needs_cuda
def test_kv_cache_on_cuda_matches_full_forward_and_reorders():
    d = make_decoder(5, pre_ln=False, proj=32)
    gpu = twin(d)
    gpu.eval()
    torch.manual_seed(6)
    ids = torch.randint(0, 97, (3, 9), device=DEVICE)
    with torch.no_grad():
        full = gpu.forward(ids).logits
        cache = pylamia.KVCache()
        parts = [gpu.forward(ids[:, :4], cache=cache).logits]
        for t in range(4, 9):
            parts.append(gpu.forward(ids[:, t:t + 1], cache=cache).logits)
        assert cache.length == 9
        assert cache.keys[0].device.type == torch.device(DEVICE).type
        assert rel(torch.cat(parts, 1), full) < 1e-4
        # Beam bookkeeping with CPU indices.
        parents = torch.tensor([2, 2, 0])
        cache.reorder(parents)
        nxt = torch.randint(0, 97, (3, 1), device=DEVICE)
        step = gpu.forward(nxt, cache=cache).logits
        ref = gpu.forward(torch.cat([ids[parents.to(DEVICE)], nxt], 1)).logits[:, -1:]
        assert rel(step, ref) < 1e-4


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_reduced_precision_on_cuda_is_close_to_float32(dtype):
    if DRY_RUN and dtype == torch.float16:
        pytest.skip("float16 on the CPU: left out of the dry run")
    d = make_decoder(7, pre_ln=True, proj=32)
    ref = twin(d)
    low = twin(d)
    low.to(dtype=dtype)
    assert low.dtype == dtype
    ref.eval()
    low.eval()
    torch.manual_seed(8)
    ids = torch.randint(0, 97, (3, 12), device=DEVICE)
    mask, pos = left_padding(12, [0, 4, 11])
    with torch.no_grad():
        a = ref.forward(ids, attention_mask=mask, position_ids=pos).logits
        b = low.forward(ids, attention_mask=mask, position_ids=pos).logits
        c = low.forward(ids).logits
        c_ref = ref.forward(ids).logits
    assert b.dtype == dtype
    assert torch.isfinite(b).all() and torch.isfinite(c).all()
    tol = 1e-2 if dtype == torch.float16 else 5e-2
    assert norm_rel(b, a) < tol
    assert norm_rel(c, c_ref) < tol


@needs_cuda
@pytest.mark.parametrize("dtype", [None, "float16"])
def test_load_pretrained_onto_cuda(tmp_path, dtype):
    if DRY_RUN and dtype == "float16":
        pytest.skip("float16 on the CPU: left out of the dry run")
    d = make_decoder(9, pre_ln=False, proj=32, tie=False)
    d.eval()
    d.save_pretrained(str(tmp_path / "m"), max_shard_bytes=20000)
    g = pylamia.load_pretrained(str(tmp_path / "m"), dtype=dtype, device=DEVICE)
    assert g.device.type == torch.device(DEVICE).type
    g.eval()
    ids = torch.randint(0, 97, (2, 7))
    with torch.no_grad():
        a = d.forward(ids).logits
        b = g.forward(ids.to(DEVICE)).logits
    if dtype is None:
        assert rel(b, a) < 1e-4
    else:
        assert b.dtype == torch.float16
        assert norm_rel(b, a) < 1e-2
    # Saving from the GPU and reading back on the CPU gives the weights exactly (float32 case).
    if dtype is None:
        g.save_pretrained(str(tmp_path / "back"))
        back = pylamia.load_pretrained(str(tmp_path / "back"))
        for name, t in d.state_dict().items():
            assert torch.equal(back.state_dict()[name], t), name
        g.save(str(tmp_path / "own.safetensors"))
        assert torch.equal(pylamia.load_safetensors(str(tmp_path / "own.safetensors"))["embed_tokens.weight"],
                           d.state_dict()["embed_tokens.weight"])


@needs_cuda
def test_masked_attention_on_cuda_tensors():
    torch.manual_seed(10)
    q, k, v = (torch.randn(2, 2, 4, 8, device=DEVICE, requires_grad=True) for _ in range(3))
    mask = torch.ones(2, 4, 4, dtype=torch.bool, device=DEVICE).tril()
    mask[1] = False
    out = pylamia.masked_attention(q, k, v, mask)
    assert out.device.type == torch.device(DEVICE).type
    assert out[1].abs().max().item() == 0.0
    out.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))
    ref = pylamia.masked_attention(q.detach().cpu(), k.detach().cpu(), v.detach().cpu(), mask.cpu())
    assert rel(out, ref) < 1e-5


@needs_cuda
def test_lora_on_cuda():
    d = make_decoder(11)
    d.to(device=DEVICE)
    d.apply_lora(4, target_modules=["q", "v"])
    trainable = [p for p in d.parameters() if p.requires_grad]
    assert trainable and all(p.device.type == torch.device(DEVICE).type for p in trainable)
    ids = torch.randint(0, 97, (2, 6), device=DEVICE)
    d.forward(ids).logits.pow(2).mean().backward()
    assert all(p.grad is not None for p in trainable)
    torch.optim.SGD(trainable, lr=0.5).step()  # lora_B leaves zero: the merge below changes weights
    d.eval()
    with torch.no_grad():
        before = d.forward(ids).logits
        d.merge_lora()
        assert rel(d.forward(ids).logits, before) < 1e-4
