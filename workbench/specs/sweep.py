"""Sweeps: one request for many runs, the cross product of several values per setting, all tagged
`sweep:NAME` so the Runs tab (and `python -m workbench sweeps NAME`) reads them back as one table.

    sweep = Sweep.from_values("lr-study", base_spec, {"model": "resnet20,resnet32", "seed": "0-2"})
    sweep.count_text()      # "2 models × 3 seeds = 6 runs"
    specs = sweep.validate(available_gpus=0)   # every run checked before any is queued (all or nothing)

Pure data: the Train tab, the `sweep` command and the presets (`[sweep]` in a preset's TOML) all expand
through here. Axes: any RunSpec field but the name; the forms and the CLI offer `AXES`. A preset may also
leave combinations out (`skip`) and give models their own settings (`per_model`, e.g. a batch size).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, Self

from workbench.errors import UserError
from workbench.specs.flags import spec_to_args
from workbench.specs.run import RunSpec

AXES = ("model", "loss", "augment", "schedule", "learning_rate", "seed")
AXIS_NAMES = {
    "model": ("model", "models"),
    "loss": ("loss", "losses"),
    "augment": ("augmentation", "augmentations"),
    "schedule": ("schedule", "schedules"),
    "learning_rate": ("learning rate", "learning rates"),
    "seed": ("seed", "seeds"),
}
TAG_PREFIX = "sweep:"
MAX_RUNS = 200  # a typo such as seeds "0-999" should not queue a thousand runs
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,59}$")
SHORT_LOSS = {"cross_entropy": "ce", "label_smoothing": "ls"}
_FIELDS = {f.name: f for f in dataclasses.fields(RunSpec)}


def sweep_tag(name: str) -> str:
    return TAG_PREFIX + name


def sweep_of(tags: Iterable[str] | None) -> str | None:
    """The sweep a run belongs to, from its tags (None: not part of one)."""
    return next((tag[len(TAG_PREFIX) :] for tag in tags or () if str(tag).startswith(TAG_PREFIX)), None)


def check_name(name: str) -> str:
    name = str(name or "").strip()
    if not NAME_PATTERN.match(name):
        raise UserError(
            f"sweep name {name!r} is not usable: use letters, digits, '-', '_' or '.' "
            "(at most 60, starting with a letter or digit), e.g. loss-study"
        )
    return name


def default_name(now: datetime) -> str:
    """A name for a sweep the user did not name: `sweep-MMDD-HHMM` of `now` (a datetime)."""
    return now.strftime("sweep-%m%d-%H%M")


# -- one axis's values, from what a form, the CLI or TOML delivers --------------------------------
def parse_axis(name: str, value: str | Iterable[Any] | None) -> tuple:
    """The values of axis `name`, deduplicated in the order given; () for none (the base spec's value).
    Text: names and numbers separated by commas or spaces, seeds also as ranges ("0-4"); augmentations
    as sets separated by ';' ("flip_crop; flip_crop,cutout; none"). Lists (multiselects, TOML) as they are."""
    if name not in _FIELDS or name == "name":
        raise UserError(f"cannot sweep over {name!r}: choose among the run settings ({', '.join(AXES)}, ...)")
    if value is None or (isinstance(value, str) and not value.strip()):
        return ()
    if name == "augment":
        items = value.split(";") if isinstance(value, str) else list(value)
        values: list[Any] = [_augment_set(item) for item in items if not (isinstance(item, str) and not item.strip())]
    else:
        items = re.split(r"[,\s]+", value.strip()) if isinstance(value, str) else list(value)
        values = []
        for item in items:
            if isinstance(item, str) and not item.strip():
                continue
            values += _ints(item) if name == "seed" else [_typed(name, item)]
    return tuple(dict.fromkeys(values))


def _augment_set(item: str | Sequence[str]) -> tuple:
    from workbench.data.augment.ops import parse_augmentations  # noqa: PLC0415 - TensorFlow: the augmentations' module imports it

    if isinstance(item, str) and item.strip().lower() == "none":
        return ()
    return parse_augmentations(item.strip() if isinstance(item, str) else item)


def _ints(item: Any) -> list[int]:
    text = str(item).strip()
    found = re.fullmatch(r"(\d+)\s*-\s*(\d+)", text)
    if found:
        start, stop = int(found.group(1)), int(found.group(2))
        if stop < start or stop - start >= MAX_RUNS:
            raise UserError(f"seed range {text!r} must go up, by fewer than {MAX_RUNS}, e.g. 0-4")
        return list(range(start, stop + 1))
    return [_typed("seed", item)]


def _typed(name: str, item: Any) -> Any:
    kind = _FIELDS[name].type
    kind = kind if isinstance(kind, type) else {"int": int, "float": float, "bool": bool, "str": str}.get(kind, object)
    try:
        if kind is int:
            number = float(item)
            if not number.is_integer():
                raise ValueError(item)
            return int(number)
        if kind is float:
            return float(item)
        if kind is str:
            return str(item).strip()
    except (TypeError, ValueError):
        raise UserError(
            f"{AXIS_NAMES.get(name, (name, name))[1]}: {item!r} is not "
            f"{'a whole number' if kind is int else 'a number'}"
        ) from None
    return item


# -- the sweep --------------------------------------------------------------------------------
@dataclass
class Sweep:
    """A base spec and the values to cross (see the module docstring). `axes`: field -> values (only
    swept fields); `skip`: partial settings left out; `per_model`: model -> settings for its runs."""

    name: str
    base: RunSpec
    axes: dict = field(default_factory=dict)
    skip: tuple = ()
    per_model: dict = field(default_factory=dict)

    def __post_init__(self) -> None:  # the axes in one order (the form's; seeds last): names and tables read alike
        order = [a for a in AXES if a != "seed"]
        rank = lambda a: (a == "seed", order.index(a) if a in order else len(order))  # noqa: E731
        self.axes = {a: tuple(self.axes[a]) for a in sorted(self.axes, key=rank)}

    @classmethod
    def from_values(cls, name: str, base: RunSpec, values: dict) -> Self:
        """A sweep from a form's or the CLI's values per axis (text or lists; empty ones are not swept)."""
        axes = {axis: parsed for axis, value in values.items() if (parsed := parse_axis(axis, value))}
        return cls(check_name(name), base, axes)

    @classmethod
    def from_preset(cls, table: dict, base: RunSpec, where: str = "preset") -> Self:
        """A preset's `[sweep]` table: name, one list per swept setting, optional `skip` (a list of
        partial settings) and `per_model` (model -> settings)."""
        table = dict(table)
        name = check_name(table.pop("name", ""))
        skip = table.pop("skip", [])
        per_model = table.pop("per_model", {})
        axes = {}
        for axis, value in table.items():
            if not isinstance(value, list):
                raise UserError(f"{where}: [sweep] {axis} must be a list of values, e.g. {axis} = [...]")
            axes[axis] = parse_axis(axis, value)
        if not isinstance(skip, list) or not all(isinstance(s, dict) for s in skip):
            raise UserError(f'{where}: [sweep] skip must be a list of tables, e.g. skip = [{{ loss = "focal" }}]')
        sweep = cls(name, base, {a: v for a, v in axes.items() if v}, tuple(skip), dict(per_model))
        sweep.check_parts(where)
        return sweep

    @property
    def tag(self) -> str:
        return sweep_tag(self.name)

    def check_parts(self, where: str = "sweep") -> None:
        """`skip` and `per_model` must name settings the sweep has (a typo would silently do nothing)."""
        for entry in self.skip:
            for key, value in entry.items():
                if key not in self.axes:
                    raise UserError(f"{where}: skip names {key!r}, which the sweep does not vary")
                wanted = parse_axis(key, [value])[0]
                if wanted not in self.axes[key]:
                    raise UserError(f"{where}: skip names {key}={value!r}, which is not one of the sweep's values")
        models = set(self.axes.get("model", (self.base.model,)))
        for model, settings in self.per_model.items():
            if model not in models:
                raise UserError(f"{where}: per_model names {model!r}, which the sweep does not train")
            if not isinstance(settings, dict):
                raise UserError(f"{where}: per_model.{model} must be a table of settings")
            clash = sorted((set(settings) & set(self.axes)) | ({"name", "model"} & set(settings)))
            if clash:
                raise UserError(f"{where}: per_model.{model} sets {', '.join(clash)}, which the sweep itself sets")

    def points(self) -> list:
        """Each run's swept values ({field: value}), in the order the axes vary (the last fastest)."""
        names = list(self.axes)
        points = [dict(zip(names, values)) for values in itertools.product(*self.axes.values())]
        skipped = [{k: parse_axis(k, [v])[0] for k, v in entry.items()} for entry in self.skip]
        return [p for p in points if not any(all(p[k] == v for k, v in s.items()) for s in skipped)]

    def varying(self) -> list:
        """The axes with more than one value, and the seed always (names stay when seeds are added)."""
        return [a for a, values in self.axes.items() if len(values) > 1 or a == "seed"]

    def run_name(self, point: dict) -> str:
        parts = [self.name]
        for axis in self.varying():
            value = point.get(axis, getattr(self.base, axis))
            parts.append(_short(axis, value))
        return "-".join(parts)

    def specs(self) -> list:
        """The runs' specs, named `<sweep>-<what varies>-s<seed>` (unvalidated)."""
        if not self.axes:
            raise UserError("a sweep needs several values for at least one setting (models, losses, seeds, ...)")
        points = self.points()
        if not points:
            raise UserError(f"sweep {self.name}: every combination is skipped; nothing to run")
        if len(points) > MAX_RUNS:
            raise UserError(
                f"sweep {self.name} makes {len(points)} runs, more than {MAX_RUNS}; "
                "sweep fewer values (or split it into several sweeps)"
            )
        specs = []
        for point in points:
            model = point.get("model", self.base.model)
            changes = {**self.per_model.get(model, {}), **point, "name": self.run_name(point)}
            try:
                specs.append(RunSpec.from_dict({**self.base.to_dict(), **changes}))
            except UserError as exc:
                raise UserError(f"sweep {self.name}, run {describe(point)}: {exc}") from None
        return specs

    def validate(self, *, available_gpus: int = 0) -> list:
        """Every run checked (names, numbers, paths: instant) before any is queued; the first refusal
        names its combination. Returns the validated specs."""
        specs, checked = self.specs(), []
        for index, (point, spec) in enumerate(zip(self.points(), specs), 1):
            try:
                checked.append(spec.validate(available_gpus=available_gpus))
            except UserError as exc:
                raise UserError(
                    f"sweep {self.name}: run {index} of {len(specs)} ({describe(point)}) is refused: "
                    f"{exc}. Nothing was queued"
                ) from None
        return checked

    def count_text(self) -> str:
        """'3 models × 2 losses × 3 seeds = 18 runs' (and how many combinations are skipped)."""
        factors = [f"{len(v)} {AXIS_NAMES.get(a, (a, a))[len(v) != 1]}" for a, v in self.axes.items()]
        total = len(list(itertools.product(*self.axes.values())))
        runs = len(self.points())
        text = f"{' × '.join(factors)} = {runs} run{'s' * (runs != 1)}"
        return text + (f" ({total - runs} combination{'s' * (total - runs != 1)} skipped)" if runs != total else "")

    def to_cli(self, tags: Iterable[str] = ()) -> str:
        """The equivalent `python -m workbench sweep` command: the base's flags but the swept ones, then
        one flag per axis."""
        swept = {a: getattr(RunSpec(), a) for a in self.axes}
        base = self.base.replace(**swept, name="")  # the swept fields at their defaults: no flag for them
        args = ["python", "-m", "workbench", "sweep", self.name, *spec_to_args(base)]
        for axis, values in self.axes.items():
            flag = "--" + {"augment": "augments", "loss": "losses"}.get(axis, axis + "s").replace("_", "-")
            if axis == "augment":
                args += [flag, ";".join(",".join(v) or "none" for v in values)]
            else:
                args += [flag, ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)]
        if tags:
            args += ["--tags", ",".join(tags)]
        return shlex.join(args)


