"""A search space: the sweep syntax (`workbench.specs.sweep`) extended with ranges, for Optuna studies.

    space = Space.parse("learning_rate=log(0.01,1) batch_size=[128,256,512] augment=[flip_crop; flip_crop,cutout]"
                        " label_smoothing=uniform(0,0.3) epochs=int(10,40)")
    space.check(base_spec)           # every value and both ends of every range tried on the base: instant
    spec = space.apply(base_spec, {"learning_rate": 0.2, "batch_size": 256, ...})

Parts are `setting=value`, separated by spaces, new lines or ';' (a ',' too, before the next `setting=`):
    log(a,b)        a float drawn on a log scale, 0 < a < b (learning rates, weight decay)
    uniform(a,b)    a float drawn uniformly, a < b
    int(a,b)        a whole number, a <= b (epochs, batch sizes); int(a,b,log) on a log scale
    [v1,v2,...]     one of the values (augmentation sets separated by ';': [flip_crop; flip_crop,cutout; none])
    v1,v2           the same as [v1,v2] (a sweep's value list); a single value fixes the setting
A setting is a run setting (`RunSpec`'s fields but the name), a loss parameter by its own name
(`label_smoothing`, `gamma`, `alpha`: into loss_params) or any `field.key` of a dict setting
(`model_kwargs.width`, `schedule_params.gamma`). Every bad part is named in one message.
Pure data: Optuna's distributions are made from it by `workbench.jobs.study_setup`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any

from workbench.errors import UserError
from workbench.specs.catalogue import LOSS_PARAMS
from workbench.specs.run import RunSpec
from workbench.specs.sweep import parse_axis

RANGES = ("log", "uniform", "int")
_FIELDS = {f.name: f for f in dataclasses.fields(RunSpec)}
_DICT_FIELDS = tuple(name for name, f in _FIELDS.items() if f.type in (dict, "dict"))
_LOSS_KEYS = sorted({key for params in LOSS_PARAMS.values() for key in params})
_NOT_SEARCHED = ("name", "tensorboard", "data_path", "gpus")
SEARCHABLE = tuple(n for n in _FIELDS if n not in _NOT_SEARCHED and n not in _DICT_FIELDS)
_PART = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*)=(.*)$", re.S)
_RANGE = re.compile(r"^(log|uniform|int)\((.*)\)$", re.S)
EXAMPLE = "learning_rate=log(0.01,1) batch_size=[128,256] epochs=int(2,6)"


@dataclass(frozen=True)
class Param:
    """One searched setting: `kind` "log", "uniform", "int" or "choice"; `low`/`high` for a range, `log`
    (int ranges on a log scale), `choices` for a choice (augmentation sets as text: "flip_crop,cutout", "none")."""

    name: str
    kind: str
    text: str  # as the user wrote it, for messages and the command line
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple = ()

    @property
    def finite(self) -> bool:
        return self.kind == "choice"

    def values(self) -> tuple:
        """What the check tries on the base spec: both ends of a range, or every choice."""
        if self.kind == "int":
            return (int(self.low), int(self.high))
        return (self.low, self.high) if self.kind != "choice" else self.choices


@dataclass(frozen=True)
class Space:
    text: str
    params: tuple  # Params, in the order written

    @classmethod
    def parse(cls, text: str | None) -> Space:
        """The space in `text`; UserError names every bad part (a bad range, an unknown setting, a value
        of the wrong kind) at once."""
        text = str(text or "").strip()
        if not text:
            raise UserError(f"the search space is empty: give one or more setting=range parts, e.g. {EXAMPLE}")
        params, problems, seen = [], [], set()
        for part in _parts(text):
            try:
                param = _param(part)
                if param.name in seen:
                    raise UserError(f"{param.name} is given twice")
                seen.add(param.name)
                params.append(param)
            except UserError as exc:
                problems.append(f"`{part}`: {exc}")
        if problems:
            raise UserError("the search space has bad parts: " + "; ".join(problems))
        if not any(len(p.choices) != 1 for p in params):
            raise UserError(
                f"the search space fixes every setting it names: give at least one range or list, e.g. {EXAMPLE}"
            )
        return cls(text, tuple(params))

    @property
    def searched(self) -> tuple:
        """The params with more than one value (a single choice is a fixed setting)."""
        return tuple(p for p in self.params if not (p.kind == "choice" and len(p.choices) == 1))

    @property
    def fixed(self) -> dict:
        return {p.name: p.choices[0] for p in self.params if p.kind == "choice" and len(p.choices) == 1}

    @property
    def finite(self) -> bool:
        return all(p.finite for p in self.params)

    def grid_size(self) -> int:
        return math.prod(len(p.choices) for p in self.params) if self.finite else 0

    def apply(self, base: RunSpec, values: dict) -> RunSpec:
        """The base spec with the sampled `values` ({param name: value}) and the fixed settings (unvalidated)."""
        data = base.to_dict()
        for name, value in {**self.fixed, **values}.items():
            field, _, key = _target(name)
            if key:
                data[field] = {**(data.get(field) or {}), key: value}
            elif field == "augment":
                data[field] = list(parse_axis("augment", [str(value)])[0])
            else:
                data[field] = value
        return RunSpec.from_dict(data)

    def middle(self) -> dict:
        """Each searched setting inside its range (the geometric middle of a log one) or at its first choice:
        a typical trial (its time estimate), and the others' values while one part is tried at its ends."""
        values: dict[str, Any] = {}
        for p in self.searched:
            if p.kind == "choice":
                values[p.name] = p.choices[0]
            elif p.kind == "int":
                values[p.name] = round(math.sqrt(p.low * p.high) if p.log else (p.low + p.high) / 2)
            else:
                values[p.name] = math.sqrt(p.low * p.high) if p.kind == "log" else (p.low + p.high) / 2
        return values

    def check(self, base: RunSpec, *, available_gpus: int = 0) -> None:
        """Try every choice and both ends of every range on the base spec (instant: names and numbers);
        UserError names each part that makes a run the spec refuses."""
        problems = []
        for param in self.params:
            for value in param.values():
                try:
                    self.apply(base, {**self.middle(), param.name: value}).validate(available_gpus=available_gpus)
                except UserError as exc:
                    problems.append(f"`{param.text}`: with {param.name}={value}: {exc}")
                    break
        if problems:
            raise UserError("the search space has bad parts: " + "; ".join(problems))


