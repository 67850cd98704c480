"""Ensembles of stored runs: which runs can be combined, their logits, and the combination's figures.

The glue between the store and `workbench.ensemble.combine` (the mathematics), shared by the Ensemble tab and
`python -m workbench ensemble`. Weights and temperatures are only ever chosen on the validation split;
test figures are computed for the chosen weights and reported, never used to choose.

Weights are shown, searched and saved on one scale, `relative_weights`: the largest is 1 (only their
ratios matter to a weighted mean; a vote only asks which are above 0).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from workbench.constants import AuditAction, RunStatus
from workbench.ensemble import combine as ens
from workbench.ensemble.calibration import reliability_curve
from workbench.errors import UserError, choose
from workbench.users import os_user

if TYPE_CHECKING:
    from store import Store

METHODS = ("mean", "vote")
SEARCHES = ("grid", "greedy", "optimize")
VIEWS = ("", "_flip", "_translate", "_translate_flip")  # the stored logits of a split (workbench.training.fit)
MAX_GRID_MEMBERS = 5  # 11^5 = 161,051 combinations at step 0.1; 6 members would be 1.8 million


@dataclass(frozen=True)
class Settings:
    method: str = "mean"  # "mean": weighted mean of probabilities/logits; "vote": majority vote
    space: str = "prob"  # for "mean": average probabilities ("prob") or log-probabilities ("logit")
    temperature: bool = False  # scale each member by a temperature fitted on validation first
    tta: bool = False  # average each member with its horizontally flipped predictions
    translate: bool = False  # ... and with its translated ones (runs trained with `translate` store them)

    def describe(self) -> str:
        parts = [
            "majority vote"
            if self.method == "vote"
            else f"weighted mean of {'probabilities' if self.space == 'prob' else 'logits'}"
        ]
        parts += (
            ["temperature-scaled"] * self.temperature + ["flip TTA"] * self.tta + ["translate TTA"] * self.translate
        )
        return ", ".join(parts)

    def views(self) -> list:
        """The stored logits' suffixes whose probabilities are averaged per member."""
        views = [""] + ["_flip"] * self.tta
        return views + [f"_translate{v}" for v in views] * self.translate


@dataclass
class Members:
    ids: list
    names: list
    logits: dict  # split -> list of [N, K] arrays, one per member ("val", "test", "*_flip", "*_translate",
    #               "*_translate_flip" when stored)
    labels: dict  # "val"/"test" -> int64 [N]
    split_id: str
    temperatures: list = field(default_factory=list)  # fitted on validation, one per member
    _probs: dict = field(default_factory=dict, repr=False)  # (split, temperature, views) -> [M, N, K]

    @property
    def num_classes(self) -> int:
        return self.logits["val"][0].shape[1]


def relative_weights(weights: ArrayLike) -> list[float]:
    """Weights scaled so that the largest is 1: the one scale the tab's sliders, tables, the CLI and
    saved ensembles use."""
    w = np.asarray(weights, np.float64).reshape(-1)
    if w.size == 0 or not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
        raise UserError(f"weights must be >= 0 and not all zero; got {w.tolist()}")
    return (w / w.max()).tolist()


def candidates(store: "Store") -> list[dict]:
    """Every non-archived run with its eligibility: [{"id", "name", "split_id", "eligible", "reason"}]."""
    rows = []
    for run in store.list_runs():
        splits = set(store.prediction_splits(run["id"]))
        reason = None
        if run["status"] != RunStatus.COMPLETED:
            reason = f"{run['status']}: only completed runs have stored logits"
        elif not {"val", "test"} <= splits:
            reason = "no stored validation and test logits"
        rows.append(
            {
                "id": run["id"],
                "name": run["name"],
                "split_id": run["split_id"],
                "kind": run["kind"],
                "dataset": run["dataset"],
                "eligible": reason is None,
                "reason": reason,
                "val_accuracy": run["final_val_accuracy"],
                "test_accuracy": run["test_accuracy"],
            }
        )
    return rows


