"""pylamia's LM backbone of the generative recommender: the code tokens after a text vocabulary, the
text-token alignment batch (checked against a hand-built one and its loss against a direct PyTorch
cross-entropy), a user's checkpoint grown by the code tokens with LoRA, two-phase training, decoding."""
import pytest
import torch

import pylamia

N = 24       # items; item i has codes (i % 8, i // 8)
TEXT = 40    # text vocabulary of the tests' LM: ids 0..39, bos 2, pad 1


def table():
    return pylamia.SemanticIdTable.from_codes(torch.tensor([[i % 8, i // 8] for i in range(N)]))


def item_text():
    """Item i's text names its codes: (4 + i % 8, 20 + i // 8, 12)."""
    return [[4 + i % 8, 20 + i // 8, 12] for i in range(N)]


def examples(users=60):
    out = []
    for u in range(users):
        start = (u * 7) % N
        out.append(([(start + t) % N for t in range(4)], (start + 4) % N))
    return out


def lm_options(**extra):
    fields = dict(backbone="lm", hidden_size=32, num_layers=2, num_heads=4, dropout=0.0, max_history_items=8,
                  align_text_tokens=4)
    fields.update(extra)
    return pylamia.RecommenderModelOptions(**fields)


def test_vocabulary_after_text():
    t = table()
    v = pylamia.CodeVocabulary.after_text(t, TEXT, 2, 1)
    assert (v.text_vocab_size, v.first_code_token, v.bos, v.pad) == (TEXT, TEXT, 2, 1)
    assert v.size == TEXT + 8 + 3 + 1
    assert v.token(0, 0) == TEXT and v.token(1, 2) == TEXT + 8 + 2
    assert v != pylamia.CodeVocabulary.for_table(t)
    assert v.to_dict() == {"level_sizes": [8, 3, 1], "text_vocab_size": TEXT, "bos": 2, "pad": 1}
    h = pylamia.encode_histories(t, v, [[0, 9], [5]])
    assert h.tokens[1].tolist() == [1, 1, 1, 2, v.token(0, 5), v.token(1, 0), v.token(2, 0)]
    h2 = pylamia.encode_histories(t, v, [[0]], item_text=item_text(), item_text_tokens=2)
    assert h2.tokens[0].tolist() == [2, 4, 20, v.token(0, 0), v.token(1, 0), v.token(2, 0)]
    with pytest.raises(ValueError):
        pylamia.CodeVocabulary.after_text([3, 3], 10, 10, 1)


def test_alignment_batch_matches_a_hand_built_one_and_a_direct_cross_entropy():
    t = table()
    v = pylamia.CodeVocabulary.after_text(t, TEXT, 2, 1)
    text = item_text()
    b = pylamia.make_alignment_batch(t, v, text, [0, 9], max_text_tokens=2)
    c0 = [v.token(0, 0), v.token(1, 0), v.token(2, 0)]
    c9 = [v.token(0, 1), v.token(1, 1), v.token(2, 0)]
    assert b["input_ids"].tolist() == [[2, 4, 20] + c0[:2], [2, 5, 21] + c9[:2]]
    assert b["labels"].tolist() == [[-100, -100] + c0, [-100, -100] + c9]
    assert b["label_count"] == 6
    model = pylamia.make_recommender(v, lm_options(), seed=3)
    model.eval()
    loss, _, labels = pylamia.recommender_loss(model, b)
    assert labels == 6
    logits = model(b["input_ids"], position_ids=b["position_ids"], attention_mask=b["attention_mask"]).logits
    ref = torch.nn.functional.cross_entropy(logits.reshape(-1, v.size), b["labels"].reshape(-1), ignore_index=-100)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)


def test_checkpoint_grown_with_lora_two_phases_then_beam_search(tmp_path):
    t = table()
    v = pylamia.CodeVocabulary.after_text(t, TEXT, 2, 1)
    torch.manual_seed(0)
    text_lm = pylamia.Decoder(TEXT, 32, 2, 4, dropout=0.0, max_position_embeddings=128)
    text_lm.save_pretrained(str(tmp_path / "opt"))
    old = dict(text_lm.named_parameters())["embed_tokens.weight"].detach().clone()
    model = pylamia.make_recommender(v, lm_options(pretrained=str(tmp_path / "opt"), lora_rank=4), seed=1)
    emb = dict(model.named_parameters())["embed_tokens.weight"]
    assert emb.shape[0] == v.size and torch.equal(emb[:TEXT].detach(), old)
    new_rows = emb[TEXT:].detach().clone()
    ex = examples()
    r = pylamia.train_recommender(model, t, ex[:48], ex[48:], vocab=v, item_text=item_text(), batch_size=16,
                                  align_epochs=2, align_text_tokens=4, max_history_items=8, epochs=4,
                                  learning_rate=1e-2, patience=0, log_every=0)
    assert r["steps"] == 2 * 5 + 2 * 3  # phase 1: (48 + 24) / 16 -> 5 batches; phase 2: 48 / 16 -> 3
    after = dict(model.named_parameters())["embed_tokens.weight"].detach()
    assert torch.equal(after[:TEXT], old) and not torch.equal(after[TEXT:], new_rows)
    pylamia.save_recommender(tmp_path / "rec", model, t, lm_options(pretrained=str(tmp_path / "opt"), lora_rank=4),
                             vocab=v)
    loaded, v2, o2 = pylamia.load_recommender(tmp_path / "rec", t)
    assert v2 == v and o2.backbone == "lm" and o2.lora_rank == 4
    trie = pylamia.DeviceTrie(t, v)
    histories = [h for h, _ in ex[48:]]
    r1 = pylamia.beam_search(model, trie, histories, top_k=N, beam_width=N, max_history_items=8)
    r2 = pylamia.beam_search(loaded, trie, histories, top_k=N, beam_width=N, max_history_items=8)
    for row in r1["items"].tolist():
        assert sorted(row) == list(range(N))  # every item once, no text token decoded
    assert torch.equal(r1["items"], r2["items"])
    exact = pylamia.score_all_items(model, trie, histories, max_history_items=8)
    assert torch.allclose(r1["scores"], exact.sort(dim=1, descending=True).values, atol=1e-3)
    with pytest.raises(ValueError, match="weight_decay"):
        pylamia.train_recommender(model, t, ex[:48], vocab=v, item_text=item_text(), weight_decay=0.1, epochs=1)
