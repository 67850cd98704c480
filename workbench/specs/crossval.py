"""A cross-validation request (issue 24): K runs of one recipe, run k trained without fold k of the training
split and storing its logits for that fold, all tagged `cv:NAME`; their parts stitch into the out-of-fold
matrix of the whole training split (`workbench.inspect.crossval`), the training split's source for label quality.

    request = CrossVal("wrn-cv", base_spec, folds=5)
    specs = request.validate(available_gpus=0)      # five RunSpecs, dataset options cv_folds=5,cv_fold=k

Queued by `workbench crossval` and by a preset's `[crossval]` table (`workbench.specs.presets`).
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from workbench.errors import UserError
from workbench.specs.run import RunSpec

TAG_PREFIX = "cv:"
DEFAULT_FOLDS = 5
MAX_FOLDS = 20
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,59}$")


@dataclass
class CrossVal:
    name: str
    base: RunSpec
    folds: int = DEFAULT_FOLDS

    def __post_init__(self) -> None:
        self.name = str(self.name or "").strip()
        if not NAME_PATTERN.match(self.name):
            raise UserError(
                f"cross-validation name {self.name!r} is not usable: use letters, digits, '-', '_' or '.' "
                "(at most 60, starting with a letter or digit), e.g. resnet-cv"
            )
        try:
            self.folds = int(self.folds)
        except (TypeError, ValueError):
            raise UserError(f"folds must be a whole number from 2 to {MAX_FOLDS}, got {self.folds!r}") from None
        if not 2 <= self.folds <= MAX_FOLDS:
            raise UserError(f"folds must be from 2 to {MAX_FOLDS} (default {DEFAULT_FOLDS}), got {self.folds}")
        options = self.base.dataset_options or {}
        if "cv_folds" in options or "cv_fold" in options:
            raise UserError(
                "a cross-validation request sets cv_folds and cv_fold itself; leave them out of its dataset options"
            )

    @property
    def tag(self) -> str:
        return TAG_PREFIX + self.name

    def specs(self) -> list[RunSpec]:
        base_name = self.base.display_name()
        return [
            self.base.replace(
                dataset_options={**(self.base.dataset_options or {}), "cv_folds": self.folds, "cv_fold": k},
                name=f"{self.name}-fold{k}of{self.folds}"
                if not self.base.name
                else f"{base_name}-fold{k}of{self.folds}",
            )
            for k in range(self.folds)
        ]

    def validate(self, *, available_gpus: int = 0) -> list[RunSpec]:
        """Every fold's spec, validated before any is queued."""
        return [spec.validate(available_gpus=available_gpus) for spec in self.specs()]


class _Queue(Protocol):
    gpus: Any

    def submit(self, spec: Any, *, tags: Any = ..., by: str | None = None) -> int: ...


def submit_crossval(queue: _Queue, request: CrossVal, tags: Iterable[str] = (), by: str | None = None) -> list[int]:
    """Validate the K runs, then queue them all tagged `cv:NAME` (and `tags`); returns their run ids."""
    specs = request.validate(available_gpus=len(queue.gpus))
    tags = list(dict.fromkeys([*tags, request.tag]))
    return [queue.submit(spec, tags=tags, by=by) for spec in specs]