def describe(point: dict) -> str:
    """A combination as a message names it: "model vgg16_bn, loss focal, learning rate 0.05, seed 2"."""

    def shown(value: Any) -> str:
        if isinstance(value, tuple):
            return "+".join(value) or "none"
        return f"{value:g}" if isinstance(value, float) else str(value)

    return ", ".join(f"{AXIS_NAMES.get(k, (k,))[0]} {shown(v)}" for k, v in point.items())


def _short(axis: str, value: Any) -> str:
    if axis == "seed":
        return f"s{value}"
    if axis == "loss":
        return SHORT_LOSS.get(value, value)
    if axis == "augment":
        return "+".join(value) or "noaug"
    if axis == "learning_rate":
        return f"lr{value:g}"
    if axis in ("model", "schedule", "optimizer", "dataset", "precision"):
        return str(value)
    return f"{axis}{value}"


class _Queue(Protocol):
    """What `submit_sweep` needs of a `workbench.jobs.queue.JobQueue` (a layer above specs)."""

    @property
    def gpus(self) -> Sequence[str]: ...

    def submit(self, spec: RunSpec, *, tags: Iterable[str] = ..., notes: str = ..., by: str | None = ...) -> int: ...


def submit_sweep(queue: _Queue, sweep: Sweep, tags: Iterable[str] = (), by: str | None = None) -> list[int]:
    """Validate every run of `sweep`, then queue them all (a `workbench.jobs.queue.JobQueue`), tagged with
    the sweep's tag and `tags`, made by `by` (the queue's default: the OS user); returns their run ids.
    Nothing is queued when one run is refused."""
    specs = sweep.validate(available_gpus=len(queue.gpus))
    tags = list(dict.fromkeys([*tags, sweep.tag]))
    return [queue.submit(spec, tags=tags, by=by) for spec in specs]
