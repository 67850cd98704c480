"""A restricted unpickler for the official CIFAR archives.

The `cifar-10-python` / `cifar-100-python` batches are Python pickles. `pickle.load` would run any
callable a crafted file names, so we admit only the few constructors the format needs (NumPy arrays
and dtypes, bytes) and refuse everything else with a clear error.
"""

import _codecs
import io
import pickle
from typing import Any

import numpy as np
from numpy._core import multiarray as _multiarray

from workbench.errors import UserError

# (module, name) -> object. Both numpy module spellings appear: `numpy.core` in files written by
# NumPy 1.x (the official archives), `numpy._core` in files written by NumPy 2.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _codecs.encode,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch") from None


def load_batch(data: bytes, source: str) -> dict:
    """Unpickle one CIFAR batch (a dict) from `data`; `source` names the file in error messages."""
    try:
        # encoding="bytes": the official batches were written by Python 2, with byte-string keys.
        batch = _RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        raise UserError(
            f"{source} is not a valid CIFAR batch and was not loaded ({exc}); "
            "use the official cifar-10-python.tar.gz / cifar-100-python.tar.gz"
        ) from None
    except Exception as exc:  # truncated or garbled bytes raise many different errors
        raise UserError(f"{source} is corrupt or truncated ({type(exc).__name__}: {exc}); download it again") from None
    if not isinstance(batch, dict):
        raise UserError(f"{source} is not a CIFAR batch (expected a dict, found {type(batch).__name__})")
    # Keys are bytes in the official files; accept str keys too (re-pickled copies).
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