def compatible_with(candidate_rows: list[dict], selected_ids: Iterable[int | str] | None) -> list[dict]:
    """Candidates annotated with why they cannot join the current selection: a split other than that of
    the first selected run (picked first, so every later pick is checked against it)."""
    by_id = {c["id"]: c for c in candidate_rows}
    anchor = next((by_id[int(r)] for r in selected_ids or [] if int(r) in by_id), None)
    out = []
    for c in candidate_rows:
        reason = c["reason"]
        if reason is None and anchor is not None and c["split_id"] != anchor["split_id"]:
            reason = f"trained on split {c['split_id']}, the selection on {anchor['split_id']}"
        out.append({**c, "eligible": reason is None, "reason": reason})
    return out


class Lab:
    """Loads members from a store (caching their logits: slider moves must not re-read blobs)."""

    def __init__(self, store: "Store") -> None:
        self.store = store
        self._cache: dict[tuple[int, str, str], tuple[np.ndarray, str]] = {}
        self._members: dict[tuple, Members] = {}

    def _logits(self, run_id: int, split: str) -> tuple[np.ndarray, str]:
        info = self.store.prediction_info(run_id, split)
        key = (run_id, split, info["created_at"])
        if key not in self._cache:
            if len(self._cache) > 400:
                self._cache.clear()
            self._cache[key] = (self.store.load_logits(run_id, split), info["labels_hash"])
        return self._cache[key]

    def load(self, run_ids: Iterable[int | str] | None) -> Members:
        """Members' logits and labels, after checking they can be combined at all (memoised: a slider
        move re-uses the loaded members, their fitted temperatures and probabilities)."""
        ids = [int(r) for r in dict.fromkeys(run_ids or [])]
        key = tuple(ids), tuple(self._stamp(r) for r in ids)
        if key not in self._members:
            if len(self._members) > 16:
                self._members.clear()
            self._members[key] = self._load(ids)
        return self._members[key]

    def _stamp(self, run_id: int) -> str | None:
        try:
            return self.store.prediction_info(run_id, "val")["created_at"]
        except UserError:
            return None

    def _load(self, run_ids: list[int]) -> Members:
        if len(run_ids) < 2:
            raise UserError("an ensemble needs at least two completed runs; select another one")
        runs = [self.store.get_run(r) for r in run_ids]
        for run in runs:
            splits = set(self.store.prediction_splits(run["id"]))
            if not {"val", "test"} <= splits:
                raise UserError(
                    f"run {run['id']} ({run['name']}, {run['status']}) has no stored validation and "
                    "test logits: only completed runs can be ensembled"
                )
        split_ids = {run["split_id"] for run in runs}
        if len(split_ids) > 1:
            detail = ", ".join(f"run {r['id']}: {r['split_id']}" for r in runs)
            raise UserError(
                f"these runs were trained on different validation splits ({detail}); runs with "
                "different splits cannot be combined (their validation images differ)"
            )
        logits: dict[str, list[np.ndarray]] = {}
        labels: dict[str, np.ndarray] = {}
        for split in [base + view for base in ("val", "test") for view in VIEWS]:
            if not all(split in self.store.prediction_splits(r) for r in run_ids):
                continue
            loaded = [self._logits(r, split) for r in run_ids]
            if len({h for _, h in loaded}) > 1 or len({z.shape for z, _ in loaded}) > 1:
                raise UserError(
                    f"the runs' {split} predictions are for different images or classes "
                    f"({', '.join(str(z.shape) for z, _ in loaded)}); they cannot be combined"
                )
            logits[split] = [z for z, _ in loaded]
            base = split.split("_")[0]
            if base not in labels:
                labels[base] = self.store.load_labels(run_ids[0], base)
        members = Members(run_ids, [r["name"] for r in runs], logits, labels, runs[0]["split_id"])
        members.temperatures = ens.fit_member_temperatures(logits["val"], labels["val"])
        return members


