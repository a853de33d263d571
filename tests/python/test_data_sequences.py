"""Sequences, user orders, splits and the synthetic catalog from Python.

The rules (rating threshold, chronological order, last-N, min length, items without
text, the seeded user shuffle, user hold-out and leave-one-out) are re-implemented
here in plain Python, independently of the C++ code, and compared on random data.
"""
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

import pylamia

# ----------------------------------------------------------------------------------------------
# Reference implementation


class MT19937_64:
    """std::mt19937_64, from the algorithm's definition (Matsumoto & Nishimura)."""

    MASK = (1 << 64) - 1

    def __init__(self, seed):
        self.mt = [0] * 312
        self.mt[0] = seed & self.MASK
        for i in range(1, 312):
            prev = self.mt[i - 1]
            self.mt[i] = (6364136223846793005 * (prev ^ (prev >> 62)) + i) & self.MASK
        self.index = 312

    def _twist(self):
        mt = self.mt
        for i in range(312):
            x = (mt[i] & 0xFFFFFFFF80000000) | (mt[(i + 1) % 312] & 0x7FFFFFFF)
            xa = x >> 1
            if x & 1:
                xa ^= 0xB5026F5AA96619E9
            mt[i] = mt[(i + 156) % 312] ^ xa
        self.index = 0

    def __call__(self):
        if self.index >= 312:
            self._twist()
        y = self.mt[self.index]
        self.index += 1
        y ^= (y >> 29) & 0x5555555555555555
        y ^= (y << 17) & 0x71D67FFFEDA60000
        y ^= (y << 37) & 0xFFF7EEE000000000
        y ^= y >> 43
        return y & self.MASK


def uniform_index(rng, n):
    top = (1 << 64) - 1
    limit = top - top % n
    r = rng()
    while r >= limit:
        r = rng()
    return r % n


def ref_shuffle(ids, seed):
    rng = MT19937_64(seed)
    out = list(ids)
    for i in range(len(out), 1, -1):
        j = uniform_index(rng, i)
        out[i - 1], out[j] = out[j], out[i - 1]
    return out


def ref_build(table, num_items, items_with_text, min_rating, max_length, min_length, drop):
    """table: rows (user_id, item, timestamp or None, rating or None) in source order."""
    stats = dict(users_in=0, interactions_in=len(table), items_in=num_items, items_without_text=0,
                 interactions_without_text=0, interactions_below_rating=0, interactions_truncated=0,
                 users_too_short=0, interactions_of_short_users=0, users_out=0, interactions_out=0, items_out=0)
    if drop:
        kept_items = [i for i in range(num_items) if items_with_text[i]]
    else:
        kept_items = list(range(num_items))
    new_index = {old: new for new, old in enumerate(kept_items)}
    stats["items_without_text"] = num_items - len(kept_items)
    stats["items_out"] = len(kept_items)
    per_user = {}
    for user, item, ts, rating in table:
        per_user.setdefault(user, []).append((item, ts, rating))
    stats["users_in"] = len(per_user)
    users = []
    for index, (user, events) in enumerate(per_user.items()):
        kept = []
        for item, ts, rating in events:
            if item not in new_index:
                stats["interactions_without_text"] += 1
            elif min_rating is not None and rating is not None and rating < min_rating:
                stats["interactions_below_rating"] += 1
            else:
                kept.append((item, ts))
        if kept and kept[0][1] is not None:
            kept = sorted(kept, key=lambda e: e[1])  # sorted() is stable
        if max_length and len(kept) > max_length:
            stats["interactions_truncated"] += len(kept) - max_length
            kept = kept[-max_length:]
        if not kept or len(kept) < min_length:
            stats["users_too_short"] += 1
            stats["interactions_of_short_users"] += len(kept)
            continue
        stats["interactions_out"] += len(kept)
        users.append((index, user, [new_index[i] for i, _ in kept], [t for _, t in kept]))
    stats["users_out"] = len(users)
    return users, stats, kept_items


