"""Optuna's parts for a `workbench.specs.search.Search`: its storage (`<store>-optuna.db`), sampler, pruner and
the space as Optuna distributions. Optuna's own classes throughout; nothing here is a sampler or pruner of ours.

    study = open_study(store, search, continuing=False)   # optuna.Study, direction maximize

Pruners (each reads the validation accuracy reported after every epoch):
    median     Optuna's MedianPruner: pruned when below the median of earlier trials at the same epoch, once
               min(5, a fifth of the budget, at least 1) trials have finished
    hyperband  Optuna's HyperbandPruner (successive-halving brackets), from 1 epoch to the most a trial trains,
               reduction factor 3
    halving    Optuna's SuccessiveHalvingPruner (asynchronous successive halving), rungs at 1, 3, 9... epochs
    none       Optuna's NopPruner: every trial trains all its epochs
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from workbench.specs.search import Search
from workbench.specs.space import Space

if TYPE_CHECKING:
    from store import Store

optuna.logging.set_verbosity(logging.WARNING)  # a line per trial would drown the app's own output


def distributions(space: Space) -> dict[str, BaseDistribution]:
    """{name: Optuna distribution} of the space's searched settings (fixed ones are not Optuna's business)."""
    found: dict[str, BaseDistribution] = {}
    for p in space.searched:
        if p.kind == "choice":
            found[p.name] = CategoricalDistribution(list(p.choices))
        elif p.kind == "int":
            found[p.name] = IntDistribution(int(p.low), int(p.high), log=p.log)
        else:
            found[p.name] = FloatDistribution(p.low, p.high, log=p.kind == "log")
    return found


def max_epochs(search: Search) -> int:
    """The most epochs a trial trains: the high end of a searched `epochs`, else the base run's."""
    for p in search.space.params:
        if p.name == "epochs":
            return int(max(p.values()))
    return int(search.base.epochs)


def make_pruner(search: Search) -> optuna.pruners.BasePruner:
    if search.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=max(1, min(5, search.budget() // 5)), n_warmup_steps=0)
    if search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=max(max_epochs(search), 1), reduction_factor=3
        )
    if search.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


class AskTellGridSampler(optuna.samplers.GridSampler):
    """Optuna's GridSampler, asked and told by the study's driver instead of `study.optimize`: its `after_trial`
    stops `optimize` once every point is taken, which raises outside `optimize` (at the last point's `tell`).
    Nothing else changes; the study's budget is at most the grid's size (`Search.budget`)."""

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        return None


def make_sampler(search: Search, already: int = 0) -> optuna.samplers.BaseSampler:
    """The search's sampler; `already`: trials the study has, added to the seed when it continues (a sampler
    seeded as at the start would draw the first trials' values again)."""
    seed = None if search.seed is None else search.seed + already
    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if search.sampler == "grid":
        grid: dict[str, Any] = {p.name: list(p.choices) for p in search.space.searched}
        return AskTellGridSampler(grid, seed=search.seed)  # the grid's own bookkeeping is in the storage
    if search.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    return optuna.samplers.TPESampler(seed=seed)


def open_study(store: Store, search: Search, *, continuing: bool) -> optuna.Study:
    """The search's Optuna study in the store's Optuna file: created, or loaded when `continuing`."""
    url = store.optuna_url()
    already = 0
    if continuing:
        already = len(optuna.load_study(study_name=search.name, storage=url).trials)
    return optuna.create_study(
        study_name=search.name,
        storage=url,
        direction="maximize",
        sampler=make_sampler(search, already),
        pruner=make_pruner(search),
        load_if_exists=True,  # a new name in the store: a leftover of the same name in the file is continued
    )
