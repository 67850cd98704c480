"""How long several specs queued together take (a sweep, a study's first trials, `train-all`): each spec's
`workbench.jobs.estimate.estimate`, specs that cost the same estimated once, added up, and the wall time with
as many jobs side by side as the GPUs allow."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workbench.jobs.estimate import Estimate, device_of, estimate

if TYPE_CHECKING:
    from store import Store
    from workbench.specs.base import Spec

# The fields `estimate` reads (besides the kind): specs that agree on them take the same time.
COST_FIELDS = (
    "model",
    "model_kwargs",
    "backbone",
    "image_size",
    "precision",
    "batch_size",
    "xla",
    "augment",
    "dataset",
    "dataset_options",
    "data_path",
    "val_size",
    "snapshots",
    "average_last",
    "average_snapshots",
    "teacher",
    "teacher_members",
    "distill_mode",
    "train_subset",
    "gpus",
    "epochs",
    "head_epochs",
    "finetune_epochs",
)


@dataclass
class ManyEstimate:
    """Several specs queued together (a sweep): `seconds` their training time added up (None when no
    spec has a figure), `wall` how long the queue takes with `side_by_side` jobs at once, `unknown` how
    many specs have no figure, `rough` whether any figure is rough, and `sources` what the figures rest on."""

    seconds: float | None
    wall: float | None
    side_by_side: int
    unknown: int
    rough: bool
    device: str
    sources: tuple[str, ...] = ()


def estimate_many(specs: "Sequence[Spec]", store: "Store | None", gpu_count: int) -> ManyEstimate:
    """`estimate` of every spec (specs that cost the same are estimated once), added up; the queue runs
    as many side by side as the GPUs allow (one at a time on the CPU)."""
    figures: list[Estimate] = []
    cache_: dict[tuple[str, str], Estimate] = {}
    for spec in specs:
        data = spec.to_dict()
        key = (spec.kind, repr([data.get(f) for f in COST_FIELDS]))
        if key not in cache_:
            cache_[key] = estimate(spec, store, gpu_count)
        figures.append(cache_[key])
    known = [e for e in figures if e.seconds is not None]
    devices = [device_of(spec, gpu_count) for spec in specs]
    needed = max((n for kind, n in devices if kind == "GPU"), default=0)
    side_by_side = max(1, gpu_count // needed) if needed else 1
    seconds = sum(e.seconds or 0.0 for e in known) if known else None  # known: seconds not None
    return ManyEstimate(
        seconds,
        None if seconds is None else seconds / min(side_by_side, len(specs)),
        side_by_side,
        len(figures) - len(known),
        any(e.rough for e in known),
        figures[0].device if figures else "CPU",
        tuple(dict.fromkeys(e.source for e in figures)),
    )