def ref_train(user, items, end, mode, out, skipped):
    if end == 0:
        return skipped
    if mode == "last_item":
        if end < 2:
            return skipped + 1
        out.append((user, items[:end - 1], items[end - 1]))
        return skipped
    for i in range(1, end):
        out.append((user, items[:i], items[i]))
    return skipped + 1


def ref_target(user, items, end, out, skipped):
    if end < 2:
        return skipped + (1 if end == 1 else 0), False
    out.append((user, items[:end - 1], items[end - 1]))
    return skipped, True


def resolve(count, total):
    if isinstance(count, float):
        return int(math.floor(count * total + 1e-9))
    return count


def ref_holdout(users, order, train, valid, test, mode):
    by_id = {u[1]: u for u in users}
    total = len(users)
    n_valid, n_test = resolve(valid, total), resolve(test, total)
    n_train = total - n_valid - n_test if train is None else resolve(train, total)
    parts = {"train": [], "valid": [], "test": []}
    part_users = {"train": [], "valid": [], "test": []}
    skipped = 0
    for k, uid in enumerate(order[:n_train + n_valid + n_test]):
        index, _, items, _ = by_id[uid]
        if k < n_train:
            part_users["train"].append(index)
            skipped = ref_train(index, items, len(items), mode, parts["train"], skipped)
        elif k < n_train + n_valid:
            part_users["valid"].append(index)
            skipped, _ = ref_target(index, items, len(items), parts["valid"], skipped)
        else:
            part_users["test"].append(index)
            skipped, _ = ref_target(index, items, len(items), parts["test"], skipped)
    return parts, part_users, skipped, total - n_train - n_valid - n_test


def ref_leave_one_out(users, mode):
    parts = {"train": [], "valid": [], "test": []}
    part_users = {"train": [], "valid": [], "test": []}
    skipped = 0
    for index, _, items, _ in users:
        n = len(items)
        skipped, ok = ref_target(index, items, n, parts["test"], skipped)
        if ok:
            part_users["test"].append(index)
        if n >= 1:
            skipped, ok = ref_target(index, items, n - 1, parts["valid"], skipped)
            if ok:
                part_users["valid"].append(index)
        before = len(parts["train"])
        if n >= 2:
            skipped = ref_train(index, items, n - 2, mode, parts["train"], skipped)
        if len(parts["train"]) > before:
            part_users["train"].append(index)
    return parts, part_users, skipped


def as_tuples(examples):
    return [(e.user, list(e.history), e.target) for e in examples]


def random_table(rng, num_users, num_items):
    """Rows (user, item, timestamp, rating); per user all or no timestamps, with ties."""
    rows = []
    for u in range(num_users):
        timed = rng.random() < 0.8
        rated = rng.random() < 0.8
        for _ in range(rng.randint(0, 30)):
            ts = rng.randint(0, 12) * 100 if timed else None
            rating = rng.choice([1.0, 2.0, 3.0, 3.5, 4.0, 5.0, None]) if rated else None
            rows.append((f"user{u}", rng.randrange(num_items), ts, rating))
    rng.shuffle(rows)  # users interleave; each user's rows stay in a random source order
    return rows


# ----------------------------------------------------------------------------------------------
# Tests against the reference


def test_reference_mt19937_64_matches_the_standard():
    # The C++ standard fixes the 10000th output of a default-constructed mt19937_64 (seed 5489).
    rng = MT19937_64(5489)
    for _ in range(9999):
        rng()
    assert rng() == 9981545732273789042


@pytest.mark.parametrize("seed", [0, 1, 2024, 2**63 + 5])
def test_shuffle_users_matches_the_reference(seed):
    ids = [f"u{i}" for i in range(57)]
    order = pylamia.shuffle_users(ids, seed)
    assert order.seed == seed
    assert order.user_ids == ref_shuffle(ids, seed)


