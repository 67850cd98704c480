"""What defines a run: one spec class per kind of run, all following `workbench.specs.base.Spec`.

spec = spec_class(run["kind"]).from_dict(run["spec"])   # the stored JSON back as its spec
"""

from workbench.errors import choose
from workbench.specs.base import Spec
from workbench.specs.finetune import FinetuneSpec
from workbench.specs.run import RunSpec

SPEC_CLASSES = {cls.kind: cls for cls in (RunSpec, FinetuneSpec)}


def spec_class(kind: str) -> type[Spec]:
    """The spec class of a run kind ("scratch": RunSpec, "finetune": FinetuneSpec)."""
    return SPEC_CLASSES[choose("run kind", kind, SPEC_CLASSES)]


__all__ = ["SPEC_CLASSES", "FinetuneSpec", "RunSpec", "spec_class"]
