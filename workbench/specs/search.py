"""A search's settings: what `workbench search`, the Train tab's Search box and a preset's `[search]` table
ask for, checked at once (instant) before any study or run exists.

    search = Search.from_values("lr-wd", base_spec, space="learning_rate=log(0.01,1) weight_decay=log(1e-5,1e-3)",
                                trials=30, pruner="hyperband", sampler="tpe", seed=0, timeout="2h")
    search.check(available_gpus=0)

Every trial is a run of `base` with the space's values (`workbench.specs.space`), tagged `study:NAME`; the study
itself is Optuna's (`workbench.jobs.study`). Pure data, like a sweep.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Self

from workbench.errors import UserError, choose
from workbench.specs.flags import spec_to_args
from workbench.specs.run import RunSpec
from workbench.specs.space import Space
from workbench.specs.sweep import check_name

TAG_PREFIX = "study:"
SAMPLERS = ("tpe", "random", "grid", "cmaes")
PRUNERS = ("median", "hyperband", "halving", "none")
MAX_TRIALS = 1000
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
PRESET_KEYS = ("name", "space", "trials", "timeout", "pruner", "sampler", "seed", "parallel")


def study_tag(name: str) -> str:
    return TAG_PREFIX + name


def study_of(tags: Iterable[str] | None) -> str | None:
    """The study a run is a trial of, from its tags (None: none)."""
    return next((tag[len(TAG_PREFIX) :] for tag in tags or () if str(tag).startswith(TAG_PREFIX)), None)


def parse_duration(text: Any) -> float | None:
    """Seconds from '2h', '90m', '1h30m', '45s' or a number of seconds; None for none ('' or 0)."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        found = re.fullmatch(r"\s*((?:\d+(?:\.\d+)?\s*[smhd]\s*)+|\d+(?:\.\d+)?)\s*", str(text).lower())
        if not found:
            raise UserError(f"time budget {text!r} is not a duration: write e.g. 2h, 90m, 1h30m or 45s")
        parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhd]?)", found.group(1))
        seconds = sum(float(number) * _UNITS[unit or "s"] for number, unit in parts)
    if seconds < 0:
        raise UserError("the time budget cannot be negative")
    return seconds or None


def duration_text(seconds: float | None) -> str:
    if not seconds:
        return ""
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{v}{u}" for v, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if v) or "0s"