def member_probs(members: Members, split: str, settings: Settings) -> np.ndarray:
    """[M, N, K] probabilities of each member on `split` under the settings (temperature, and the mean
    over the test-time augmentation views: plain, mirrored, translated, translated and mirrored)."""
    views = tuple(settings.views())
    key = (split, settings.temperature, views)
    if key in members._probs:
        return members._probs[key]
    temps = members.temperatures if settings.temperature else None
    if settings.tta and f"{split}_flip" not in members.logits:
        raise UserError(
            "flip test-time augmentation needs the runs' mirrored predictions, which some of "
            "these runs lack (runs trained before they were stored); turn TTA off"
        )
    if settings.translate and f"{split}_translate" not in members.logits:
        raise UserError(
            "translate test-time augmentation needs the runs' translated predictions, which only "
            "runs trained with the translate augmentation store; turn translate TTA off"
        )
    probs = np.asarray(sum(ens.member_probs(members.logits[split + view], temps) for view in views)) / len(views)
    members._probs[key] = probs
    return probs


def combine(probs: np.ndarray, weights: ArrayLike, settings: Settings) -> np.ndarray:
    """The ensemble's [N, K] probabilities. For a vote, members with weight 0 are left out."""
    weights = np.asarray(weights, np.float64)
    if weights.shape != (probs.shape[0],):
        raise UserError(f"{len(weights)} weights for {probs.shape[0]} members; give one weight per member")
    if np.any(weights < 0) or not np.any(weights > 0):
        raise UserError("weights must be >= 0 and not all zero: move at least one slider above 0")
    if settings.method == "vote":
        return ens.vote_distribution(probs[weights > 0])
    return ens.weighted_mean(probs, weights, settings.space, checked=True)  # from member_probs: valid


def score(
    members: Members, weights: Sequence[float] | np.ndarray, settings: Settings, *, with_members: bool = True
) -> dict[str, Any]:
    """Validation and test accuracy, NLL and ECE of the ensemble for `weights` (and each member's).
    A vote's NLL is None: a class no member voted for has probability 0, so its NLL is undefined."""
    choose("method", settings.method, METHODS)
    result: dict[str, Any] = {"weights": [float(w) for w in weights], "members": []}
    for split in ("val", "test"):
        probs = member_probs(members, split, settings)
        combined = combine(probs, weights, settings)
        result[split] = ens.evaluate(combined, members.labels[split])
        if settings.method == "vote":
            result[split]["nll"] = None
        result[f"{split}_probs"] = combined
        result[f"{split}_member_probs"] = probs
    if with_members:
        result["members"] = member_summary(members, settings)["rows"]
    return result


def member_summary(members: Members, settings: Settings, bins: int = 15) -> dict:
    """Each member's figures and test reliability curve: they do not depend on the weights, so they are
    computed once per selection and settings, not on every slider move."""
    key = ("summary", settings.temperature, tuple(settings.views()), bins)
    if key not in members._probs:
        rows: list[dict[str, Any]] = []
        curves: dict[str, dict[str, Any]] = {}
        probs = {s: member_probs(members, s, settings) for s in ("val", "test")}
        for i, (run_id, name) in enumerate(zip(members.ids, members.names)):
            rows.append(
                {
                    "id": run_id,
                    "name": name,
                    "temperature": members.temperatures[i],
                    **{
                        f"{s}_{k}": v
                        for s in ("val", "test")
                        for k, v in ens.evaluate(probs[s][i], members.labels[s]).items()
                    },
                }
            )
            curves[f"{run_id}: {name}"] = reliability_curve(probs["test"][i], members.labels["test"], bins)
        members._probs[key] = {"rows": rows, "curves": curves}
    return members._probs[key]