def _parts(text: str) -> list:
    """`name=value` parts: split on spaces, new lines, ';' and ',' outside brackets; a piece without
    '=' continues the part before it (`model=lenet,resnet20` or `model=lenet resnet20`)."""
    text = re.sub(r"\s*=\s*", "=", text)
    pieces, depth, current = [], 0, ""
    for char in text:
        if char in "([":
            depth += 1
        elif char in ")]":
            depth = max(depth - 1, 0)
        if depth == 0 and (char.isspace() or char in ";,"):
            pieces.append(current)
            current = ""
        else:
            current += char
    pieces.append(current)
    parts: list[str] = []
    for piece in filter(None, pieces):
        if "=" not in piece.split("(")[0].split("[")[0] and parts:
            parts[-1] += "," + piece
        else:
            parts.append(piece)
    return parts


def _target(name: str) -> tuple:
    """(the spec field, '.', the dict key) a setting's name sets: `label_smoothing` -> loss_params."""
    if name in _LOSS_KEYS and name not in _FIELDS:
        return "loss_params", ".", name
    return name.partition(".")


def _param(part: str) -> Param:
    found = _PART.match(part)
    if not found:
        raise UserError(f"write it as setting=value, e.g. {EXAMPLE.split()[0]}")
    name, value = found.group(1), found.group(2).strip()
    field, _, key = _target(name)
    if field not in _FIELDS or field in _NOT_SEARCHED or (key and field not in _DICT_FIELDS):
        raise UserError(
            f"{name!r} is not a setting a search can vary; choose among {', '.join(SEARCHABLE)}, "
            f"a loss parameter ({', '.join(_LOSS_KEYS)}) or field.key of {', '.join(_DICT_FIELDS)}"
        )
    if field in _DICT_FIELDS and not key:
        raise UserError(f"search one key of {field} at a time, e.g. {field}.KEY=[...]")
    kind = float if key else _kind(field)
    ranged = _RANGE.match(value)
    if ranged:
        return _range(name, part, ranged.group(1), ranged.group(2), kind)
    if value.startswith("["):
        if not value.endswith("]"):
            raise UserError("a list needs its closing ']'")
        value = value[1:-1]
    if not value.strip():
        raise UserError("give a value, a list [a,b] or a range log(a,b), uniform(a,b), int(a,b)")
    choices: tuple
    if field == "augment":
        sets = value.split(";")
        choices = tuple(",".join(parse_axis("augment", [s])[0]) or "none" for s in sets if s.strip())
    elif key:
        choices = tuple(_number(item, float) for item in re.split(r"[,\s]+", value.strip()) if item)
    else:
        choices = parse_axis(field, value)
    return Param(name, "choice", part, choices=tuple(dict.fromkeys(choices)))


def _kind(field: str) -> Any:
    kind = _FIELDS[field].type
    return {"int": int, "float": float, "bool": bool, "str": str, "tuple": tuple}.get(str(kind), kind)


def _number(text: str, kind: type) -> float:
    try:
        number = float(text)
    except ValueError:
        raise UserError(f"{text.strip()!r} is not a number") from None
    if not math.isfinite(number):
        raise UserError(f"{text.strip()!r} is not a finite number")
    if kind is int and not number.is_integer():
        raise UserError(f"{text.strip()!r} is not a whole number")
    return number


def _range(name: str, part: str, how: str, inner: str, kind: type) -> Param:
    args = [a.strip() for a in inner.split(",")]
    log = how == "log"
    if how == "int" and len(args) == 3 and args[2] == "log":
        args, log = args[:2], True
    if len(args) != 2 or not all(args):
        raise UserError(f"{how}() takes two bounds, low and high, e.g. {how}({'10,40' if how == 'int' else '0.01,1'})")
    if how == "int" and kind is not int:
        raise UserError(f"{name} is not a whole-number setting: use log(a,b) or uniform(a,b) for it")
    if how != "int" and kind is not float:
        what = "whole-number setting: use int(a,b)" if kind is int else "number: use a list [a,b] of its values"
        raise UserError(f"{name} is not a continuous setting ({'a ' + what})")
    low, high = (_number(a, int if how == "int" else float) for a in args)
    if how == "int" and low > high:
        raise UserError(f"the low bound {low:g} is above the high bound {high:g}: write int({high:g},{low:g})")
    if how != "int" and low >= high:
        raise UserError(f"the low bound {low:g} must be below the high bound {high:g}")
    if log and low <= 0:
        raise UserError(f"a log range needs both bounds above 0 (got {low:g}), e.g. log(1e-4,{high:g})")
    return Param(name, how, part, low=low, high=high, log=log)
