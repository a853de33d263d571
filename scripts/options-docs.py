#!/usr/bin/env python3
"""Prints the type-stub block or the docs table of bound Options classes, from their field lists
(Name.fields(): name, type, default, doc), so the stub and docs/*.md are written from the code.
tests/python/test_core_options.py fails when either drifts.

    PYTHONPATH=build/pypkg /usr/bin/python3 scripts/options-docs.py stub KMeansOptions PaletteQuantizerOptions
    PYTHONPATH=build/pypkg /usr/bin/python3 scripts/options-docs.py table PaletteTrainerOptions
"""
import json
import sys

import pylamia

PY_TYPES = {"a boolean": "bool", "a string": "str", "a finite number": "float", "a path (string)": "str"}


def py_type(field):
    t = field["type"]
    if t.startswith("null or "):
        return f"_OOptional[{py_type({'type': t[len('null or '):]})}]"
    if t.startswith("a list of "):
        rest = t[len("a list of "):]
        if "object (" in rest:
            return f"_OList[{rest.split('(')[1].split(')')[0]}]"
        return f"_OList[{ {'strings': 'str', 'integers': 'int', 'non-negative integers': 'int', 'finite numbers': 'float'}.get(rest, '_OAny')}]"
    if t in PY_TYPES:
        return PY_TYPES[t]
    if "integer" in t and "fraction" in t:
        return "_OUnion[int, float]"
    if "integer" in t:
        return "int"
    if t.startswith("one of") or t.startswith("a device string"):
        return "str"
    if t.startswith("an object ("):
        return t[len("an object ("):-1]
    return "_OAny"


def py_literal(value):
    if isinstance(value, (dict, list)) and value:
        return "..."
    return repr(value)


def stub(name):
    cls = getattr(pylamia, name)
    summary = " ".join((cls.__doc__ or name).split("\n\nFields:")[0].split())
    lines = [f"class {name}(_OptionsBase):", f'    """{summary}"""']
    for f in cls.fields():
        lines.append(f"    {f['name']}: {py_type(f)} = {py_literal(f['default'])}")
    lines.append(f"    def __init__(self, options: _OUnion[{name}, _ODict[str, _OAny], None] = None, **fields: _OAny) -> None: ...")
    lines.append("    @staticmethod")
    lines.append(f"    def from_json(text: str) -> {name}: ...")
    return "\n".join(lines)


def table(name):
    cls = getattr(pylamia, name)
    lines = [f"<!-- options: {name} -->", "| field | default | meaning |", "|---|---|---|"]
    for f in cls.fields():
        meaning = f["doc"] + (f" ({f['check']})" if "check" in f else "")
        if "values" in f:
            meaning += "; one of " + ", ".join(f"`{v}`" for v in f["values"])
        lines.append(f"| `{f['name']}` | `{json.dumps(f['default'])}` | {meaning} |")
    return "\n".join(lines)


if __name__ == "__main__":
    what, names = sys.argv[1], sys.argv[2:]
    print("\n\n".join((stub if what == "stub" else table)(n) for n in names))