@pytest.mark.parametrize("case", range(12))
def test_sequences_and_splits_match_the_reference(case):
    rng = random.Random(case)
    num_items = rng.randint(5, 40)
    table = random_table(rng, rng.randint(1, 40), num_items)
    items_with_text = [rng.random() > 0.15 for _ in range(num_items)]
    min_rating = rng.choice([None, 3.0, 4.0])
    max_length = rng.choice([0, 1, 5, 20])
    min_length = rng.choice([0, 1, 2, 3])
    drop = rng.random() < 0.5

    seqs = pylamia.build_sequences_from_table(
        [r[0] for r in table], [r[1] for r in table], num_items=num_items,
        timestamps=[r[2] for r in table], ratings=[r[3] for r in table], items_with_text=items_with_text,
        min_rating=min_rating, max_length=max_length, min_length=min_length, drop_items_without_text=drop)
    users, stats, kept_items = ref_build(table, num_items, items_with_text, min_rating, max_length, min_length, drop)

    assert seqs.stats.as_dict() == stats
    assert list(seqs.source_items) == kept_items
    got = [(u.user, u.id, list(u.items), [None if t == -2**63 else t for t in u.timestamps]) for u in seqs.users]
    assert got == users

    if not users:
        return
    order = pylamia.shuffle_users(seqs.user_ids(), case)
    total = len(users)
    n_test = rng.randint(0, total)
    n_valid = rng.randint(0, total - n_test)
    train = rng.choice([None, rng.randint(0, total - n_test - n_valid), 0.5 * (total - n_test - n_valid) / total])
    mode = rng.choice(["last_item", "all_prefixes"])
    test = rng.choice([n_test, n_test / total])
    split = pylamia.split_user_holdout(seqs, order, train_users=train, valid_users=n_valid, test_users=test,
                                       train_examples=mode)
    parts, part_users, skipped, unused = ref_holdout(users, ref_shuffle([u[1] for u in users], case), train,
                                                     n_valid, test, mode)
    for name in ("train", "valid", "test"):
        assert as_tuples(getattr(split, name)) == parts[name], name
        assert list(getattr(split, f"{name}_users")) == part_users[name], name
    assert split.skipped_examples == skipped
    assert split.unused_users == unused

    loo = pylamia.split_leave_one_out(seqs, train_examples=mode)
    parts, part_users, skipped = ref_leave_one_out(users, mode)
    for name in ("train", "valid", "test"):
        assert as_tuples(getattr(loo, name)) == parts[name], name
        assert list(getattr(loo, f"{name}_users")) == part_users[name], name
    assert loo.skipped_examples == skipped


def test_holdout_with_the_paper_sizes():
    table = [(f"u{u}", (u * 7 + k) % 100, k, 5.0) for u in range(450) for k in range(3)]
    seqs = pylamia.build_sequences_from_table([r[0] for r in table], [r[1] for r in table], num_items=100,
                                              timestamps=[r[2] for r in table], ratings=[r[3] for r in table])
    order = pylamia.shuffle_users(seqs.user_ids(), 7)
    split = pylamia.split_user_holdout(seqs, order, train_users=400, test_users=50)
    assert (len(split.train), len(split.valid), len(split.test)) == (400, 0, 50)
    assert not set(split.train_users) & set(split.test_users)
    for example in split.test:
        assert example.target == seqs.users[example.user].items[-1]
        assert list(example.history) == list(seqs.users[example.user].items[:-1])


# ----------------------------------------------------------------------------------------------
# User order files and errors


def test_a_saved_user_order_is_reused_and_a_mismatch_is_rejected(tmp_path):
    path = tmp_path / "users.order"
    ids = [f"u{i}" for i in range(20)]
    first = pylamia.load_or_create_user_order(path, ids, 5)
    assert path.exists()
    assert first.user_ids == ref_shuffle(ids, 5)
    pylamia.save_user_order(path, pylamia.UserOrder(5, list(reversed(ids))))
    assert pylamia.load_or_create_user_order(path, ids, 5).user_ids == list(reversed(ids))
    with pytest.raises(ValueError, match=r"missing.*'u20'"):
        pylamia.load_or_create_user_order(path, ids + ["u20"], 5)
    with pytest.raises(ValueError, match="seed 5"):
        pylamia.load_or_create_user_order(path, ids, 6)
    with pytest.raises(ValueError, match="unknown"):
        pylamia.check_user_order(pylamia.load_user_order(path), ids[:-1])


