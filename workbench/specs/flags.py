"""Spec <-> command-line flags: one flag per field of any spec class (`workbench.specs.base`), so the
CLI, the presets and the UI's "equivalent command" all speak the same language.

    --model wrn_28_10 --model-kwargs depth=16,widen_factor=4 --loss focal --loss-params gamma=2
    --augment flip_crop,cutout --schedule-params milestones=[0.5,0.75],gamma=0.1
"""

import argparse
import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol, Self, TypeVar

from workbench.errors import UserError


class SpecLike(Protocol):
    """What flags need of a spec (`workbench.specs.base.Spec`, which imports this module)."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]
    help: ClassVar[dict]
    flag_names: ClassVar[dict]

    def to_dict(self) -> dict: ...

    @classmethod
    def from_dict(cls, data: dict) -> Self: ...


SpecT = TypeVar("SpecT", bound=SpecLike)


def flag(spec_class: type[SpecLike], field_name: str) -> str:
    return spec_class.flag_names.get(field_name, "--" + field_name.replace("_", "-"))


def add_spec_arguments(parser: argparse.ArgumentParser, spec_class: type[SpecLike]) -> None:
    """One flag per field of `spec_class` (a `workbench.specs.base.Spec`), defaulting to None so we
    know which ones the user gave."""
    defaults = spec_class()
    for f in dataclasses.fields(spec_class):
        default = getattr(defaults, f.name)
        shown = ",".join(default) if isinstance(default, tuple) else default
        help_text = f"{spec_class.help[f.name]} (default: {shown if shown not in ('', {}) else 'none'})"
        name = flag(spec_class, f.name)
        if f.type is bool:
            parser.add_argument(name, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif f.type in (int, float):
            parser.add_argument(
                name, dest=f.name, type=_number(f.type, f.name), default=None, metavar=f.name.upper(), help=help_text
            )
        else:
            parser.add_argument(name, dest=f.name, default=None, metavar=f.name.upper(), help=help_text)


def spec_from_args(namespace: argparse.Namespace, spec_class: type[SpecT], base: SpecT | None = None) -> SpecT:
    """A `spec_class` spec from parsed flags, on top of `base` (or the defaults)."""
    values = (base or spec_class()).to_dict()
    for f in dataclasses.fields(spec_class):
        given = getattr(namespace, f.name, None)
        if given is None:
            continue
        values[f.name] = parse_key_values(given, flag(spec_class, f.name)) if f.type is dict else given
    return spec_class.from_dict(values)


def spec_to_args(spec: SpecLike) -> list[str]:
    """The flags that reproduce `spec` (only those that differ from its class's defaults)."""
    spec_class = type(spec)
    defaults = spec_class()
    args = []
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        if value == getattr(defaults, f.name):
            continue
        name = flag(spec_class, f.name)
        if f.type is bool:
            args.append(name if value else "--no-" + name[2:])
        elif f.type is dict:
            args += [name, format_key_values(value)]
        elif f.type is tuple:
            args += [name, ",".join(value) or "none"]
        else:
            args += [name, str(value)]
    return args


def parse_key_values(text: str, where: str = "value") -> dict:
    """'a=1,b=[0.3,0.6],c=name' -> {'a': 1, 'b': [0.3, 0.6], 'c': 'name'}; a JSON object also works."""
    text = (text or "").strip()
    if not text or text.lower() == "none":
        return {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{where}: not valid JSON ({exc.msg}); use key=value,key=value") from None
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected key=value pairs")
        return value
    result = {}
    for item in _split_top_level(text):
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{where}: {item!r} is not key=value; write e.g. depth=16,widen_factor=4")
        try:
            result[key.strip()] = json.loads(raw.strip())
        except json.JSONDecodeError:
            result[key.strip()] = raw.strip()  # a bare word such as a layer name
    return result


def parse_tags(text: str | Sequence[str] | None) -> list[str]:
    """'a, b,,a' (or a list) -> ["a", "b"]: stripped, empty ones and repeats dropped; the one reading of
    tags, for the CLI's --tags, the forms' tag boxes and the Runs tab's filter."""
    if isinstance(text, (list, tuple)):
        text = ",".join(str(tag) for tag in text)
    return list(dict.fromkeys(tag.strip() for tag in str(text or "").split(",") if tag.strip()))


def format_key_values(values: dict) -> str:
    return ",".join(
        f"{k}={json.dumps(v, separators=(',', ':')) if not isinstance(v, str) else v}" for k, v in values.items()
    )


def _split_top_level(text: str) -> list:
    """Split on commas that are not inside brackets."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "[({"
        depth -= char in "])}"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in (p.strip() for p in parts) if p]


def _number(kind: type[int] | type[float], name: str) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name} must be {'an integer' if kind is int else 'a number'}, got {text!r}"
            ) from None

    return convert
