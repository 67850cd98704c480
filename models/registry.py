"""The model registry: families (one builder each) and named variants (registered configurations).

timm style (`timm/models/_registry.py`): a family module decorates its builder with
`@register_family(...)` and then registers its named variants with `register_model(name, family,
**defaults)`. A variant is only a dict of keyword arguments for its family's builder, never a copy of
the code. `create_model(name, **overrides)` merges the overrides over the variant's defaults.

Bad input (unknown names or keywords, impossible depths, bad shapes) raises
`workbench.errors.UserError` with a message that says what is allowed. `register_family` wraps each
builder so that every argument passes its checker (checks.py) before the builder runs, whoever calls it.
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import UserError, choose

from .checks import SHARED_CHECKS, Checker, check_input_shape

# Builder arguments that are not family options (create_model sets them itself).
_COMMON_ARGS = ("num_classes", "input_shape", "name")


@dataclass(frozen=True)
class Family:
    """One builder function and what the registry knows about it."""

    name: str
    builder: Callable
    paper: str
    tiny: dict
    min_input_size: int = 8
    checks: dict = field(default_factory=dict)  # option -> checker (shared and the family's own)
    data_init: Callable | None = None  # data_init(model, images): weights computed from the training images

    @property
    def options(self) -> dict[str, Any]:
        """The builder's keyword options with their defaults (num_classes/input_shape/name excluded)."""
        params = inspect.signature(self.builder).parameters
        return {k: p.default for k, p in params.items() if k not in _COMMON_ARGS}


@dataclass(frozen=True)
class Variant:
    """A named, registered configuration of a family's builder."""

    name: str
    family: str
    defaults: dict = field(default_factory=dict)
    paper_params: float | None = None
    paper: str | None = None


_FAMILIES: dict[str, Family] = {}
_MODELS: dict[str, Variant] = {}


def register_family(
    name: str,
    *,
    paper: str,
    tiny: dict,
    min_input_size: int = 8,
    checks: dict[str, Checker] | None = None,
    data_init: Callable | None = None,
):
    """Decorator: register `builder` as the one builder of family `name`, its arguments checked.

    Returns the builder wrapped so that each argument (but `name`) passes its checker first and the
    builder gets the checked values: `input_shape` against `min_input_size`, the options listed in
    `SHARED_CHECKS` (checks.py) with their shared checker, the family's own options with `checks`.
    A family's options with no checker, or its own checker of a shared option, fail at import.

    Args:
        name: the family's name, e.g. "resnet".
        paper: citation string shown by `model_info`.
        tiny: keyword overrides that make any variant of the family tiny (tests, demos).
        min_input_size: smallest allowed input height/width for the family.
        checks: a checker for each option of the builder that `SHARED_CHECKS` has not.
        data_init: `data_init(model, images)` sets weights computed from the training images (float,
            normalised as the model sees them) before training (airbench's whitening layer); None: none.
    """
    checks = dict(checks or {})

    def decorator(builder: Callable) -> Callable:
        if name in _FAMILIES:
            raise RuntimeError(f"model family {name!r} registered twice")
        all_checks: dict[str, Checker] = {
            "input_shape": functools.partial(check_input_shape, min_size=min_input_size),
            **SHARED_CHECKS,
            **checks,
        }
        checked = _checked(name, builder, all_checks)
        family = Family(name, checked, paper, dict(tiny), min_input_size, all_checks, data_init)
        unknown = set(tiny) - set(family.options)
        if unknown:
            raise RuntimeError(f"tiny config of {name!r} has unknown options {sorted(unknown)}")
        # A family's own checker for a shared option would give that option two meanings.
        for problem, names in (
            ("checkers of options it does not have", set(checks) - set(family.options)),
            ("its own checkers of shared options", set(checks) & set(SHARED_CHECKS)),
        ):
            if names:
                raise RuntimeError(f"model family {name!r} has {problem}: {sorted(names)}")
        _FAMILIES[name] = family
        checked.family = name  # type: ignore[attr-defined]  # which family built it, for whoever holds it
        return checked

    return decorator


