"""What defines a run: one spec class per kind of run, all following `workbench.specs.base.Spec`.

spec = spec_class(run["kind"]).from_dict(run["spec"])   # the stored JSON back as its spec
"""

from workbench.errors import choose
from workbench.specs.base import Spec
from workbench.specs.distill import DistillSpec
from workbench.specs.finetune import FinetuneSpec
from workbench.specs.run import RunSpec

SPEC_CLASSES = {cls.kind: cls for cls in (RunSpec, FinetuneSpec, DistillSpec)}


def spec_class(kind: str) -> type[Spec]:
    """The spec class of a run kind ("scratch": RunSpec, "finetune": FinetuneSpec, "distill": DistillSpec)."""
    return SPEC_CLASSES[choose("run kind", kind, SPEC_CLASSES)]


__all__ = ["SPEC_CLASSES", "DistillSpec", "FinetuneSpec", "RunSpec", "spec_class"]
