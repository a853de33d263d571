"""Every bound Options class (bindings/options.hpp over lamia/core/options.hpp): each field is
settable by keyword, round-trips through to_dict / to_json, defaults equal the C++ struct's and
those written in the type stub and in the docs' options tables, and unknown keys and wrong types
are rejected naming the key."""
import ast
import copy
import json
import pathlib
import pickle
import re

import pytest

import pylamia

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Every class bound with bind_options: the ones that hold options or records as plain fields.
OPTIONS_CLASSES = [
    "SyntheticAttribute", "SyntheticOptions", "SequenceOptions", "HoldoutOptions", "LeaveOneOutOptions",
    "KMeansOptions", "PcaOptions", "PaletteQuantizerOptions", "ResidualKMeansOptions", "TfidfSvdOptions", "RqVaeTrainOptions",
    "PaletteDiagnosticsOptions",
    "PaletteLossOptions", "PaletteEncoderOptions", "ScratchModelOptions", "PaletteTrainerOptions",
    "RecommenderModelOptions", "RecommenderTrainerOptions", "BeamSearchOptions", "ExactScoringOptions",
    "SasRecOptions", "SasRecTrainerOptions",
    "DecoderOptions", "LoraOptions", "BpeTrainerOptions", "LoadOptions", "FieldMapping",
]
OPTIONS = [getattr(pylamia, name) for name in OPTIONS_CLASSES if hasattr(pylamia, name)]


def test_every_options_class_is_bound():
    missing = [n for n in OPTIONS_CLASSES if not hasattr(pylamia, n)]
    assert not missing
    # Any other class with the options interface is listed above too.
    found = sorted(n for n in dir(pylamia._C) if isinstance(getattr(pylamia._C, n), type)
                   and hasattr(getattr(pylamia._C, n), "fields") and hasattr(getattr(pylamia._C, n), "from_json"))
    assert found == sorted(OPTIONS_CLASSES)


def other_value(value, field):
    """A different valid value of the same JSON type (for the keyword / round-trip checks)."""
    if "values" in field:
        return next(v for v in field["values"] if v != value)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        if "check" in field and "[0, 1)" in field["check"]:
            return value / 2 if value > 0 else 0.5
        return value * 1.5 if value else 0.25
    if isinstance(value, str):
        return "cuda" if field["name"] == "device" else value + "x"
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value + ["extra"]
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return [v + 1 for v in value]
    return None  # nested options, lists of records, None: covered by the dict round trip


@pytest.mark.parametrize("cls", OPTIONS, ids=lambda c: c.__name__)
def test_defaults_come_from_the_cpp_struct_and_fields_are_listed_once(cls):
    fields = cls.fields()
    names = [f["name"] for f in fields]
    assert len(names) == len(set(names))
    d = cls().to_dict()
    assert list(d) == sorted(names) or set(d) == set(names)
    for f in fields:
        assert d[f["name"]] == f["default"], f["name"]
        assert f["doc"], f"{cls.__name__}.{f['name']} has no doc"
    assert cls() == cls()
    assert cls.from_json(cls().to_json()) == cls()


@pytest.mark.parametrize("cls", OPTIONS, ids=lambda c: c.__name__)
def test_every_field_is_settable_by_keyword_and_round_trips(cls):
    for f in cls.fields():
        name, default = f["name"], f["default"]
        new = other_value(default, f)
        if new is None:
            continue
        o = cls(**{name: new})
        assert getattr(o, name) == new, name
        assert o != cls()
        assert o.to_dict()[name] == new
        back = cls.from_json(o.to_json())
        assert back == o and getattr(back, name) == new
        assert cls(o.to_dict()) == o
        assert cls(options=o) == o
        assert copy.deepcopy(o) == o and pickle.loads(pickle.dumps(o)) == o
        p = cls()
        setattr(p, name, new)
        assert p == o
        assert name in repr(o)


@pytest.mark.parametrize("cls", OPTIONS, ids=lambda c: c.__name__)
def test_unknown_keys_and_wrong_types_are_rejected_naming_the_key(cls):
    with pytest.raises(TypeError, match="no_such_field"):
        cls(no_such_field=1)
    with pytest.raises(ValueError, match="unknown key 'no_such_field'"):
        cls.from_json('{"no_such_field": 1}')
    with pytest.raises(ValueError, match="unknown key 'no_such_field'"):
        cls({"no_such_field": 1})
    for f in cls.fields():
        name = f["name"]
        wrong = {"a string": 12, "a boolean": "yes"}.get(f["type"], [["not", "this"]])
        if f["type"].startswith(("a list", "an object of")):
            wrong = "not a list"
        with pytest.raises(ValueError, match=f"'{re.escape(name)}'"):
            cls(**{name: wrong})
        o = cls()
        with pytest.raises(ValueError, match=f"'{re.escape(name)}'"):
            setattr(o, name, wrong)
        assert o == cls()  # a failed assignment changes nothing


