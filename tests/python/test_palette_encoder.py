"""PaletteEncoder from Python: autograd outputs, real parameters, a notebook training loop,
the trainer, palette export and errors."""
import math

import pytest
import torch

import pylamia
from lamia_testing import assert_notebook_loop_learns, make_catalog, tiny

def test_forward_returns_loss_parts_and_palettes_with_autograd():
    enc = tiny(make_catalog())
    out = enc.forward([(0, 0), (1, 2), (0, 1)])
    for k in ("loss", "generation_loss", "intra_loss", "inter_loss"):
        assert out[k].shape == () and out[k].requires_grad, k
    assert out["palettes"].shape == (2, 3, 32)
    assert out["items"] == [0, 1]
    assert out["label_tokens"] > 0
    out["loss"].backward()
    grads = [p.grad for p in enc.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    torch.testing.assert_close(out["loss"], out["generation_loss"] + 0.1 * (out["intra_loss"] + out["inter_loss"]))


def test_fast_and_reference_paths_agree():
    enc = tiny(make_catalog())
    enc.eval()
    samples = [(0, 0), (3, 2), (0, 1), (7, 0)]
    fast = enc.forward(samples, path="fast")
    ref = enc.forward(samples, path="reference")
    torch.testing.assert_close(fast["loss"], ref["loss"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast["palettes"], ref["palettes"], rtol=1e-5, atol=1e-5)


def test_parameters_are_the_real_tensors_and_a_notebook_loop_trains():
    enc = tiny(make_catalog())
    params = enc.parameters()
    named = enc.named_parameters()
    assert "decoder.embed_tokens.weight" in named
    assert sum(p.numel() for p in params) == sum(p.numel() for p in named.values())
    before = enc.encode([0]).detach().clone()
    with torch.no_grad():
        named["decoder.embed_tokens.weight"].mul_(2.0)
    assert not torch.allclose(enc.encode([0]), before)

    assert_notebook_loop_learns(enc)


def test_collate_exposes_the_batch_tensors():
    enc = tiny(make_catalog())
    b = enc.collate([(0, 0), (1, 1)], with_full=True)
    full, dec = b["full"], b["decode"]
    assert full["input_ids"].dtype == torch.int64
    mask = pylamia.palette_attention_mask(full["block_types"])
    assert mask.shape == (2, full["input_ids"].shape[1], full["input_ids"].shape[1])
    L = enc.palette_size
    assert torch.equal(dec["block_types"][:, :L], torch.full((2, L), 3))
    # decode keeps the positions of the full layout
    assert torch.equal(dec["position_ids"][:, 0], b["full_ldp_index"][:, 0])


def test_trainer_export_and_load(tmp_path):
    catalog = make_catalog(40)
    enc = tiny(catalog)
    trainer = pylamia.PaletteTrainer(enc, batch_size=16, learning_rate=2e-3, epochs=3, validation_fraction=0.1,
                                     eval_every=0, patience=0, log_every=0, checkpoint_path=str(tmp_path / "ck.pt"))
    assert len(trainer.validation_items) == 4
    before = trainer.evaluate()
    result = trainer.train()
    assert result["steps"] == trainer.step > 0
    assert result["stop_reason"] == "epochs done"
    assert len(result["validation_history"]) == 3
    after = trainer.evaluate()
    assert after["loss"] < before["loss"]
    assert (tmp_path / "ck.pt").exists()
    acc = enc.reconstruction_accuracy(trainer.validation_items)
    assert 0.0 <= acc["token_accuracy"] <= 1.0 and len(acc["per_attribute"]) == 3

    n = enc.export_palettes(str(tmp_path / "p.bin"), batch_size=7)
    assert n == 40
    ids, palettes = pylamia.load_palettes(str(tmp_path / "p.bin"))
    assert ids == enc.item_ids and ids[0] == "it0"
    assert isinstance(palettes, torch.Tensor) and palettes.dtype == torch.float32
    assert palettes.shape == (40, 3, 32)
    torch.testing.assert_close(palettes, enc.encode_items())


def test_save_and_load_palettes_from_python(tmp_path):
    p = torch.randn(5, 2, 4)
    pylamia.save_palettes(str(tmp_path / "x.bin"), ["a", "b", "c", "d", "e"], p)
    ids, q = pylamia.load_palettes(str(tmp_path / "x.bin"))
    assert ids == ["a", "b", "c", "d", "e"]
    assert torch.equal(p, q)
    data = bytearray((tmp_path / "x.bin").read_bytes())
    data[-6] ^= 0x10
    (tmp_path / "y.bin").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        pylamia.load_palettes(str(tmp_path / "y.bin"))
    with pytest.raises(OSError):
        pylamia.load_palettes(str(tmp_path / "missing.bin"))


def test_errors_reach_python_as_value_and_index_errors():
    catalog = make_catalog(5)
    with pytest.raises(ValueError, match="palette_size"):
        tiny(catalog, palette_size=0)
    with pytest.raises(ValueError, match="num_content_attributes"):
        pylamia.PaletteEncoder.from_scratch(catalog, 4, vocab_size=300, hidden_size=32, num_layers=1, num_heads=2)
    enc = tiny(catalog)
    with pytest.raises(IndexError):
        enc.forward([(99, 0)])
    with pytest.raises(IndexError):
        enc.forward([(0, 3)])
    with pytest.raises(ValueError, match="path"):
        enc.forward([(0, 0)], path="slow")
    with pytest.raises(ValueError, match="reduction"):
        tiny(catalog, reduction="avg")


def test_from_scratch_takes_options_objects_dicts_and_keywords_alike():
    catalog = make_catalog(8)
    model = pylamia.ScratchModelOptions(vocab_size=300, hidden_size=32, num_layers=1, num_heads=2, seed=3, dropout=0.0)
    encoder = pylamia.PaletteEncoderOptions(palette_size=3, task_routing="one_position")
    encoder.losses.gamma = 0.5
    a = pylamia.PaletteEncoder.from_scratch(catalog, 1, encoder=encoder, model=model)
    b = pylamia.PaletteEncoder.from_scratch(catalog, 1, encoder=encoder.to_dict(), model=model.to_dict())
    c = pylamia.PaletteEncoder.from_scratch(catalog, 1, palette_size=3, task_routing="one_position", gamma=0.5,
                                            vocab_size=300, hidden_size=32, num_layers=1, num_heads=2, seed=3,
                                            dropout=0.0)
    # Same options, same seed: the same weights and the same losses.
    for x in (b, c):
        for (name, p), q in zip(a.named_parameters().items(), x.named_parameters().values()):
            assert torch.equal(p, q), name
    outs = [enc.forward([(0, 0), (1, 1)]) for enc in (a, c)]
    assert torch.equal(outs[0]["loss"], outs[1]["loss"])
    assert outs[0]["palettes"].shape[1] == 3
    # A keyword overrides the object; an unknown keyword names itself.
    d = pylamia.PaletteEncoder.from_scratch(catalog, 1, encoder=encoder, model=model, palette_size=2)
    assert d.forward([(0, 0)])["palettes"].shape[1] == 2
    with pytest.raises(TypeError, match="palete_size"):
        pylamia.PaletteEncoder.from_scratch(catalog, 1, model=model, palete_size=2)
    with pytest.raises(ValueError, match="hidden_size"):
        pylamia.PaletteEncoder.from_scratch(catalog, 1, model=dict(model.to_dict(), hidden_size=0))


def test_from_tokenizer_uses_the_given_tokenizer():
    catalog = make_catalog(8)
    texts = [f"{name}: {catalog.value(i, name)}" for i in range(len(catalog)) for name in catalog.attribute_names]
    tok = pylamia.train_bpe(texts, vocab_size=300)
    before = tok.vocab_size
    enc = pylamia.PaletteEncoder.from_tokenizer(catalog, tok, 1, palette_size=3, hidden_size=32, num_layers=1,
                                                num_heads=2)
    assert tok.vocab_size > before  # the palette tokens were added to it
    assert enc.forward([(0, 0)])["palettes"].shape[1] == 3
