"""pylamia: LAMIA semantic IDs from Python.

torch is imported first: the compiled module links against libtorch and uses
torch's tensor type casters.
"""
import torch  # noqa: F401  (must precede the compiled module)

from . import _C
from ._C import *  # noqa: F401,F403

__version__ = _C.__version__