def _checked(family: str, builder: Callable, checks: dict[str, Checker]) -> Callable:
    """`builder`, calling each argument's checker first; every argument but `name` must have one."""
    signature = inspect.signature(builder)
    unchecked = [p for p in signature.parameters if p != "name" and p not in checks]
    if unchecked:  # caught at import: no option reaches a builder unchecked
        raise RuntimeError(f"model family {family!r}: no checker for {unchecked}")

    @functools.wraps(builder)
    def checked_builder(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return builder(**{k: checks[k](k, v) if k in checks else v for k, v in bound.arguments.items()})

    return checked_builder


def register_model(
    name: str, family: str, *, paper_params: float | None = None, paper: str | None = None, **defaults
) -> None:
    """Register the named variant `name` of `family` with builder keyword `defaults`.

    Args:
        name: the variant's name, e.g. "resnet56".
        family: a registered family name.
        paper_params: the parameter count the paper reports for this variant (10 classes), or None.
        paper: citation, when it differs from the family's.
        **defaults: keyword options of the family's builder.
    """
    if name in _MODELS:
        raise RuntimeError(f"model {name!r} registered twice")
    if family not in _FAMILIES:
        raise RuntimeError(f"model {name!r}: family {family!r} is not registered")
    unknown = set(defaults) - set(_FAMILIES[family].options)
    if unknown:
        raise RuntimeError(f"model {name!r}: unknown options {sorted(unknown)} for family {family!r}")
    _MODELS[name] = Variant(name, family, dict(defaults), paper_params, paper)


def list_models() -> list[str]:
    """The names of every registered model, sorted."""
    return sorted(_MODELS)


def list_families() -> list[str]:
    """The names of every registered family, sorted."""
    return sorted(_FAMILIES)


def _variant(name: str) -> Variant:
    return _MODELS[choose("model", name, list_models())]


def model_info(name: str) -> dict:
    """What the registry knows about model `name`.

    Returns a dict with `name`, `family`, `defaults` (the variant's keyword options), `options` (all
    keyword options of the family's builder with their defaults, for a UI form), `paper_params`
    (paper's parameter count or None), `paper` (citation), `tiny` (keyword overrides for a tiny
    configuration), `min_input_size` and `description` (first line of the builder's docstring).
    """
    variant = _variant(name)
    family = _FAMILIES[variant.family]
    doc = inspect.getdoc(family.builder) or ""
    return {
        "name": variant.name,
        "family": family.name,
        "defaults": copy.deepcopy(variant.defaults),
        "options": copy.deepcopy(family.options),
        "paper_params": variant.paper_params,
        "paper": variant.paper or family.paper,
        "tiny": copy.deepcopy(family.tiny),
        "min_input_size": family.min_input_size,
        "description": doc.splitlines()[0] if doc else "",
    }


def check_options(name: str, **kwargs) -> None:
    """Check option names and values for model `name` without building anything (instant: what a
    spec's validation runs before queueing). Rules that tie options together are the builder's own
    (DenseNet's depth against `bottleneck`) and are checked when the model is built."""
    variant = _variant(name)
    family = _FAMILIES[variant.family]
    _check_known(name, family, kwargs)
    for key, value in kwargs.items():
        family.checks[key](key, value)


def _check_known(name: str, family: Family, kwargs: dict) -> None:
    options = family.options
    unknown = [k for k in kwargs if k not in options]
    if unknown:
        raise UserError(
            f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for model "
            f"{name!r} (family {family.name!r}); allowed options: {', '.join(options)}"
        )


def create_model(name: str, num_classes: int = 10, input_shape=(32, 32, 3), **kwargs):
    """Build the registered model `name`; `kwargs` override the variant's default options.

    Args:
        name: a name from `list_models()`.
        num_classes: number of output logits (>= 2), default 10.
        input_shape: (height, width, channels), default (32, 32, 3).
        **kwargs: keyword options of the model's family (see `model_info(name)["options"]`).

    Returns:
        A functional `keras.Model` named `name` whose output is float32 logits.
    """
    variant = _variant(name)
    family = _FAMILIES[variant.family]
    _check_known(name, family, kwargs)
    config = {**variant.defaults, **kwargs}
    return family.builder(num_classes=num_classes, input_shape=input_shape, name=name, **config)


def needs_data_init(name: str) -> bool:
    """Whether model `name`'s family computes weights from the training images before training."""
    return _FAMILIES[_variant(name).family].data_init is not None


def init_from_data(name: str, model, images) -> None:
    """Run the family's `data_init(model, images)` on a freshly built model `name` (nothing for most)."""
    data_init = _FAMILIES[_variant(name).family].data_init
    if data_init is not None:
        data_init(model, images)


def paper_match(params: int, paper_params: float, tolerance: float = 0.02) -> tuple[float, bool]:
    """Compare a parameter count with a paper's figure: (difference in %, whether they match).

    They match when within `tolerance` (2%) or within the rounding of the printed figure: papers
    print counts in millions to one or two decimals (DenseNet-BC L=100 k=12: "0.8M" for 769,162).
    """
    diff = (params - paper_params) / paper_params
    millions = paper_params / 1e6
    decimals = next((d for d in range(4) if abs(round(millions, d) - millions) < 1e-9), 4)
    half_unit = 0.5 * 10**-decimals * 1e6
    return 100 * diff, abs(diff) <= tolerance or abs(params - paper_params) <= half_unit + 1e-6
