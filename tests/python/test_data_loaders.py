"""pylamia's data model, loaders and statistics: the corpus in tests/data, errors as Python
exceptions, and the real samples in ../shared/data cross-checked against a pure-Python parse."""
import csv
import gzip
import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import pytest

import pylamia

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data"
SHARED = ROOT.parent / "shared" / "data"


def shared(name):
    path = SHARED / name
    if not path.is_dir():
        pytest.skip(f"{path} is absent (the real datasets live in ../shared/data)")
    return path


# ---- the data model ----------------------------------------------------------------------------

def test_catalog_and_interactions_round_trip():
    cat = pylamia.Catalog(["title", "brand"])
    assert cat.add("x1", ["Pen", "Bic"]) == 0
    assert cat.add("x2", ["Paper", ""]) == 1
    assert len(cat) == 2 and "x2" in cat and "x3" not in cat
    assert cat.value(1, "title") == "Paper" and cat.value(0, 1) == "Bic"
    assert cat.item(0) == {"title": "Pen", "brand": "Bic"}
    assert cat.find("nope") is None and cat.index_of("x2") == 1
    assert cat.ids == ["x1", "x2"]
    inter = pylamia.Interactions()
    u = inter.user("u")
    inter.append(u, pylamia.Interaction(1, timestamp=5, rating=4.5))
    inter.append(u, pylamia.Interaction(0))
    seq = inter.sequence(u)
    assert [e.item for e in seq] == [1, 0] and inter.items(u) == [1, 0]
    assert seq[0].timestamp == 5 and seq[0].rating == 4.5
    assert seq[1].timestamp is None and seq[1].rating is None
    ds = pylamia.Dataset("tiny", cat, inter)
    assert len(ds.catalog) == 2
    assert len(ds.interactions) == 2 and ds.name == "tiny"


def test_data_model_errors_are_python_exceptions():
    cat = pylamia.Catalog(["title"])
    cat.add("a", ["A"])
    with pytest.raises(ValueError, match="duplicate item id 'a'"):
        cat.add("a", ["again"])
    with pytest.raises(ValueError):
        cat.add("b", ["too", "many"])
    with pytest.raises(IndexError, match="out of range"):
        cat.id(5)
    with pytest.raises(IndexError, match="unknown item id 'zz'"):
        cat.index_of("zz")
    with pytest.raises(IndexError, match="no attribute 'colour'"):
        cat.value(0, "colour")


# ---- loaders on the corpus -----------------------------------------------------------------------

def test_movielens_ok_case_with_report():
    report = pylamia.LoadReport()
    ds = pylamia.load_dataset("movielens", CORPUS / "movielens" / "ok", report=report)
    assert ds.catalog.attribute_names == ["title", "genres", "tags"]
    assert ds.catalog.value(2, "title") == 'Say "Cheese"\r\nTwice (2000)'
    assert ds.catalog.value(0, "tags") == "pixar|fun"
    assert report.counts["rows:ratings.csv"] == 4 and report.num_warnings == 0
    u1 = ds.interactions.find_user("1")
    assert [ds.catalog.id(i) for i in ds.interactions.items(u1)] == ["2", "1"]


def test_per_format_functions_match_load_dataset():
    for fmt, fn in [("mind", pylamia.load_mind), ("amazon-lcrec", pylamia.load_amazon_lcrec),
                    ("amazon", pylamia.load_amazon), ("hm", pylamia.load_hm),
                    ("movielens", pylamia.load_movielens), ("jsonl", pylamia.load_jsonl), ("csv", pylamia.load_csv)]:
        a = fn(CORPUS / fmt / "ok")
        b = pylamia.load_dataset(fmt, str(CORPUS / fmt / "ok"))
        assert a.catalog.ids == b.catalog.ids, fmt
        assert len(a.interactions) == len(b.interactions) > 0, fmt
    assert set(pylamia.dataset_formats()) >= {"mind", "amazon-lcrec", "amazon", "hm", "movielens", "synthetic", "jsonl"}


def test_amazon_files_and_python_literal_metadata():
    d = CORPUS / "amazon" / "ok"
    ds = pylamia.load_amazon_files(d / "meta_Tiny.json", d / "reviews_Tiny_5.json.gz")
    assert ds.catalog.value(1, "title") == "Café pen"
    assert ds.catalog.value(1, "description") == "It's blue"


