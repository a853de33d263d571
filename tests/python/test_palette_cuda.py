"""pylamia's palette encoder on CUDA: forward and gradients equal the CPU's, a notebook loop and
PaletteTrainer(device="cuda") train, checkpoints move between devices, the loss functions and the
palette mask take CUDA tensors.

Skipped where CUDA is not available; LAMIA_EXPECT_CUDA=1 (set by scripts/device-check.sh on a GPU
machine) makes a missing CUDA a failure, LAMIA_CUDA_TESTS_ON_CPU=1 runs the tests with the CPU
standing in for the GPU (a dry run of the test code).
"""

import pytest
import torch

import pylamia

from lamia_testing import (DEVICE, DEVICE_TYPE, assert_grad_close, assert_notebook_loop_learns, make_catalog,
                           needs_cuda, rel, require_cuda_where_expected, tiny)


def on_device(t):
    return t.device.type == DEVICE_TYPE


def test_cuda_is_visible_where_expected():
    require_cuda_where_expected()


@needs_cuda
@pytest.mark.parametrize("path", ["fast", "reference"])
def test_forward_and_gradients_on_cuda_equal_cpu(path):
    catalog = make_catalog()
    cpu, gpu = tiny(catalog), tiny(catalog)  # same seed: same tokenizer and weights
    gpu.to(DEVICE)
    assert all(on_device(p) for p in gpu.parameters())
    samples = [(0, 0), (1, 2), (0, 1), (5, 0), (9, 2)]
    a = cpu.forward(samples, path=path)
    b = gpu.forward(samples, path=path)
    assert on_device(b["loss"]) and on_device(b["palettes"])
    assert b["items"] == a["items"]
    for k in ("loss", "generation_loss", "intra_loss", "inter_loss"):
        assert abs(b[k].item() - a[k].item()) <= 1e-4 * abs(a[k].item()) + 1e-6, k
    assert rel(b["palettes"], a["palettes"]) < 1e-4
    a["loss"].backward()
    b["loss"].backward()
    ga = cpu.named_parameters()
    scale = max(g.grad.abs().max().item() for g in ga.values())
    for name, p in gpu.named_parameters().items():
        assert on_device(p.grad), name
        assert_grad_close(name, p.grad, ga[name].grad, scale)
    torch.testing.assert_close(gpu.encode([0, 3]).cpu(), cpu.encode([0, 3]), rtol=1e-4, atol=1e-5)
    pal = gpu.encode_items()
    assert pal.device.type == "cpu"
    torch.testing.assert_close(pal, cpu.encode_items(), rtol=1e-4, atol=1e-5)


@needs_cuda
def test_notebook_loop_trains_on_cuda():
    enc = tiny(make_catalog())
    enc.to(DEVICE)
    assert_notebook_loop_learns(enc)


@needs_cuda
def test_trainer_on_cuda_and_checkpoint_resumed_on_cpu(tmp_path):
    catalog = make_catalog(40)
    enc = tiny(catalog)
    ck = str(tmp_path / "ck.pt")
    trainer = pylamia.PaletteTrainer(enc, batch_size=16, learning_rate=2e-3, epochs=3, validation_fraction=0.1,
                                     eval_every=0, patience=0, restore_best=False, log_every=0, checkpoint_path=ck,
                                     device=DEVICE)
    assert all(on_device(p) for p in enc.parameters())
    before = trainer.evaluate()
    result = trainer.train()
    assert result["steps"] == trainer.step > 0
    assert trainer.evaluate()["loss"] < before["loss"]
    n = enc.export_palettes(str(tmp_path / "p.bin"), batch_size=7)
    ids, palettes = pylamia.load_palettes(str(tmp_path / "p.bin"))
    assert n == 40 and ids == enc.item_ids
    torch.testing.assert_close(palettes, enc.encode_items())
    # The CUDA checkpoint loads into a CPU trainer of the same setup: same step, same weights.
    other = tiny(catalog, seed=5)
    cpu_trainer = pylamia.PaletteTrainer(other, batch_size=16, learning_rate=2e-3, epochs=3, validation_fraction=0.1,
                                         eval_every=0, patience=0, log_every=0, device="cpu")
    cpu_trainer.load_checkpoint(ck)
    assert cpu_trainer.step == trainer.step
    theirs = enc.named_parameters()
    for name, p in other.named_parameters().items():
        assert p.device.type == "cpu", name
        assert torch.equal(p, theirs[name].cpu()), name
    # And a CPU encoder's weights saved with save() load into a CUDA encoder, which stays on CUDA.
    other.save(str(tmp_path / "enc.pt"))
    third = tiny(catalog, seed=6)
    third.to(DEVICE)
    third.load(str(tmp_path / "enc.pt"))
    assert on_device(third.parameters()[0])
    torch.testing.assert_close(third.encode_items(), other.encode_items(), rtol=1e-4, atol=1e-5)


@needs_cuda
def test_losses_and_mask_take_cuda_tensors(tmp_path):
    torch.manual_seed(0)
    p = torch.randn(5, 3, 8)
    pd = p.to(DEVICE).requires_grad_(True)
    for fn in (pylamia.intra_palette_loss, pylamia.inter_palette_loss):
        a = fn(p)
        b = fn(pd)
        assert on_device(b)
        assert abs(a.item() - b.item()) <= 1e-5 * abs(a.item()) + 1e-7
        b.backward()
    assert torch.isfinite(pd.grad).all()
    logits = torch.randn(2, 4, 11)
    labels = torch.tensor([[1, -100, 3, 4], [-100, -100, 0, 10]])
    a = pylamia.palette_generation_loss(logits, labels)
    b = pylamia.palette_generation_loss(logits.to(DEVICE), labels.to(DEVICE))
    assert on_device(b) and abs(a.item() - b.item()) < 1e-5
    types = torch.tensor([[1, 1, 2, 2, 3, 3, 4, 4, 0]])
    m = pylamia.palette_attention_mask(types.to(DEVICE))
    assert torch.equal(m.cpu(), pylamia.palette_attention_mask(types))
    # Palettes on the GPU are written as float32 on the CPU.
    pylamia.save_palettes(str(tmp_path / "p.bin"), ["a", "b", "c", "d", "e"], p.to(DEVICE))
    ids, q = pylamia.load_palettes(str(tmp_path / "p.bin"))
    assert ids == ["a", "b", "c", "d", "e"] and q.device.type == "cpu"
    assert torch.equal(q, p)
