"""Export a run: its epochs as CSV, its stored logits and labels as a NumPy .npz archive, or its trained
model with its preprocessing (keras, savedmodel, tflite, onnx: `workbench.predict.export`)."""

import csv
from pathlib import Path

import numpy as np

from workbench.constants import AuditAction
from workbench.errors import UserError
from workbench.users import os_user

EPOCH_FIELDS = ("epoch", "lr", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")


MODEL_FORMATS = ("keras", "savedmodel", "tflite", "onnx")
FORMATS = ("csv", "npz", *MODEL_FORMATS)


def export_run(store, run_id: int, fmt: str, output=None, by: str | None = None) -> Path:
    """Write the export and record it in the audit trail as `by`'s (default: the OS user)."""
    path = _export(store, run_id, fmt, output)
    store.record(by or os_user(), AuditAction.EXPORT, f"run {run_id}", f"{fmt}: {path}")
    return path


def _export(store, run_id: int, fmt: str, output=None) -> Path:
    if fmt in MODEL_FORMATS:  # the model and, beside it, its JSON (`metadata_path`)
        from workbench.predict.export import export_model  # noqa: PLC0415 - Keras: csv and npz need none

        return export_model(store, run_id, fmt, output)
    run = store.get_run(run_id)
    path = Path(output or f"run-{run_id}.{fmt}")
    if path.parent and not path.parent.exists():
        raise UserError(f"folder {path.parent} does not exist; create it or choose another --output")
    if fmt == "csv":
        rows = store.epochs(run_id)
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(("run", "name") + EPOCH_FIELDS)
            for row in rows:
                writer.writerow([run_id, run["name"]] + [row[f] for f in EPOCH_FIELDS])
    elif fmt == "npz":
        splits = store.prediction_splits(run_id)
        if not splits:
            raise UserError(f"run {run_id} ({run['status']}) has no stored logits; only completed runs have them")
        arrays = {}
        for split in splits:
            arrays[f"logits_{split}"] = store.load_logits(run_id, split)
            arrays[f"labels_{split}"] = store.load_labels(run_id, split)
        np.savez(path, **arrays)
    else:
        raise UserError(f"unknown export format {fmt!r}; choose {', '.join(FORMATS)}")
    return path