def test_corrupted_and_missing_order_files_raise(tmp_path):
    bad = tmp_path / "bad.order"
    bad.write_text("lamia-user-order 1\nseed 1\nusers 3\na\nb\n")
    with pytest.raises(ValueError, match=r"bad.order:6: field 'user'"):
        pylamia.load_user_order(bad)
    with pytest.raises(OSError):
        pylamia.load_user_order(tmp_path / "missing.order")


def test_bad_split_arguments_raise_value_error():
    seqs = pylamia.build_sequences_from_table(["a", "a", "b", "b"], [0, 1, 1, 0], num_items=2)
    order = pylamia.shuffle_users(seqs.user_ids(), 1)
    with pytest.raises(ValueError, match="test_users"):
        pylamia.split_user_holdout(seqs, order, test_users=True)
    with pytest.raises(ValueError, match="test_users"):
        pylamia.split_user_holdout(seqs, order, test_users=1.5)
    with pytest.raises(ValueError, match="at most the 2 users"):
        pylamia.split_user_holdout(seqs, order, train_users=2, test_users=1)
    with pytest.raises(ValueError, match="all_prefixes"):
        pylamia.split_leave_one_out(seqs, train_examples="every")
    with pytest.raises(IndexError, match=r"items\[1\] = 7"):
        pylamia.build_sequences_from_table(["a", "a"], [0, 7], num_items=2)
    with pytest.raises(ValueError, match="'a'"):
        pylamia.build_sequences_from_table(["a", "a"], [0, 1], num_items=2, timestamps=[1, None])


# ----------------------------------------------------------------------------------------------
# The synthetic catalog


def test_synthetic_is_deterministic_and_seeds_differ():
    a = pylamia.generate_synthetic(num_items=300, num_users=50, seed=3)
    b = pylamia.generate_synthetic(pylamia.SyntheticOptions(num_items=300, num_users=50, seed=3))
    c = pylamia.generate_synthetic(num_items=300, num_users=50, seed=4)
    assert torch.equal(a.item_aspects, b.item_aspects)
    ta, tb, tc = a.interactions_table(), b.interactions_table(), c.interactions_table()
    for key in ("user", "item", "timestamp", "rating"):
        assert torch.equal(ta[key], tb[key])
    assert a.item_values(0) == b.item_values(0)
    assert not torch.equal(a.item_aspects, c.item_aspects)
    assert a.item_values(0) != c.item_values(0)


def test_synthetic_ground_truth_as_tensor_and_numpy():
    s = pylamia.generate_synthetic(num_items=400, num_users=30, seed=1)
    aspects = s.item_aspects
    assert aspects.dtype == torch.int32 and tuple(aspects.shape) == (400, 4)
    array = s.item_aspects_numpy()
    assert array.dtype == np.int32 and array.shape == (400, 4)
    assert np.array_equal(array, aspects.numpy())
    assert s.aspect(5, 2) == int(aspects[5, 2])
    assert (aspects.max(dim=0).values < torch.tensor(s.aspect_sizes, dtype=torch.int32)).all()
    prefs = s.user_preferences
    assert tuple(prefs.shape) == (30, 4, 2)
    assert s.attribute_names == ["title", "description", "tags", "category"]
    assert len(s.vocabulary[0]) == 12 and len(s.vocabulary[0][0]) == s.options.words_per_value
    # The category names the item's format and topic values.
    fmt_value, topic_value = int(aspects[0, 3]), int(aspects[0, 0])
    assert s.item_values(0)[3] == f"{s.value_names[3][fmt_value]} > {s.value_names[0][topic_value]}"


def test_synthetic_sequences_follow_the_users_preferences():
    s = pylamia.generate_synthetic(num_items=1000, num_users=200, seed=5)
    table = s.interactions_table()
    aspects = s.item_aspects.long()[table["item"].long()]              # (n, A)
    prefs = s.user_preferences.long()[table["user"].long()]            # (n, A, P)
    hit = (prefs == aspects.unsqueeze(-1)).any(-1).float().mean(0)     # share per aspect
    chance = torch.tensor([2 / k for k in s.aspect_sizes])
    assert (hit > chance + 0.25 * (1 - chance)).all(), (hit, chance)


