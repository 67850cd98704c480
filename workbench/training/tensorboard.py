"""Runs as TensorBoard sees them: event files written from the store (`python -m workbench export N --format
tensorboard`), or live while a run trains (the spec's `tensorboard` setting: `--tensorboard`, the Train
tab's checkbox).

One folder per run, `run-0007-<name>/`, under the store's `<stem>-tensorboard/` folder beside it (or the
export's --output), laid out as Keras' own TensorBoard callback does it, so train and validation curves
overlay in one chart:

    run-0007-<name>/              hyperparameters (HParams plugin: the spec's settings) and test_accuracy
    run-0007-<name>/train/        epoch_loss, epoch_accuracy, epoch_learning_rate, epoch_seconds
    run-0007-<name>/validation/   epoch_loss, epoch_accuracy

`tensorboard --logdir runs/workbench-tensorboard` then shows every run, its curves and the HParams table.
The values are the store's own epoch rows, so a live folder and an exported one say the same; an export
replaces a run's event files, and a resumed run's folder is rewritten from its kept epochs first.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.constants import ACTIVE_STATUSES, RunKind
from workbench.errors import UserError
from workbench.specs.flags import format_key_values
from workbench.specs.sweep import sweep_of

if TYPE_CHECKING:
    from store import Store
    from workbench.specs.base import Spec

TRAIN = {"loss": "epoch_loss", "accuracy": "epoch_accuracy", "lr": "epoch_learning_rate", "seconds": "epoch_seconds"}
VALIDATION = {"val_loss": "epoch_loss", "val_accuracy": "epoch_accuracy"}
LEFT_OUT = ("name", "data_path", "tensorboard")  # spec fields that are not hyperparameters


def default_logdir(store: Store) -> Path:
    """`<store folder>/<store stem>-tensorboard`: where live runs write, and the export's default."""
    return store.path.parent / f"{store.path.stem}-tensorboard"


def run_folder(run: dict) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.+-]+", "_", str(run.get("name") or ""))[:60].strip("_")
    return f"run-{int(run['id']):04d}" + (f"-{slug}" if slug else "")


def hyperparameters(run: dict) -> dict:
    """The run's settings as the HParams plugin takes them (bool, int, float or text), plus its kind and
    the sweep it belongs to."""
    values: dict[str, bool | int | float | str] = {
        "kind": str(run.get("kind") or RunKind.SCRATCH),
        "sweep": sweep_of(run.get("tags")) or "",
    }
    for key, value in sorted((run.get("spec") or {}).items()):
        if key in LEFT_OUT or value is None:
            continue
        if isinstance(value, (bool, int, float, str)):
            values[key] = value
        elif isinstance(value, (list, tuple)):
            values[key] = "+".join(map(str, value)) or "none"
        elif isinstance(value, dict):
            values[key] = format_key_values(value)
    return values


class EventWriter:
    """The three writers of one run's folder; `epoch(row)` writes a store epoch row, `finish(run)` the
    test accuracy. Opening it with `fresh=True` first deletes the folder's old event files."""

    def __init__(self, folder: Path, run: dict, *, fresh: bool = True) -> None:
        import tensorflow as tf  # noqa: PLC0415 - TensorFlow: seconds to import; `export` and the CLI load this module
        from tensorboard.plugins.hparams import api as hp  # noqa: PLC0415 - TensorBoard: imports TensorFlow

        self.tf, self.folder = tf, Path(folder)
        if fresh:
            for old in self.folder.glob("**/events.out.tfevents.*"):
                old.unlink()
        try:
            self.writers = {
                part: tf.summary.create_file_writer(str(self.folder / part)) for part in ("", "train", "validation")
            }
        except Exception as exc:  # an unwritable folder: say which
            raise UserError(f"cannot write TensorBoard events in {self.folder}: {exc}") from None
        with self.writers[""].as_default():
            hp.hparams(hyperparameters(run), trial_id=run_folder(run))
        self.writers[""].flush()

    def epoch(self, row: dict) -> None:
        step = int(row["epoch"])
        for part, tags in (("train", TRAIN), ("validation", VALIDATION)):
            with self.writers[part].as_default():
                for column, tag in tags.items():
                    if row.get(column) is not None:
                        self.tf.summary.scalar(tag, float(row[column]), step=step)
            self.writers[part].flush()

    def finish(self, run: dict) -> None:
        if run.get("test_accuracy") is not None:
            with self.writers[""].as_default():
                self.tf.summary.scalar(
                    "test_accuracy", float(run["test_accuracy"]), step=int(run.get("epochs_done") or 0)
                )
        self.close()

    def close(self) -> None:
        for writer in self.writers.values():
            writer.flush()
            writer.close()


def write_run(store: Store, run: dict, logdir: Path) -> Path:
    """Write (or rewrite) one run's event files from the store; returns its folder."""
    folder = Path(logdir) / run_folder(run)
    writer = EventWriter(folder, run)
    for row in store.epochs(run["id"]):
        writer.epoch(row)
    writer.finish(run)
    return folder


def export(store: Store, which: int | str, logdir: str | Path | None = None) -> tuple[Path, list[Path], list[str]]:
    """`which`: a run id or "all" (every run with an epoch, archived ones aside). Returns (the log folder,
    the folders written, notes on runs left out). A run that trains with live events keeps its folder."""
    logdir = Path(logdir) if logdir else default_logdir(store)
    if logdir.exists() and not logdir.is_dir():
        raise UserError(f"{logdir} is a file; --output names the folder TensorBoard reads (--logdir)")
    runs = store.seen_runs() if which == "all" else [store.get_run(int(which))]
    written, notes = [], []
    for run in runs:
        if (
            (run.get("spec") or {}).get("tensorboard")
            and run["status"] in ACTIVE_STATUSES
            and Path(logdir) == default_logdir(store)
        ):
            notes.append(f"run {run['id']} is {run['status']} and writes its events live: left as it is")
        elif not run.get("epochs_done"):
            notes.append(f"run {run['id']} ({run['status']}) has no epoch yet: nothing to show")
        else:
            try:
                logdir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UserError(f"cannot create {logdir}: {exc.strerror or exc}") from None
            written.append(write_run(store, run, logdir))
    return logdir, written, notes


def live_writer(spec: Spec, store: Store, run_id: int) -> EventWriter | None:
    """An EventWriter for a run that asked for live events (None when it did not), its folder rewritten from
    the epochs the store keeps (a resumed run continues where its checkpoint is)."""
    if not getattr(spec, "tensorboard", False):
        return None
    run = store.get_run(run_id)
    writer = EventWriter(default_logdir(store) / run_folder(run), run)
    for row in store.epochs(run_id):
        writer.epoch(row)
    return writer
