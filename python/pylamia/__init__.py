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
torch's oversubscribe the cores for small GEMMs); the palette encoder's training, evaluation and
export raise OpenBLAS to torch's thread count for their large GEMMs while they run, unless you set
OPENBLAS_NUM_THREADS yourself (pylamia.set_palette_blas_threads; pylamia.blas_thread_summary()).
"""
import os as _os
import sys as _sys

if "torch" not in _sys.modules:
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # OpenBLAS's own threads on top of torch's oversubscribe the cores for small GEMMs (a recommender
    # trained 5.7x slower with them on 2 busy cores; docs/results.md); the palette encoder's large
    # GEMMs get them back while it runs (include/lamia/core/blas_threads.hpp).
    if "OPENBLAS_NUM_THREADS" not in _os.environ:
        _os.environ["OPENBLAS_NUM_THREADS"] = "1"
        _os.environ["LAMIA_OPENBLAS_THREADS_DEFAULTED"] = "1"  # not the user's: the palette code may raise it

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
