"""A distillation's teacher as the time estimate needs it (`workbench.jobs.estimate`): its member runs'
specs, the networks whose forward passes the job adds to the student's training, without loading any."""

from typing import TYPE_CHECKING, Any

from workbench.constants import RunKind
from workbench.errors import UserError
from workbench.specs.distill import resolve_teacher

if TYPE_CHECKING:
    from store import Store


def teacher_specs(spec: Any, store: "Store | None") -> tuple[list[dict], str]:
    """A distillation spec's teacher as its members' specs (resolved as queueing resolves it, unless the
    spec already carries its members), and why it could not be ("" when it was, or for another kind)."""
    if spec.kind != RunKind.DISTILL:
        return [], ""
    if store is None:
        return [], "no store to find the teacher in"
    try:
        members = spec.members or resolve_teacher(store, spec).members
        return [store.get_run(run_id)["spec"] for run_id, _ in members], ""
    except UserError as exc:
        return [], str(exc)


def run_teacher(store: "Store", run: dict) -> list[dict] | None:
    """A stored run's teacher members' specs: [] for a run without a teacher, None when one is gone."""
    if run["kind"] != RunKind.DISTILL:
        return []
    try:
        return [store.get_run(int(r))["spec"] for r in (run["spec"].get("teacher_members") or {})] or None
    except UserError:
        return None


__all__ = ["run_teacher", "teacher_specs"]