def search(members: Members, settings: Settings, how: str, *, step: float = 0.1, size: int = 50) -> dict:
    """Choose weights on the validation split: grid search, greedy selection or NLL optimisation.
    Weights (and the grid's top rows) come back as `relative_weights`."""
    choose("weight search", how, SEARCHES)
    if settings.method == "vote":
        raise UserError("weight searches apply to the weighted mean; a vote counts every member equally")
    val_probs = member_probs(members, "val", settings)
    y_val = members.labels["val"]
    found: ens.GridSearchResult | ens.GreedyResult | ens.WeightOptimum
    if how == "grid":
        if len(members.ids) > MAX_GRID_MEMBERS:
            raise UserError(
                f"a grid over {len(members.ids)} members is too large (11^{len(members.ids)} "
                f"combinations at step 0.1); use greedy selection or optimise weights, or select at "
                f"most {MAX_GRID_MEMBERS} runs"
            )
        found = ens.grid_search(val_probs, y_val, step=step, space=settings.space, tie_break="uniform")
        top = [{"weights": relative_weights(row["weights"]), "accuracy": row["accuracy"]} for row in found.top]
        return {
            "weights": relative_weights(found.weights),
            "val_accuracy": found.val_accuracy,
            "grid": found.grid,
            "top": top,
            "combinations": found.combinations,
        }
    if how == "greedy":
        found = ens.greedy_selection(val_probs, y_val, size=size)
        return {
            "weights": relative_weights(found.best_weights),
            "trajectory": found.trajectory,
            "selected": found.selected,
            "best_step": found.best_step,
        }
    found = ens.optimize_weights(val_probs, y_val, space=settings.space)
    return {
        "weights": relative_weights(found.weights),
        "val_nll": found.val_nll,
        "val_accuracy": found.val_accuracy,
        "uniform_nll": found.uniform_nll,
    }


def reliability(members: Members, scored: dict, settings: Settings, bins: int = 15) -> dict:
    """Reliability curves (test split) of the ensemble and of each member, by name."""
    curves = {"ensemble": reliability_curve(scored["test_probs"], members.labels["test"], bins)}
    return {**curves, **member_summary(members, settings, bins)["curves"]}


def save(store: "Store", members: Members, scored: dict, settings: Settings, name: str, by: str | None = None) -> int:
    """Save the ensemble as `by`'s (default: the OS user), recorded in the audit trail; returns its id."""
    name = (name or "").strip()
    if not name:
        raise UserError("give the ensemble a name before saving it")
    by = by or os_user()
    method = "vote" if settings.method == "vote" else f"mean-{settings.space}"
    ensemble_id = store.save_ensemble(
        name,
        method,
        members.ids,
        relative_weights(scored["weights"]),
        temperatures=members.temperatures if settings.temperature else None,
        val_accuracy=scored["val"]["accuracy"],
        test_accuracy=scored["test"]["accuracy"],
        options={
            "space": settings.space,
            "temperature": settings.temperature,
            "tta": settings.tta,
            "translate": settings.translate,
            "method": settings.method,
            "split_id": members.split_id,
        },
        created_by=by,
    )
    store.record(by, AuditAction.SAVE_ENSEMBLE, f"ensemble {ensemble_id}", f"{name}: runs {members.ids}")
    return ensemble_id


def settings_of(ensemble: dict) -> Settings:
    options = ensemble.get("options") or {}
    return Settings(
        method=options.get("method", "vote" if ensemble["method"] == "vote" else "mean"),
        space=options.get("space", "prob"),
        temperature=bool(options.get("temperature")),
        tta=bool(options.get("tta")),
        translate=bool(options.get("translate")),
    )


def ensemble_probs(lab: Lab, ensemble: dict, split: str) -> tuple:
    """(probabilities [N, K], labels) of a saved ensemble on "val" or "test" (for the Errors tab)."""
    members = lab.load(ensemble["members"])
    settings = settings_of(ensemble)
    probs = member_probs(members, split, settings)
    return combine(probs, ensemble["weights"], settings), members.labels[split]
