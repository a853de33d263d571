"""pylamia's recommend bindings: code tokens, the generative recommender trained by a notebook's own
torch.optim loop, trie-constrained beam search against exact scoring, constraints, SASRec, files, errors."""
import pytest
import torch

import pylamia

N = 24  # items; item i has codes (i % 8, i // 8): 24 distinct IDs, no collisions


def cyclic_table(n=N):
    return pylamia.SemanticIdTable.from_codes(torch.tensor([[i % 8, i // 8] for i in range(n)]))


def cyclic_examples(users=216, n=N):
    """(history, target) pairs whose next item is (previous + 1) % n; every start with lengths 2 to 4."""
    out = []
    for u in range(users):
        start, length = (u * 7) % n, 2 + (u // n) % 3
        out.append(([(start + t) % n for t in range(length)], (start + length) % n))
    return out


def windows(length=3, n=N):
    """One history per start item: [s, s+1, ..., s+length-1]; its next item is s + length."""
    return [[(s + t) % n for t in range(length)] for s in range(n)], [(s + length) % n for s in range(n)]


@pytest.fixture(scope="module")
def trained():
    """A small recommender trained by a hand-written Adam loop over make_recommender_batch / recommender_loss."""
    table = cyclic_table()
    vocab = pylamia.CodeVocabulary.for_table(table)
    model = pylamia.make_recommender(vocab, hidden_size=32, num_layers=2, num_heads=2, dropout=0.0,
                                     max_history_items=5, seed=1)
    examples = cyclic_examples()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for step in range(400):
        batch = pylamia.make_recommender_batch(table, vocab, [examples[(step * 32 + i) % len(examples)] for i in range(32)],
                                               max_history_items=5)
        loss, correct, labels = pylamia.recommender_loss(model, batch)
        assert labels == 32 * 3 and 0 <= correct <= labels
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step >= 20 and sum(losses[-10:]) / 10 < 0.05:
            break
    model.eval()
    return dict(table=table, vocab=vocab, model=model, losses=losses, examples=examples)


def test_code_vocabulary_layout():
    table = pylamia.SemanticIdTable.from_codes(torch.tensor([[0, 0], [0, 1], [1, 0], [1, 2], [2, 2], [2, 2]]),
                                               codebook_sizes=[3, 3])
    vocab = pylamia.CodeVocabulary.for_table(table)
    assert vocab.level_sizes == [3, 3, 2]
    assert vocab.size == len(vocab) == 2 + 3 + 3 + 2 and vocab.num_levels == 3
    assert (pylamia.CodeVocabulary.PAD, pylamia.CodeVocabulary.BOS) == (0, 1)
    assert vocab.token(0, 0) == 2 and vocab.token(1, 0) == 5 and vocab.token(2, 1) == 9
    for t in range(2, vocab.size):
        assert vocab.token(*vocab.code_of(t)) == t
    with pytest.raises(IndexError):
        vocab.token(0, 3)
    with pytest.raises(IndexError):
        vocab.code_of(1)
    tokens = vocab.all_item_tokens(table)
    assert tokens.shape == (6, 3) and tokens.dtype == torch.int64
    assert vocab.item_tokens(table, 3) == tokens[3].tolist() == [3, 7, 8]
    assert vocab == pylamia.CodeVocabulary([3, 3, 2]) and vocab != pylamia.CodeVocabulary([3, 3, 1])
    assert vocab.to_dict() == {"level_sizes": [3, 3, 2]}
    with pytest.raises(ValueError, match=r"\[3, 3, 2\]"):
        vocab.check_table(cyclic_table())

    enc = pylamia.encode_histories(table, vocab, [[0, 1], [99, 2, -1], []], max_items=20)
    assert (enc.skipped_unknown, enc.empty_rows, len(enc)) == (2, 1, 3)
    assert enc.tokens.tolist() == [[1, 2, 5, 8, 2, 6, 8], [0, 0, 0, 1, 3, 5, 8], [0, 0, 0, 0, 0, 0, 1]]
    assert enc.lengths.tolist() == [7, 4, 1]
    assert enc.position_ids[1].tolist() == [0, 0, 0, 0, 1, 2, 3]
    assert enc.key_mask.dtype == torch.bool and enc.key_mask[2].sum().item() == 1
    mask = pylamia.causal_padded_mask(enc.key_mask)
    assert torch.equal(mask, enc.attention_mask())
    assert mask[1][6].tolist() == [False, False, False, True, True, True, True]
    assert set(enc.to_dict()) == {"tokens", "lengths", "position_ids", "key_mask", "skipped_unknown", "empty_rows"}
    assert pylamia.encode_histories(table, None, [[0, 1, 2]], max_items=1).tokens[0].tolist() == [1, 3, 5, 8]


def test_batches_and_options():
    table = cyclic_table()
    vocab = pylamia.CodeVocabulary.for_table(table)
    b = pylamia.make_recommender_batch(table, vocab, [([0, 1], 2), ([3], 4)])
    assert b["input_ids"].shape == (2, 1 + 2 * 3 + 2) and b["attention_mask"].shape == (2, 9, 9)
    assert b["label_count"] == 6 and (b["labels"] != -100).sum().item() == 6
    assert b["labels"][0, -3:].tolist() == vocab.all_item_tokens(table)[2].tolist()
    assert pylamia.make_recommender_batch(table, vocab, [([0, 1], 2), ([3], 4)], loss_on_history=True)["label_count"] == 15
    with pytest.raises(IndexError):
        pylamia.make_recommender_batch(table, vocab, [([0], 99)])
    with pytest.raises(TypeError, match="example 0"):
        pylamia.make_recommender_batch(table, vocab, [5])

    assert pylamia.RecommenderModelOptions.preset("trm12l").num_layers == 12
    with pytest.raises(ValueError, match="trm3l, trm6l, trm12l"):
        pylamia.RecommenderModelOptions.preset("trm4l")
    o = pylamia.RecommenderModelOptions(hidden_size=32, num_heads=2)
    assert o.to_dict()["hidden_size"] == 32 and pylamia.RecommenderModelOptions.from_json(o.to_json()) == o
    with pytest.raises(ValueError, match="dropout"):
        pylamia.RecommenderModelOptions(dropout=1.5)
    with pytest.raises(ValueError, match="num_heads"):
        pylamia.make_recommender(vocab, hidden_size=30, num_heads=4)
    assert pylamia.SasRecOptions(loss="bce").loss == "bce"
    with pytest.raises(ValueError, match="loss"):
        pylamia.SasRecOptions(loss="hinge")
    assert pylamia.BeamSearchOptions().to_dict() == {"beam_width": 20, "top_k": 10, "use_cache": True, "batch_size": 64,
                                                     "profile": False}
    assert pylamia.ExactScoringOptions(max_rows=64).max_rows == 64
    t = pylamia.RecommenderTrainerOptions(epochs=3, learning_rate=1e-2)
    assert (t.epochs, t.learning_rate, t.batch_size) == (3, 1e-2, 64)

    model = pylamia.make_recommender(vocab, pylamia.RecommenderModelOptions(hidden_size=16, num_layers=1, num_heads=2))
    assert isinstance(model, pylamia.Decoder)
    assert model.options.vocab_size == vocab.size
    assert model.options.max_position_embeddings == 1 + 21 * 3
    assert pylamia.recommender_decoder_options(vocab, hidden_size=16).hidden_size == 16


def test_notebook_loop_then_beam_search_finds_the_next_item(trained):
    losses, model, table = trained["losses"], trained["model"], trained["table"]
    assert sum(losses[-10:]) / 10 < 0.3 * sum(losses[:10]) / 10, losses
    trie = pylamia.DeviceTrie(table)
    assert (trie.num_items, trie.id_length, trie.num_nodes) == (N, 3, 1 + 8 + N + N)
    histories, targets = windows()
    r = pylamia.beam_search(model, trie, histories, top_k=5, beam_width=8)
    items, scores, counts = r["items"], r["scores"], r["counts"]
    assert items.shape == (N, 5) and scores.shape == (N, 5) and counts.tolist() == [5] * N
    for row in items.tolist():
        assert len(set(row)) == 5 and all(0 <= i < N for i in row)  # distinct real items
    assert (scores[:, :-1] >= scores[:, 1:]).all() and (scores <= 0).all()
    hits = sum(items[u, 0].item() == targets[u] for u in range(N))
    assert hits >= 0.8 * N, (hits, items[:, 0].tolist(), targets)
    assert r["stats"]["forward_calls"] >= 1
    # The same through EncodedHistories, and without the KV cache.
    enc = pylamia.encode_histories(table, trie.vocabulary, histories, max_items=5)
    r2 = pylamia.beam_search(model, trie, enc, pylamia.BeamSearchOptions(top_k=5, beam_width=8, use_cache=False))
    assert torch.equal(r2["items"], items)
    assert torch.allclose(r2["scores"], scores, atol=1e-4)
    # validation loss on held-out windows is low
    assert pylamia.recommender_validation_loss(model, table, list(zip(histories, targets)), max_history_items=5) < 1.0


def test_exact_scoring_agrees_with_full_width_beam_search(trained):
    model, table = trained["model"], trained["table"]
    trie = pylamia.DeviceTrie(table)
    histories, _ = windows(2)
    exact = pylamia.score_all_items(model, trie, histories)
    assert exact.shape == (N, N) and exact.dtype == torch.float32
    mass = exact.exp().sum(1)  # normalized over the full vocabulary: at most 1 over the real items
    assert (mass <= 1 + 1e-5).all() and (mass > 0.5).all()
    r = pylamia.beam_search(model, trie, histories, top_k=10, beam_width=N)
    top = exact.topk(10, dim=1)
    assert torch.equal(r["items"], top.indices)
    assert torch.allclose(r["scores"], top.values, atol=1e-4)
    assert pylamia.beam_exact_agreement(r["items"], exact, 10) == 1.0
    small = pylamia.score_all_items(model, trie, histories, pylamia.ExactScoringOptions(max_rows=4))
    assert torch.allclose(small, exact, atol=1e-4)


def test_constraints(trained):
    model, table = trained["model"], trained["table"]
    trie = pylamia.DeviceTrie(table)
    histories, targets = windows(4)
    cs = pylamia.ConstraintSet().add(pylamia.ExcludeHistory())
    assert len(cs) == 1 and "ExcludeHistory" in cs.describe()
    r = pylamia.beam_search(model, trie, histories, constraints=cs, top_k=10)
    for u, row in enumerate(r["items"].tolist()):
        assert not set(row) & set(histories[u])
    free = pylamia.beam_search(model, trie, histories, top_k=N, beam_width=N)
    assert any(set(row) & set(histories[u]) for u, row in enumerate(free["items"].tolist()))
    # Explicit lists, denials, allow-lists, chains; a single constraint or a list works too.
    r = pylamia.beam_search(model, trie, histories, constraints=pylamia.ExcludeHistory([[t] for t in targets]), top_k=3)
    assert all(r["items"][u, 0].item() != targets[u] for u in range(N))
    r = pylamia.beam_search(model, trie, histories[:2], top_k=5,
                            constraints=[pylamia.AllowItems([3, 5, 7]), pylamia.DenyItems([5])])
    assert r["counts"].tolist() == [2, 2]
    assert sorted(r["items"][0, :2].tolist()) == [3, 7] and r["items"][0, 2:].tolist() == [-1, -1, -1]
    assert torch.isinf(r["scores"][0, 2:]).all()
    r = pylamia.beam_search(model, trie, histories[:2], top_k=2, constraints=pylamia.AllowItems.per_user([[1], [2]]))
    assert r["items"][:, 0].tolist() == [1, 2]
    with pytest.raises(ValueError, match="row 0"):
        pylamia.beam_search(model, trie, histories[:1], constraints=pylamia.DenyItems(list(range(N))))
    with pytest.raises(IndexError):
        pylamia.beam_search(model, trie, histories[:1], constraints=pylamia.DenyItems([N]))
    banned = cs.banned_items(trie, histories[:2])
    assert banned.shape == (2, N) and banned[0].nonzero().flatten().tolist() == sorted(histories[0])
    exact = pylamia.score_all_items(model, trie, histories[:2]).masked_fill(banned, float("-inf"))
    assert torch.equal(pylamia.beam_search(model, trie, histories[:2], constraints=cs, top_k=3, beam_width=N)["items"],
                       exact.topk(3, dim=1).indices)


def test_errors_name_what_is_wrong(trained):
    model, table, vocab = trained["model"], trained["table"], trained["vocab"]
    trie = pylamia.DeviceTrie(table)
    with pytest.raises(TypeError, match="'beam_widht'"):
        pylamia.beam_search(model, trie, [[0]], beam_widht=3)
    with pytest.raises(TypeError, match="'epoch'"):
        pylamia.train_recommender(model, table, trained["examples"], epoch=1)
    with pytest.raises(TypeError, match="'hidden'"):
        pylamia.make_recommender(vocab, hidden=3)
    with pytest.raises(ValueError, match="top_k"):
        pylamia.beam_search(model, trie, [[0]], top_k=0)
    other = pylamia.SemanticIdTable.from_codes(torch.tensor([[i % 4, i // 4] for i in range(12)]))
    with pytest.raises(ValueError):  # a trie of another table: the model's vocabulary does not fit
        pylamia.beam_search(model, pylamia.DeviceTrie(other), [[0]])
    with pytest.raises(ValueError):
        pylamia.score_all_items(model, pylamia.DeviceTrie(other), [[0]])
    with pytest.raises(ValueError):
        pylamia.DeviceTrie(other, vocab)
    shuffled = pylamia.SemanticIdTable.from_codes(torch.tensor([[(i + 1) % 8, i // 8] for i in range(N)]))
    trie.check_table(table)
    with pytest.raises(ValueError):  # same layout, other IDs
        trie.check_table(shuffled)
    with pytest.raises(TypeError):
        pylamia.beam_search(model, trie, [[0]], constraints=3)
    with pytest.raises(ValueError, match="input_ids"):
        pylamia.recommender_loss(model, {"labels": torch.zeros(1, 1, dtype=torch.long)})


def test_train_recommender_resumes_and_files_round_trip(tmp_path):
    table = cyclic_table()
    vocab = pylamia.CodeVocabulary.for_table(table)
    examples = cyclic_examples(96)
    train, valid = examples[:80], examples[80:]
    options = pylamia.RecommenderModelOptions(hidden_size=16, num_layers=1, num_heads=2, dropout=0.0)
    model = pylamia.make_recommender(vocab, options, 3)
    before = pylamia.recommender_validation_loss(model, table, valid)
    ckpt = tmp_path / "rec.ckpt"
    r = pylamia.train_recommender(model, table, train, valid, epochs=3, batch_size=16, learning_rate=5e-3,
                                  patience=0, log_every=0, checkpoint_path=str(ckpt))
    assert r["steps"] == 15 and r["epochs_completed"] == 3 and not r["resumed"]
    assert r["stop_reason"] == "epochs done" and len(r["validation_history"]) == 3
    assert pylamia.recommender_validation_loss(model, table, valid) < before
    again = pylamia.train_recommender(model, table, train, valid,
                                      pylamia.RecommenderTrainerOptions(epochs=3, batch_size=16, learning_rate=5e-3,
                                                                        patience=0, log_every=0, checkpoint_path=str(ckpt)))
    assert again["resumed"] and again["resumed_at_step"] == 15

    trie = pylamia.DeviceTrie(table)
    h = [[0, 1], [5]]
    pylamia.save_recommender(tmp_path / "rec", model, table, options)
    loaded, loaded_vocab, loaded_options = pylamia.load_recommender(tmp_path / "rec", table)
    assert loaded_vocab == vocab and loaded_options == options
    assert torch.allclose(pylamia.score_all_items(loaded, trie, h), pylamia.score_all_items(model, trie, h))
    pylamia.save_recommender(tmp_path / "rec2", model, table)  # options read back from the model
    assert pylamia.load_recommender(tmp_path / "rec2", table)[2] == options
    shuffled = pylamia.SemanticIdTable.from_codes(torch.tensor([[(i + 1) % 8, i // 8] for i in range(N)]))
    with pytest.raises(ValueError, match="other semantic IDs"):
        pylamia.load_recommender(tmp_path / "rec", shuffled)
    with pytest.raises(OSError):
        pylamia.load_recommender(tmp_path / "missing", table)


def test_sasrec_trains_scores_and_round_trips(tmp_path):
    examples = cyclic_examples(240)
    valid = examples[::5]
    train = [e for i, e in enumerate(examples) if i % 5]
    sequences = pylamia.sequences_of(train)
    assert sequences[0] == train[0][0] + [train[0][1]]
    sas = pylamia.SasRec(N, hidden_size=32, num_layers=1, dropout=0.0, seed=2)
    assert isinstance(sas.model, pylamia.Decoder) and sas.num_items == N and sas.options.loss == "cross_entropy"
    r = pylamia.train_sasrec(sas, sequences, valid, epochs=15, batch_size=32, learning_rate=5e-3, patience=0,
                             log_every=0)
    assert r["steps"] > 0 and r["best_validation_loss"] < 1.0
    histories = [h for h, _ in valid]
    scores = sas.score(histories)
    assert scores.shape == (len(valid), N)
    hits = sum(scores[i].argmax().item() == t for i, (_, t) in enumerate(valid))
    assert hits >= 0.8 * len(valid)
    loss = sas.loss(sequences[:4])
    assert loss.requires_grad and loss.dim() == 0
    pylamia.save_sasrec(tmp_path / "sas", sas)
    loaded = pylamia.load_sasrec(tmp_path / "sas")
    assert loaded.options == sas.options
    assert torch.allclose(loaded.score(histories), scores, atol=1e-5)
    with pytest.raises(TypeError, match="'hiden_size'"):
        pylamia.SasRec(N, hiden_size=8)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "sasrec.json").write_text("{}")
    with pytest.raises(ValueError, match="sasrec.json"):
        pylamia.load_sasrec(tmp_path / "bad")


def test_prod_ranks_equal_a_per_user_teacher_forced_forward(trained):
    """RecBench's 'prod' rank against an independent computation: one unpadded forward per user of
    [BOS, history tokens, target tokens], the rank of each target token within its level's tokens."""
    table, vocab, model = trained["table"], trained["vocab"], trained["model"]
    examples = [(h, t) for h, t in trained["examples"][:40]] + [([], 5), ([3, 99], 7)]
    ranks = pylamia.prod_ranks(model, table, examples, max_history_items=5, batch_size=7)
    assert len(ranks) == len(examples)
    sizes = vocab.level_sizes
    for (history, target), got in zip(examples, ranks):
        known = [i for i in history if 0 <= i < table.num_items][-5:]
        tokens = [pylamia.CodeVocabulary.BOS] + [t for i in known for t in vocab.item_tokens(table, i)]
        tgt = vocab.item_tokens(table, target)
        ids = torch.tensor([tokens + tgt[:-1]])
        with torch.no_grad():
            logits = model.forward(ids, position_ids=torch.arange(ids.size(1)).unsqueeze(0)).logits[0]
        want = 1
        for level, token in enumerate(tgt):
            row = logits[len(tokens) - 1 + level]
            begin = vocab.level_begin(level)
            block = row[begin:begin + sizes[level]]
            want *= int((block > row[token]).sum()) + 1
        assert got == want, (history, target)
    # a well-trained cyclic model puts most targets first at every level
    assert sum(r == 1 for r in ranks[:40]) >= 30
    with pytest.raises(ValueError, match="vocabulary"):
        pylamia.prod_ranks(model, pylamia.SemanticIdTable.from_codes(torch.tensor([[0], [1]])), [([0], 1)])