@pytest.mark.parametrize("fmt, case, exc, location", [
    ("movielens", "truncated_row", ValueError, "ratings.csv:3: field 'timestamp'"),
    ("movielens", "invalid_utf8", ValueError, "movies.csv:2: field 'title'"),
    ("movielens", "unknown_item", ValueError, "ratings.csv:4: field 'movieId'"),
    ("mind", "bad_time", ValueError, "behaviors.tsv:2: field 'time'"),
    ("amazon-lcrec", "unknown_item", ValueError, "Tiny.inter.json:8: field '1'"),
    ("amazon", "malformed_line", ValueError, "reviews_Tiny.json:2: field 'asin'"),
    ("hm", "missing_column", ValueError, "articles.csv:1: field 'detail_desc'"),
    ("jsonl", "missing_field", ValueError, "interactions.jsonl:4: field 'user_id'"),
    ("movielens", "wrong_files", OSError, "movies.csv"),
    ("mind", "wrong_files", OSError, "behaviors.tsv"),
])
def test_bad_input_raises_with_location(fmt, case, exc, location):
    with pytest.raises(exc) as info:
        pylamia.load_dataset(fmt, CORPUS / fmt / case)
    assert location in str(info.value)


def test_missing_folder_is_oserror_and_unknown_format_valueerror():
    with pytest.raises(OSError, match="does not exist"):
        pylamia.load_dataset("movielens", CORPUS / "movielens" / "no_such_case")
    with pytest.raises(ValueError, match="unknown format 'parquet'"):
        pylamia.load_dataset("parquet", CORPUS)
    with pytest.raises(ValueError, match="unknown_items"):
        pylamia.LoadOptions(unknown_items="ignore")


def test_lenient_load_counts_and_locates_skipped_rows():
    report = pylamia.LoadReport()
    ds = pylamia.load_dataset("movielens", CORPUS / "movielens" / "truncated_row", lenient=True, report=report)
    assert len(ds.interactions) == 3
    assert report.warnings == {"malformed_row": 1}
    assert report.messages[0].startswith("ratings.csv:3: field 'timestamp'")
    assert report.to_dict()["warnings"] == {"malformed_row": 1}
    # The same through LoadOptions.
    opts = pylamia.LoadOptions(lenient=True, max_messages=0)
    report2 = pylamia.LoadReport()
    pylamia.load_dataset("movielens", CORPUS / "movielens" / "truncated_row", opts, report=report2)
    assert report2.num_warnings == 1 and report2.messages == []


def test_unknown_item_policies():
    with pytest.raises(ValueError, match="field 'history'"):
        pylamia.load_mind(CORPUS / "mind" / "ok", unknown_items="error")
    skipped = pylamia.load_mind(CORPUS / "mind" / "ok", unknown_items="skip")
    added = pylamia.load_mind(CORPUS / "mind" / "ok")
    assert len(skipped.catalog) == 3 and len(added.catalog) == 4
    assert not added.catalog.has_text(added.catalog.index_of("N9"))


def test_mind_sequences_start_with_the_untimed_click_history():
    # U1's history (N1 N9 N2, no times) comes first in its file order; its clicked impressions follow in
    # time order (N2 on 11/11 from the third row, N3 on 11/12 from the first).
    seqs = pylamia.build_sequences(pylamia.load_mind(CORPUS / "mind" / "ok"), min_length=1)
    by_user = {u.id: [seqs.catalog.id(i) for i in u.items] for u in seqs.users}
    assert by_user == {"U1": ["N1", "N9", "N2", "N2", "N3"], "U2": ["N1", "N2"], "U3": ["N3"]}


def test_generic_field_mapping():
    mapping = pylamia.FieldMapping(user_id="user", text_fields=["name"])
    ds = pylamia.load_csv(CORPUS / "csv" / "missing_column", pylamia.LoadOptions(mapping=mapping))
    assert ds.catalog.attribute_names == ["name"]
    assert ds.interactions.user_ids == ["u1"]


def test_statistics_object_and_dict():
    ds = pylamia.load_dataset("hm", CORPUS / "hm" / "ok")
    s = pylamia.compute_statistics(ds)
    assert (s.items, s.users, s.interactions) == (3, 2, 4)
    assert s.avg_user_length == pytest.approx(2.0)
    assert s.avg_item_appearances == pytest.approx(4 / 3)
    d = s.to_dict()
    assert d["items"] == 3 and d["has_timestamps"] is True and d["attributes"]["detail_desc"] == 2


