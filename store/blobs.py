"""Values as bytes/text for the store: logits and labels as `.npy` blobs, labels' sha256 fingerprint,
specs and lists as JSON text.

`.npy` (numpy.save, never pickled) keeps dtype and shape inside the blob, so a blob read back
without the `shape` column still round-trips exactly. Each label vector is stored once (the `labels`
table, keyed by its hash); predictions point to it by hash, which also lets an ensemble or a report
check that two runs' logits were computed on the same examples in the same order.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Container
from pathlib import Path
from typing import Any, SupportsFloat

import numpy as np
from numpy.typing import ArrayLike


def logits_to_npy(logits: ArrayLike) -> bytes:
    """Float32 `.npy` bytes of `logits` (any array-like of numbers; cast to float32)."""
    return array_to_npy(np.asarray(logits, dtype=np.float32))


def array_to_npy(array: ArrayLike) -> bytes:
    """`.npy` bytes of a numeric array, in its own dtype."""
    array = np.ascontiguousarray(array)
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def npy_to_array(data: bytes) -> np.ndarray:
    """The array saved in `.npy` bytes (pickled object arrays are refused)."""
    return np.load(io.BytesIO(bytes(data)), allow_pickle=False)


def labels_hash(labels: ArrayLike) -> str:
    """sha256 hex digest of the labels as little-endian int64 bytes, in order.

    The same labels give the same hash whatever their original integer dtype or container.
    """
    array = np.asarray(labels)
    if array.size and not np.issubdtype(array.dtype, np.integer) and not np.all(np.equal(np.mod(array, 1), 0)):
        raise ValueError("labels must be whole numbers (class indices)")
    array = np.ascontiguousarray(array.reshape(-1), dtype="<i8")
    return hashlib.sha256(array.tobytes()).hexdigest()


def optional_float(value: SupportsFloat | None) -> float | None:
    """A number column's value as a plain float (numpy scalars too); None stays NULL."""
    return None if value is None else float(value)


def _json_default(value: object) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    """JSON text of `value`; numpy scalars/arrays, tuples, sets and Paths become plain JSON."""
    return json.dumps(value, default=_json_default)


def decode_json(row: dict[str, Any], fields: Container[str]) -> dict[str, Any]:
    """A copy of `row` with the JSON text in `fields` decoded (NULL stays None)."""
    return {k: json.loads(v) if k in fields and v is not None else v for k, v in row.items()}