@dataclass(frozen=True)
class Search:
    """`name`, the `base` run every trial starts from, the `space`, the budget (`trials`, and/or `timeout`
    seconds of wall time), Optuna's `sampler` (with `seed`) and `pruner`, and how many trials run at once
    (`parallel`, 0: as the devices allow)."""

    name: str
    base: RunSpec
    space: Space
    trials: int = 20
    timeout: float | None = None
    sampler: str = "tpe"
    seed: int | None = None
    pruner: str = "median"
    parallel: int = 0

    @classmethod
    def from_values(
        cls,
        name: str,
        base: RunSpec,
        *,
        space: str,
        trials: Any = 20,
        timeout: Any = None,
        sampler: str = "tpe",
        seed: Any = None,
        pruner: str = "median",
        parallel: Any = 0,
    ) -> Self:
        """From a form's, the CLI's or a preset's values (text or numbers); UserError names what is wrong."""
        problems = []
        try:
            parsed = Space.parse(space)
        except UserError as exc:
            problems.append(str(exc))
            parsed = None
        values: dict[str, Any] = {}
        for key, value in (("trials", trials), ("seed", seed), ("parallel", parallel)):
            values[key] = None if value in (None, "") else _collect(problems, _whole, key, value)
        seconds = _collect(problems, parse_duration, timeout)
        _collect(problems, choose, "sampler", sampler, SAMPLERS)
        _collect(problems, choose, "pruner", pruner, PRUNERS)
        name = _collect(problems, check_name, name) or name
        if problems:
            raise UserError("; ".join(problems))
        assert parsed is not None
        return cls(
            name=name,
            base=base,
            space=parsed,
            trials=values["trials"] if values["trials"] is not None else 20,
            timeout=seconds,
            sampler=sampler,
            seed=values["seed"],
            pruner=pruner,
            parallel=values["parallel"] or 0,
        )

    @classmethod
    def from_preset(cls, table: dict, base: RunSpec, where: str = "preset") -> Self:
        """A preset's `[search]` table: name, space (text), trials, timeout, pruner, sampler, seed, parallel."""
        unknown = sorted(set(table) - set(PRESET_KEYS))
        if unknown:
            raise UserError(f"{where}: [search] has no setting {', '.join(unknown)}; it takes {', '.join(PRESET_KEYS)}")
        try:
            return cls.from_values(
                str(table.get("name", "")),
                base,
                space=str(table.get("space", "")),
                trials=table.get("trials", 20),
                timeout=table.get("timeout"),
                sampler=str(table.get("sampler", "tpe")),
                seed=table.get("seed"),
                pruner=str(table.get("pruner", "median")),
                parallel=table.get("parallel", 0),
            )
        except UserError as exc:
            raise UserError(f"{where}: [search] {exc}") from None

    @property
    def tag(self) -> str:
        return study_tag(self.name)

    def budget(self) -> int:
        """The trials to run: `trials`, or the grid's size where the grid sampler has fewer points."""
        return min(self.trials, self.space.grid_size()) if self.sampler == "grid" else self.trials

    def check(self, *, available_gpus: int = 0) -> Self:
        """The budget, the sampler against the space, and every value of the space on the base run."""
        if not 1 <= self.trials <= MAX_TRIALS:
            raise UserError(f"trials must be between 1 and {MAX_TRIALS} (got {self.trials})")
        if self.parallel < 0:
            raise UserError("parallel trials must be 0 (as the devices allow) or more")
        if self.sampler == "grid" and not self.space.finite:
            ranged = ", ".join(p.text for p in self.space.params if not p.finite)
            raise UserError(
                f"the grid sampler needs lists only ([a,b,...]), not ranges ({ranged}): "
                "list their values, or use tpe or random"
            )
        if self.sampler == "cmaes" and not any(p.kind in ("log", "uniform", "int") for p in self.space.params):
            raise UserError(
                "CMA-ES searches ranges (log, uniform, int); this space has only lists: use tpe, random or grid"
            )
        base = self.base.replace(name="")
        self.space.check(base, available_gpus=available_gpus)
        return self

    def trial_name(self, number: int) -> str:
        return f"{self.name}-t{number}"

    def to_settings(self) -> dict:
        """What the store keeps (`studies.settings`): enough to continue the study after a restart."""
        return {
            "base": self.base.to_dict(),
            "space": self.space.text,
            "trials": self.trials,
            "timeout": self.timeout,
            "sampler": self.sampler,
            "seed": self.seed,
            "pruner": self.pruner,
            "parallel": self.parallel,
        }

    @classmethod
    def from_settings(cls, name: str, settings: dict) -> Self:
        return cls(
            name=name,
            base=RunSpec.from_dict(settings["base"]),
            space=Space.parse(settings["space"]),
            trials=int(settings["trials"]),
            timeout=settings.get("timeout"),
            sampler=settings.get("sampler", "tpe"),
            seed=settings.get("seed"),
            pruner=settings.get("pruner", "median"),
            parallel=int(settings.get("parallel") or 0),
        )

    def to_cli(self, tags: Iterable[str] = ()) -> str:
        """The equivalent `python -m workbench search` command."""
        args = ["python", "-m", "workbench", "search", self.name, *spec_to_args(self.base.replace(name=""))]
        args += ["--space", self.space.text, "--trials", str(self.trials)]
        if self.timeout:
            args += ["--timeout", duration_text(self.timeout)]
        if self.sampler != "tpe":
            args += ["--sampler", self.sampler]
        if self.seed is not None:
            args += ["--sampler-seed", str(self.seed)]
        if self.pruner != "median":
            args += ["--pruner", self.pruner]
        if self.parallel:
            args += ["--parallel", str(self.parallel)]
        if tags:
            args += ["--tags", ",".join(tags)]
        return shlex.join(args)


def budget_text(search: Search, trial_seconds: float | None, width: int = 1) -> str:
    """What the budget costs here: a typical trial's time (`workbench.jobs.estimate` of the space's middle), the
    whole budget if no trial were pruned, and the time budget where it is shorter."""
    if trial_seconds is None:
        return "Time: unknown here yet (no run like these has finished, and the model's cost is not listed)."
    whole = trial_seconds * search.budget() / max(1, width)
    text = (
        f"A typical trial takes ~{duration_text(trial_seconds)}; {search.budget()} trials at most "
        f"~{duration_text(whole)}{f' ({width} at a time)' if width > 1 else ''}, less as the pruner stops trials early"
    )
    if search.timeout and search.timeout < whole:
        text += f"; the time budget stops asking new trials after {duration_text(search.timeout)}"
    return text + "."


def _collect(problems: list, check: Any, *args: Any) -> Any:
    """`check(*args)`, or None with its refusal added to `problems` (every mistake of a form named at once)."""
    try:
        return check(*args)
    except UserError as exc:
        problems.append(str(exc).replace("sweep name", "study name"))
        return None


def _whole(what: str, value: Any) -> int:
    try:
        number = float(value)
        if not number.is_integer():
            raise ValueError(value)
        return int(number)
    except (TypeError, ValueError):
        raise UserError(f"{what}: {value!r} is not a whole number") from None
