"""pylamia: LAMIA semantic IDs from Python.

torch is imported first: the compiled module links against libtorch and uses
torch's tensor type casters.

Threads: at import, pylamia sets torch's intra-op thread count (and OpenMP's) to
pylamia.default_thread_count(): OMP_NUM_THREADS when it is a positive integer, else the
machine's physical cores within the cgroup CPU limit (Debian's torch starts with one thread).
It leaves the count alone when
- the environment variable LAMIA_NO_THREAD_DEFAULT is set (to anything but "" or "0"), or
- torch was imported before pylamia and its count no longer is torch's own starting value
  (the user called torch.set_num_threads already).
torch.set_num_threads(n) or pylamia.set_threads(n) after the import changes it as usual;
pylamia.thread_summary() says what is in effect and why.

OpenMP's wait policy: when torch is not imported yet, pylamia sets OMP_WAIT_POLICY=PASSIVE (unless
it is set) before importing it: spinning OpenMP workers take the CPU from the working thread as soon
as the machine has other load (a small model ran 40x slower at 2 threads on 2 busy cores). libgomp
reads the variable once, when torch loads it, so after `import torch` it is too late; `lamia` (the CLI)
does the same by re-executing itself. Likewise OPENBLAS_NUM_THREADS=1 (OpenBLAS's threads on top of
torch's oversubscribe the cores).
"""
import os as _os
import sys as _sys

if "torch" not in _sys.modules:
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # torch parallelizes around its GEMM calls; OpenBLAS's own threads on top oversubscribe the
    # cores (a recommender trained 5.7x slower with them on 2 cores; docs/results.md).
    _os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: F401,E402  (must precede the compiled module)

from . import _C
from ._C import *  # noqa: F401,F403

__version__ = _C.__version__


def _apply_thread_default():
    if _os.environ.get("LAMIA_NO_THREAD_DEFAULT", "") not in ("", "0"):
        return
    if torch.get_num_threads() != _C._torch_default_num_threads():
        return  # set by the user before importing pylamia
    _C.set_threads()


_apply_thread_default()