def test_synthetic_format_uses_the_generator(tmp_path):
    (tmp_path / "synthetic.json").write_text(json.dumps({"num_items": 50, "num_users": 20}))
    ds = pylamia.load_dataset("synthetic", tmp_path)
    s = pylamia.compute_statistics(ds)
    assert s.items == 50 and s.users == 20 and s.interactions > 0


def lamia_cli():
    # $LAMIA_CLI (scripts/test-all.sh sets it to build/lamia), else the build tree next to
    # pypkg/ when run through scripts/dev-pytest.sh.
    exe = Path(os.environ.get("LAMIA_CLI") or Path(pylamia.__file__).parent.parent.parent / "lamia")
    if not exe.exists():
        pytest.skip(f"{exe} not built")
    return exe


def test_lamia_stats_cli_prints_one_json_object():
    exe = lamia_cli()
    out = subprocess.run([str(exe), "stats", "--format", "hm", "--path", str(CORPUS / "hm" / "ok")],
                         capture_output=True, text=True, check=True)
    stats = json.loads(out.stdout)
    assert (stats["items"], stats["users"], stats["interactions"]) == (3, 2, 4)
    bad = subprocess.run([str(exe), "stats", "--format", "hm", "--path", str(CORPUS / "hm" / "unknown_item")],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and bad.stdout == ""
    assert "transactions_train.csv:4: field 'article_id'" in bad.stderr
    lenient = subprocess.run([str(exe), "stats", "--format", "hm", "--lenient", "--path",
                              str(CORPUS / "hm" / "unknown_item")], capture_output=True, text=True, check=True)
    assert json.loads(lenient.stdout)["load_report"]["warnings"] == {"unknown_item": 1}
    assert "warning" in lenient.stderr


def one_line_error(result, mention):
    # Every failure of the CLI: exit code 1, nothing on stdout, one line on stderr, no backtrace.
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("lamia: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert mention in result.stderr
    for leak in ("terminate called", "Exception raised from", "json.exception", "what()"):
        assert leak not in result.stderr


def test_lamia_cli_hostile_input_is_one_line_and_exit_1(tmp_path):
    exe = lamia_cli()
    deep = tmp_path / "deep"
    deep.mkdir()
    (deep / "items.jsonl").write_text('{"item_id": "a", "title": ' + "[" * 100000 + "]" * 100000 + "}\n")
    (deep / "interactions.jsonl").write_text('{"user_id": "u", "item_id": "a"}\n')

    def run(*args):
        return subprocess.run([str(exe), *args], capture_output=True, text=True, errors="replace", timeout=60)

    one_line_error(run("stats", "-f", "jsonl", "-p", str(deep)), "items.jsonl:1: field 'title': JSON nested deeper")
    one_line_error(run("--threads", "100000", "stats", "-f", "synthetic"), "--threads")
    os.mkfifo(tmp_path / "fifo")
    one_line_error(run("stats", "-f", "synthetic", "-p", str(tmp_path / "fifo")), "(a FIFO)")  # never blocks
    truncated = tmp_path / "gz"
    truncated.mkdir()
    data = gzip.compress(b"".join(b'{"user_id": "u%d", "item_id": "a"}\n' % i for i in range(5000)))
    (truncated / "interactions.jsonl.gz").write_bytes(data[: len(data) // 2])
    one_line_error(run("stats", "-f", "jsonl", "-p", str(truncated)), "ends early")
    # A folder name that is not UTF-8 is valid input: the name shows the byte as \xNN.
    odd = tmp_path / os.fsdecode(b"ml-\xe9")
    odd.mkdir()
    (odd / "movies.csv").write_text("movieId,title,genres\n1,Heat (1995),Action\n")
    (odd / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n")
    ok = run("stats", "-f", "movielens", "-p", str(odd))
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["name"] == "ml-\\xE9"


# ---- the real samples, against an independent pure-Python parse ----------------------------------

def test_real_movielens_matches_csv_module():
    d = shared("movielens-latest-small")
    with open(d / "movies.csv", newline="", encoding="utf-8") as f:
        movies = list(csv.DictReader(f))
    with open(d / "ratings.csv", newline="", encoding="utf-8") as f:
        ratings = list(csv.DictReader(f))
    ds = pylamia.load_dataset("movielens", d)
    s = pylamia.compute_statistics(ds)
    assert (s.items, s.users, s.interactions) == (len(movies), len({r["userId"] for r in ratings}), len(ratings))
    assert (s.items, s.users, s.interactions) == (9742, 610, 100836)
    assert s.interacted_items == len({r["movieId"] for r in ratings})
    by_id = {m["movieId"]: m for m in movies}
    for i in (0, 100, 5000, len(ds.catalog) - 1):
        m = by_id[ds.catalog.id(i)]
        assert ds.catalog.value(i, "title") == m["title"] and ds.catalog.value(i, "genres") == m["genres"]
    # A user's sequence: the same ratings, sorted by time (stable).
    user = ds.interactions.find_user("414")
    expected = sorted([r for r in ratings if r["userId"] == "414"], key=lambda r: int(r["timestamp"]))
    got = ds.interactions.sequence(user)
    assert [ds.catalog.id(e.item) for e in got] == [r["movieId"] for r in expected]
    assert [e.rating for e in got] == [float(r["rating"]) for r in expected]


def test_real_amazon_office_matches_json_module():
    d = shared("amazon-office")
    items = json.loads((d / "Office.item.json").read_text(encoding="utf-8"))
    inter = json.loads((d / "Office.inter.json").read_text(encoding="utf-8"))
    ds = pylamia.load_dataset("amazon-lcrec", d)
    s = pylamia.compute_statistics(ds)
    assert (s.items, s.users, s.interactions) == (len(items), len(inter), sum(map(len, inter.values())))
    assert (s.items, s.users, s.interactions) == (2420, 4905, 53258)
    for key in ("0", "1234", "2419"):
        i = ds.catalog.index_of(key)
        for attr in ("title", "description", "brand", "categories"):
            assert ds.catalog.value(i, attr) == items[key][attr]
    for user in ("0", "4904"):
        u = ds.interactions.find_user(user)
        assert [int(ds.catalog.id(i)) for i in ds.interactions.items(u)] == inter[user]


def test_real_hm_matches_csv_module():
    d = shared("hm-sample")
    with open(d / "articles.csv", newline="", encoding="utf-8") as f:
        articles = list(csv.DictReader(f))
    with open(d / "transactions_train.csv", newline="", encoding="utf-8") as f:
        trans = list(csv.DictReader(f))
    ds = pylamia.load_dataset("hm", d)
    s = pylamia.compute_statistics(ds)
    assert (s.items, s.users, s.interactions) == (len(articles), len({t["customer_id"] for t in trans}), len(trans))
    assert (s.items, s.users, s.interactions) == (4903, 2954, 10000)
    a = articles[42]
    i = ds.catalog.index_of(a["article_id"].zfill(10))
    for col in ("detail_desc", "prod_name", "colour_group_name", "index_name"):
        assert ds.catalog.value(i, col) == a[col]


def test_real_mind_matches_a_tab_split():
    d = shared("mind-small-subset")
    with open(d / "news.tsv", encoding="utf-8") as f:
        news = [line.rstrip("\n").split("\t") for line in f]
    with open(d / "behaviors.tsv", encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    first_history = {}
    for r in rows:
        first_history.setdefault(r[1], r[3].split())
    clicks = [t for r in rows for t in r[4].split() if t.endswith("-1")]
    report = pylamia.LoadReport()
    ds = pylamia.load_dataset("mind", d, report=report)
    s = pylamia.compute_statistics(ds)
    assert s.items_with_text == len(news) == 2000
    assert s.users == len(first_history) == 4637
    assert s.interactions == sum(map(len, first_history.values())) + len(clicks)
    assert report.counts["history_entries"] == sum(len(r[3].split()) for r in rows) == 159802
    assert report.counts["clicked_impressions"] == len(clicks) == 7542
    n = news[7]
    i = ds.catalog.index_of(n[0])
    assert [ds.catalog.value(i, a) for a in ("title", "abstract", "category", "subcategory")] == [n[3], n[4], n[1], n[2]]
    assert Counter(ds.catalog.value(i, "category") for i in range(2000)) == Counter(n[1] for n in news)