def test_synthetic_options_keywords_and_json():
    o = pylamia.SyntheticOptions(num_items=123, seed=9, aspect_names=["a", "b"], aspect_sizes=[3, 4],
                                 attributes=[pylamia.SyntheticAttribute("t", "phrase", ["a", "b"])])
    back = pylamia.SyntheticOptions.from_json(o.to_json())
    assert back.to_json() == o.to_json()
    assert back.num_items == 123 and back.attributes[0].style == "phrase"
    s = pylamia.generate_synthetic(back, num_users=10)
    assert s.num_items == 123 and s.num_users == 10 and s.aspect_names == ["a", "b"]
    with pytest.raises(TypeError, match="num_itemz"):
        pylamia.SyntheticOptions(num_itemz=5)
    with pytest.raises(ValueError, match="unknown key 'x'"):
        pylamia.SyntheticOptions.from_json('{"x": 1}')
    with pytest.raises(ValueError, match="noise"):
        pylamia.generate_synthetic(noise=2.0)
    with pytest.raises(ValueError, match="style"):
        pylamia.SyntheticAttribute("t", "poem", ["a"])


def test_synthetic_table_gives_the_same_sequences_as_the_dataset():
    s = pylamia.generate_synthetic(num_items=200, num_users=40, seed=2)
    table = s.interactions_table()
    users = [f"u{u}" for u in table["user"].tolist()]
    seqs = pylamia.build_sequences_from_table(users, table["item"].tolist(), num_items=s.num_items,
                                              timestamps=table["timestamp"].tolist(),
                                              ratings=table["rating"].tolist())
    assert seqs.stats.users_in == 40
    assert seqs.stats.interactions_below_rating > 0
    if not hasattr(pylamia, "Dataset"):
        pytest.skip("bindings/data.cpp (Dataset) is not built yet")
    direct = pylamia.build_sequences(s.dataset)
    assert direct.stats.as_dict() == seqs.stats.as_dict()
    assert [list(u.items) for u in direct.users] == [list(u.items) for u in seqs.users]


def test_drop_items_without_text_matches_a_python_reference():
    # MIND's default adds the clicked news missing from news.tsv (N9 here) as text-less items.
    ds = pylamia.load_mind(Path(__file__).resolve().parents[2] / "tests" / "data" / "mind" / "ok")
    cat, inter = ds.catalog, ds.interactions
    ids = [cat.id(i) for i in range(len(cat))]
    kept = [i for i in range(len(cat)) if cat.has_text(i)]
    assert len(kept) < len(cat)  # the case exercises a drop
    new_index = {old: new for new, old in enumerate(kept)}
    want_users, want_dropped = [], 0
    for u in range(inter.num_users):
        events = inter.sequence(u)
        want_dropped += sum(e.item not in new_index for e in events)
        want_users.append((inter.user_id(u), [(ids[e.item], e.timestamp) for e in events if e.item in new_index]))

    got = pylamia.drop_items_without_text(ds)
    assert list(got.source_items) == kept
    assert got.items_dropped == len(cat) - len(kept) and got.interactions_dropped == want_dropped > 0
    gcat, ginter = got.dataset.catalog, got.dataset.interactions
    assert [gcat.id(i) for i in range(len(gcat))] == [ids[i] for i in kept]
    assert all(gcat.has_text(i) for i in range(len(gcat)))
    assert [(ginter.user_id(u), [(gcat.id(e.item), e.timestamp) for e in ginter.sequence(u)])
            for u in range(ginter.num_users)] == want_users
    # build_sequences' own option is the same filter.
    a = pylamia.build_sequences(ds, min_length=1, drop_items_without_text=True)
    b = pylamia.build_sequences(got.dataset, min_length=1)
    assert [(u.id, list(u.items), list(u.timestamps)) for u in a.users] == \
        [(u.id, list(u.items), list(u.timestamps)) for u in b.users]
    assert a.stats.interactions_without_text == want_dropped