def test_integers_are_range_checked_not_wrapped():
    with pytest.raises(ValueError, match="kmeans.iterations"):
        pylamia.PaletteQuantizerOptions({"kmeans": {"iterations": 2**40}})
    with pytest.raises(ValueError, match="'seed'"):
        pylamia.KMeansOptions(seed=-1)
    with pytest.raises(ValueError, match="'num_codes'"):
        pylamia.KMeansOptions(num_codes=0)
    with pytest.raises(ValueError, match="'noise'"):
        pylamia.SyntheticOptions(noise=float("nan"))
    assert pylamia.KMeansOptions(seed=2**64 - 1).seed == 2**64 - 1
    assert pylamia.KMeansOptions(num_codes=8.0).num_codes == 8


def test_composite_options_contain_their_inner_options():
    q = pylamia.PaletteQuantizerOptions()
    assert isinstance(q.kmeans, pylamia.KMeansOptions) and q.kmeans == pylamia.KMeansOptions()
    q.kmeans.num_codes = 16  # by reference
    assert q.to_dict()["kmeans"]["num_codes"] == 16
    q.kmeans = {"restarts": 3}  # a dict sets the keys it has, like a config section
    assert q.kmeans.restarts == 3 and q.kmeans.num_codes == 16
    q.kmeans = pylamia.KMeansOptions(init="random")
    assert q.to_dict()["kmeans"]["init"] == "random"
    r = pylamia.ResidualKMeansOptions(kmeans=pylamia.KMeansOptions(num_codes=8))
    assert r.kmeans.num_codes == 8
    # Objects that take options accept the inner fields as keywords too.
    pq = pylamia.PaletteQuantizer(pca_dim=4, num_codes=8, init="random")
    assert pq.options.kmeans.num_codes == 8 and pq.options.kmeans.init == "random" and pq.options.pca_dim == 4
    assert pylamia.PaletteQuantizer(q).options == q
    with pytest.raises(TypeError, match="num_codez"):
        pylamia.PaletteQuantizer(num_codez=8)
    assert pylamia.ResidualKMeans(num_levels=2, num_codes=8).options.kmeans.num_codes == 8


# ---- the type stub and the docs must not drift from the bound classes ----------------------------

def stub_class_fields(name):
    """`field: type = default` lines of class `name` in __init__.pyi."""
    text = (ROOT / "python" / "pylamia" / "__init__.pyi").read_text()
    m = re.search(rf"^class {name}\b.*?:\n(.*?)(?=^\S)", text, re.S | re.M)
    assert m, f"class {name} is not in __init__.pyi"
    out = {}
    for line in m.group(1).splitlines():
        f = re.match(r"^    (\w+): [^=]+?(?: = (.+))?$", line)
        if f and not line.strip().startswith("def"):
            out[f.group(1)] = f.group(2)
    return out


@pytest.mark.parametrize("cls", OPTIONS, ids=lambda c: c.__name__)
def test_stub_lists_every_field_with_the_default(cls):
    stub = stub_class_fields(cls.__name__)
    names = [f["name"] for f in cls.fields()]
    assert sorted(stub) == sorted(names), cls.__name__
    for f in cls.fields():
        written = stub[f["name"]]
        if written is None or written == "...":
            continue
        assert ast.literal_eval(written) == f["default"], (cls.__name__, f["name"], written)


def doc_tables():
    """Tables after `<!-- options: Name -->` in docs/*.md: {Name: {field: default}}."""
    tables = {}
    for md in sorted((ROOT / "docs").glob("*.md")):
        lines = md.read_text().splitlines()
        for i, line in enumerate(lines):
            m = re.match(r"<!-- options: (\w+) -->", line)
            if not m:
                continue
            rows = {}
            for row in lines[i + 1:]:
                if not row.startswith("|"):
                    break
                cells = [c.strip() for c in row.strip("|").split("|")]
                f = re.fullmatch(r"`(\w+)`", cells[0])
                if f:
                    rows[f.group(1)] = cells[1].strip("`")
            tables[m.group(1)] = rows
    return tables


def test_docs_options_tables_match_the_bound_classes():
    tables = doc_tables()
    assert tables, "no <!-- options: Name --> tables in docs/"
    for name, rows in tables.items():
        cls = getattr(pylamia, name)
        fields = {f["name"]: f["default"] for f in cls.fields()}
        assert sorted(rows) == sorted(fields), name
        for field, written in rows.items():
            assert json.loads(written) == fields[field], (name, field, written)
