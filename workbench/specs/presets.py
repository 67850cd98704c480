"""Presets: lists of runs in `presets/*.toml`, read into specs (trained by `train-all`, `workbench.cli.presets`).

A preset is either a list (`[defaults]` and one `[[runs]]` table per run, each named) or a sweep
(`[defaults]` and a `[sweep]` table: a name and lists of values to cross, expanded by
`workbench.specs.sweep`; its runs are tagged `sweep:NAME`), or a search (`[defaults]` and a `[search]` table:
`workbench.specs.search`, run by `workbench search --preset`, not here), or a cross-validation request
(`[defaults]` and a `[crossval]` table: `name` and `folds`, `workbench.specs.crossval`; its K runs are tagged
`cv:NAME`).

A list's run with a `teacher` is a distillation (`workbench.specs.distill.DistillSpec`); its teacher may be an
`[[ensembles]]` table of the same preset (`name`, `members`: names of its runs), which train-all saves (the
members' mean of probabilities) once they completed, then trains the runs it teaches (`presets/distill.toml`).
"""

import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import UserError
from workbench.specs.crossval import DEFAULT_FOLDS, CrossVal
from workbench.specs.distill import DistillSpec
from workbench.specs.run import RunSpec
from workbench.specs.sweep import Sweep, parse_axis

PRESETS_DIR = Path(__file__).resolve().parents[2] / "presets"


@dataclass(frozen=True)
class PresetEnsemble:
    """An `[[ensembles]]` table: an ensemble of the preset's runs (by name), saved by train-all once they all
    completed, so a distillation run of the preset can name it as its teacher (`ensemble:NAME`)."""

    name: str
    members: tuple[str, ...]


class Preset(list):
    """A preset's RunSpecs (a list, as before), `sweep`: its `workbench.specs.sweep.Sweep` or None, and
    `ensembles`: its `[[ensembles]]` tables."""

    def __init__(
        self,
        specs: Iterable[RunSpec],
        sweep: Sweep | None = None,
        tag: str = "",
        ensembles: Sequence[PresetEnsemble] = (),
    ) -> None:
        super().__init__(specs)
        self.sweep = sweep
        self.tag = tag  # a cross-validation request's cv:NAME
        self.ensembles = tuple(ensembles)

    @property
    def tags(self) -> tuple:
        return (self.sweep.tag,) if self.sweep else (self.tag,) if self.tag else ()


def list_presets() -> list:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def read_preset(name_or_path: str | Path) -> tuple[Path, dict]:
    """(the file, its TOML) of a preset named in presets/ or given as a path; UserError if missing or invalid."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESETS_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise UserError(f"no preset {name_or_path!r}; choose one of: {', '.join(list_presets())} or a .toml path")
    try:
        return path, tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"preset {path} is not valid TOML: {exc}") from None


def load_preset(name_or_path: str | Path, *, seeds: str | Sequence[int] | None = None) -> Preset:
    """The preset's RunSpecs: its [defaults] merged under each [[runs]] entry, or its [sweep] expanded over
    them; each normalised. `seeds` (text or a list) replaces a sweep's seeds."""
    path, data = read_preset(name_or_path)
    if "search" in data:
        raise UserError(
            f"preset {path.name} is a search ([search]): run it with `workbench search --preset {path.stem}`"
        )
    if "sweep" in data:
        return _load_sweep(data, path, seeds)
    if "crossval" in data:
        return _load_crossval(data, path)
    if seeds is not None:
        raise UserError(f"preset {path.name} is a list of runs, not a sweep: seeds apply to sweep presets")
    runs = data.get("runs") or []
    if not runs:
        raise UserError(f"preset {path} lists no [[runs]] and no [sweep]")
    specs: list[RunSpec] = []
    for index, entry in enumerate(runs, 1):
        kind = DistillSpec if "teacher" in entry else RunSpec  # a run with a teacher is a distillation
        try:
            spec = kind.from_dict({**data.get("defaults", {}), **entry})
        except UserError as exc:
            raise UserError(f"preset {path.name}, run {index}: {exc}") from None
        if not spec.name:
            raise UserError(f"preset {path.name}, run {index}: every run needs a name (it is how reruns find it)")
        specs.append(spec)
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UserError(f"preset {path.name} names runs twice: {', '.join(duplicates)}")
    return Preset(specs, ensembles=_ensembles(data.get("ensembles") or [], path, names))


def _ensembles(tables: list, path: Path, names: list[str]) -> list[PresetEnsemble]:
    """The preset's [[ensembles]] tables, each naming two or more of its runs."""
    ensembles = []
    for index, table in enumerate(tables, 1):
        where = f"preset {path.name}, ensemble {index}"
        if not isinstance(table, dict) or set(table) - {"name", "members"}:
            raise UserError(f"{where}: an [[ensembles]] table takes name and members (names of this preset's runs)")
        name, members = str(table.get("name") or "").strip(), table.get("members") or []
        if not name or not isinstance(members, list) or len(members) < 2:
            raise UserError(f"{where}: give it a name and two or more members (names of this preset's runs)")
        unknown = [m for m in members if m not in names]
        if unknown:
            raise UserError(f"{where} ({name}): no run named {', '.join(map(str, unknown))} in this preset")
        ensembles.append(PresetEnsemble(name, tuple(members)))
    return ensembles


def _load_sweep(data: dict, path: Path, seeds: str | Sequence[int] | None) -> Preset:
    if data.get("runs"):
        raise UserError(f"preset {path.name} has both [[runs]] and a [sweep]; a preset is one or the other")
    if not isinstance(data["sweep"], dict):
        raise UserError(f"preset {path.name}: sweep must be a table ([sweep])")
    try:
        base = RunSpec.from_dict(data.get("defaults", {}))
        table = dict(data["sweep"])
        if seeds is not None:
            table["seed"] = list(parse_axis("seed", seeds))
        sweep = Sweep.from_preset(table, base, where=f"preset {path.name}")
        return Preset(sweep.specs(), sweep)
    except UserError as exc:
        message = str(exc)
        raise UserError(message if message.startswith("preset") else f"preset {path.name}: {message}") from None


def _load_crossval(data: dict, path: Path) -> Preset:
    table = data["crossval"]
    if data.get("runs") or not isinstance(table, dict):
        raise UserError(f"preset {path.name}: a cross-validation preset has one [crossval] table and no [[runs]]")
    unknown = sorted(set(table) - {"name", "folds"})
    if unknown:
        raise UserError(f"preset {path.name}: [crossval] takes name and folds, not {', '.join(unknown)}")
    try:
        request = CrossVal(
            table.get("name", ""), RunSpec.from_dict(data.get("defaults", {})), table.get("folds", DEFAULT_FOLDS)
        )
        return Preset(request.specs(), tag=request.tag)
    except UserError as exc:
        raise UserError(f"preset {path.name}: {exc}") from None
