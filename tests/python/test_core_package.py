"""The pylamia package itself: import from anywhere, torch first, stubs complete."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pylamia

STUB = Path(pylamia.__file__).with_name("__init__.pyi")


def test_import_from_another_directory(tmp_path):
    out = subprocess.run([sys.executable, "-c", "import pylamia, sys; print(pylamia.__version__)"],
                         cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == pylamia.__version__


def test_torch_is_imported_before_the_compiled_module():
    code = "import sys, pylamia; mods = list(sys.modules); print(mods.index('torch') < mods.index('pylamia._C'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "True"


def test_compiled_module_is_private_and_reexported():
    assert pylamia._C.__name__ == "pylamia._C"
    public = [n for n in dir(pylamia._C) if not n.startswith("_")]
    for name in public:
        assert getattr(pylamia, name) is getattr(pylamia._C, name)


def test_type_stub_names_every_public_symbol():
    assert STUB.exists(), "python/pylamia/__init__.pyi is missing"
    assert STUB.with_name("py.typed").exists()
    tree = ast.parse(STUB.read_text())
    declared = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            declared.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            declared.add(node.target.id)
        elif isinstance(node, ast.Assign):
            declared.update(t.id for t in node.targets if isinstance(t, ast.Name))
    public = {n for n in dir(pylamia._C) if not n.startswith("_")}
    missing = sorted(public - declared)
    assert not missing, f"names exported by pylamia._C but not declared in __init__.pyi: {missing}"
