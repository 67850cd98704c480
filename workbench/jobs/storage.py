"""Checkpoint storage every node of a Ray cluster reaches: a shared folder or any URI pyarrow's filesystems
open (`s3://bucket/prefix`, `gs://...`, `hdfs://...`), as Ray Train's `storage_path` is.

A remote job trains into a scratch folder on its node and copies each whole checkpoint here; a job that
resumes (on any node) copies it back first; the app mirrors it into the store's run folder, where Predict,
Export and Resume look. Layout: `<storage>/run-<id>/` with the run folder's own file names.

Written on `pyarrow.fs` rather than by hand so that object stores work as well as folders; each file goes
to a temporary name and is then moved over the old one, the checkpoint's epoch file last, so a reader
never takes a half-copied model for a whole one (the order `training.checkpoint` keeps on a local disk).
"""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path
from typing import Any

from workbench.errors import UserError


def checkpoint_files() -> tuple:
    """The run folder's files storage keeps, in copy order: the model before the epoch that vouches for it.
    (Imported here, not at the top: the checkpoint module imports Keras, which a job imports only once it runs,
    so that a node that cannot import it fails the run with the reason rather than in Ray's actor start.)"""
    from workbench.training.checkpoint import (  # noqa: PLC0415 - Keras: see the docstring
        CHECKPOINT,
        CHECKPOINT_INFO,
        PREPROCESSING,
    )

    return PREPROCESSING, CHECKPOINT, CHECKPOINT_INFO


def _filesystem(uri: str) -> tuple[Any, str]:
    """(pyarrow filesystem, base path) for a folder or a URI."""
    from pyarrow import fs  # noqa: PLC0415 - pyarrow: only --ray uses storage (a second at import)

    if "://" not in uri:
        return fs.LocalFileSystem(), str(Path(uri).expanduser().resolve())
    try:
        return fs.FileSystem.from_uri(uri)
    except Exception as exc:  # pyarrow says ArrowInvalid / ArrowNotImplementedError in its own words
        raise UserError(
            f"--storage {uri}: pyarrow cannot open it ({exc}); give a shared folder or a URI such as s3://bucket/prefix"
        ) from None


class CheckpointStorage:
    """One storage location; picklable as its URI, so remote jobs reopen it on their own node."""

    def __init__(self, uri: str) -> None:
        self.uri = str(uri)
        self.fs, self.base = _filesystem(self.uri)

    def __reduce__(self) -> tuple[type[CheckpointStorage], tuple[str]]:
        return (CheckpointStorage, (self.uri,))

    def check_writable(self) -> None:
        """Create the base folder and write a file there: a wrong --storage is refused at start."""
        probe = f"{self.base}/.workbench-probe"
        try:
            self.fs.create_dir(self.base, recursive=True)
            with self.fs.open_output_stream(probe) as out:
                out.write(b"ok")
            self.fs.delete_file(probe)
        except Exception as exc:
            raise UserError(
                f"--storage {self.uri} is not writable here ({exc}); give a folder or URI every node can write"
            ) from None

    def is_folder(self, path: str | PathLike[str]) -> bool:
        """Whether this storage is the local folder `path` (then there is nothing to copy)."""
        from pyarrow import fs  # noqa: PLC0415 - pyarrow: only --ray uses storage (a second at import)

        return isinstance(self.fs, fs.LocalFileSystem) and Path(self.base) == Path(path).resolve()

    def run_path(self, run_id: int) -> str:
        return f"{self.base}/run-{int(run_id)}"

    def epoch(self, run_id: int) -> int:
        """The epoch of the whole checkpoint stored for the run, 0 if there is none."""
        try:
            with self.fs.open_input_stream(f"{self.run_path(run_id)}/{checkpoint_files()[-1]}") as info:
                return int(json.loads(info.read())["epoch"])
        except (OSError, ValueError, KeyError, FileNotFoundError):
            return 0

    def upload(self, run_dir: str | PathLike[str], run_id: int) -> None:
        """Copy the run folder's checkpoint files that exist to storage, the epoch file last."""
        target = self.run_path(run_id)
        self.fs.create_dir(target, recursive=True)
        for name in checkpoint_files():
            source = Path(run_dir) / name
            if source.exists():
                self._copy_in(source, f"{target}/{name}")

    def download(self, run_id: int, run_dir: str | PathLike[str]) -> int:
        """Copy the run's stored checkpoint files into `run_dir` (the epoch file last); returns its epoch."""
        from pyarrow import fs  # noqa: PLC0415 - pyarrow: only --ray uses storage (a second at import)

        source = self.run_path(run_id)
        if self.fs.get_file_info(f"{source}/{checkpoint_files()[-1]}").type == fs.FileType.NotFound:
            return 0
        run_dir = Path(run_dir)
        for name in checkpoint_files():
            path = f"{source}/{name}"
            if self.fs.get_file_info(path).type == fs.FileType.NotFound:
                continue
            tmp = run_dir / f".{name}.download"
            with self.fs.open_input_stream(path) as src, open(tmp, "wb") as out:
                while chunk := src.read(1 << 22):
                    out.write(chunk)
            tmp.replace(run_dir / name)
        return self.epoch(run_id)

    def _copy_in(self, source: Path, target: str) -> None:
        tmp = f"{target}.tmp"
        with open(source, "rb") as src, self.fs.open_output_stream(tmp) as out:
            while chunk := src.read(1 << 22):
                out.write(chunk)
        self.fs.move(tmp, target)  # a rename on a folder; object stores write whole objects anyway
