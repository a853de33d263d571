"""The thread default: pylamia sets torch's thread count to the machine's cores at import.

The import-time behaviour is checked in fresh interpreters (the import runs once per process).
"""
import json
import os
import subprocess
import sys

import pytest
import torch

import pylamia

PROBE = ("import json, os, sys, torch{before}; import pylamia; "
         "print(json.dumps({{'torch': torch.get_num_threads(), 'default': pylamia.default_thread_count(), "
         "'torch_start': pylamia._C._torch_default_num_threads(), 'summary': pylamia.thread_summary()}}))")


def probe(env_changes, before=""):
    env = {k: v for k, v in os.environ.items() if k not in ("LAMIA_NO_THREAD_DEFAULT", "OMP_NUM_THREADS")}
    env.update(env_changes)
    out = subprocess.run([sys.executable, "-c", PROBE.format(before=before)], env=env, capture_output=True,
                         text=True, check=True, cwd="/")
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def plain():
    """A fresh interpreter's import, without OMP_NUM_THREADS or LAMIA_NO_THREAD_DEFAULT."""
    return probe({})


def test_default_thread_count_is_positive():
    assert pylamia.default_thread_count() >= 1
    assert pylamia.thread_summary().startswith(f"threads {torch.get_num_threads()} (")


def test_import_sets_torch_to_the_default(plain):
    r = plain
    assert r["default"] >= 1
    assert r["torch"] == r["default"], r
    assert r["summary"].startswith(f"threads {r['default']} (default, from "), r


def test_environment_variable_disables_it():
    r = probe({"LAMIA_NO_THREAD_DEFAULT": "1"})
    assert r["torch"] == r["torch_start"], r  # torch's own starting value, untouched


def test_a_count_set_before_the_import_is_kept(plain):
    wanted = plain["default"] + 1
    r = probe({}, before=f"; torch.set_num_threads({wanted})")
    assert r["torch"] == wanted, r


def test_omp_num_threads_is_respected_and_bad_values_are_ignored(plain):
    r = probe({"OMP_NUM_THREADS": "3"})
    assert r["default"] == 3 and r["torch"] == 3, r
    r = probe({"OMP_NUM_THREADS": "abc"})
    assert r["default"] == plain["default"], r
    assert "OMP_NUM_THREADS 'abc' ignored" in r["summary"], r


def test_set_threads():
    before = torch.get_num_threads()
    try:
        assert pylamia.set_threads(1) == 1
        assert torch.get_num_threads() == 1
        assert pylamia.set_threads() == pylamia.default_thread_count()
        assert torch.get_num_threads() == pylamia.default_thread_count()
        assert "set explicitly" in pylamia.thread_summary(pylamia.default_thread_count() + 1)
    finally:
        torch.set_num_threads(before)


def test_keep_freed_memory_reports_what_it_did(monkeypatch):
    import platform
    applied, note = pylamia.keep_freed_memory()
    if platform.libc_ver()[0] == "glibc":
        assert applied and "M_MMAP_MAX 0" in note
    monkeypatch.setenv("LAMIA_KEEP_FREED_MEMORY", "0")
    assert pylamia.keep_freed_memory() == (False, "off (LAMIA_KEEP_FREED_MEMORY=0)")


BLAS_PROBE = ("import json, torch, pylamia; print(json.dumps({'blas': pylamia.blas_thread_count(), "
              "'torch': torch.get_num_threads(), 'summary': pylamia.blas_thread_summary()}))")


def blas_probe(env_changes, code=BLAS_PROBE):
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "LAMIA_OPENBLAS_THREADS_DEFAULTED", "LAMIA_NO_THREAD_DEFAULT",
                        "OMP_NUM_THREADS")}
    env.update(env_changes)
    code = code.replace("import json, torch, pylamia", "import json, pylamia, torch")  # pylamia first
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd="/")
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_openblas_starts_on_one_thread_and_the_palette_encoder_gets_torchs_count():
    if pylamia.blas_thread_count() == 0:
        pytest.skip("torch's BLAS is not OpenBLAS here")
    r = blas_probe({})
    assert r["blas"] == 1, r
    assert r["summary"] == f"OpenBLAS 1 thread; palette encoder {r['torch']}", r


def test_a_users_openblas_setting_is_kept_for_the_palette_encoder():
    if pylamia.blas_thread_count() == 0:
        pytest.skip("torch's BLAS is not OpenBLAS here")
    r = blas_probe({"OPENBLAS_NUM_THREADS": "1"})
    assert r["summary"] == "OpenBLAS 1 thread (OPENBLAS_NUM_THREADS); palette encoder 1 (left as is)", r
    r = blas_probe({"OPENBLAS_NUM_THREADS": "1"},
                   BLAS_PROBE.replace("import json, torch, pylamia;",
                                      "import json, torch, pylamia; pylamia.set_palette_blas_threads(2);"))
    assert r["summary"] == "OpenBLAS 1 thread (OPENBLAS_NUM_THREADS); palette encoder 2", r
