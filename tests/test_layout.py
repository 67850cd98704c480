"""The layout's rules, checked on the source (an import inside a function counts like any other):
no import cycles between modules, packages stand in layers (`LAYERS`: a package imports only from
layers below its own, so there is no cycle between packages either), an import inside a function
says why it is deferred, and no module reaches for another module's private names."""

import ast
import re
from pathlib import Path

from conftest import ROOT

from workbench.constants import RunKind, RunPhase, RunStatus

PACKAGES = ("workbench", "store", "models")
# The two leaf modules `store/` and `models/` may use: they import nothing of ours themselves.
BASE = {"workbench.errors", "workbench.constants"}


SOURCES: dict = {}  # module name -> its text


def _modules() -> dict:
    """{module name: parsed tree} of every module in our packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join(parts)
            SOURCES[name] = path.read_text()
            found[name] = ast.parse(SOURCES[name], str(path))
    return found


MODULES = _modules()


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    is_package = (ROOT / Path(*base) / "__init__.py").exists()
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, tree) -> set:
    """The modules of ours that `module` imports anywhere (lazy imports in functions too)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                names.add(sub if sub in MODULES else target)
    return {name for name in names if name in MODULES and name != module}


GRAPH = {module: _imports(module, tree) for module, tree in MODULES.items()}


def _cycles(graph: dict) -> list:
    """Tarjan's strongly connected components of `graph` ({node: nodes it points to}) with more than
    one node, each sorted: every one is an import cycle."""
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    return cycles


def test_no_import_cycles():
    assert _cycles(GRAPH) == []


# Packages from the bottom up: each may import only from layers below its own (a package's modules may
# import each other). `workbench`'s own top-level modules are packages of one module.
LAYERS = (
    {"workbench", "workbench.errors", "workbench.constants", "workbench.paths"},  # leaves: they import nothing of ours
    {"store", "models", "workbench.users"},  # SQLite, the zoo, who may log in and change what
    {"workbench.data", "workbench.ensemble"},  # images and arrays; logits and weights
    {"workbench.specs"},  # what defines a run (Keras-free: names and numbers are checked without it)
    {"workbench.training", "workbench.inspect"},  # the one training loop; a run's stored predictions
    {"workbench.jobs", "workbench.predict", "workbench.views"},  # queue and processes; models in use; pure views
    {"workbench.cli", "workbench.ui"},  # the two front ends, side by side, neither importing the other
    {"workbench.__main__"},
)


def package_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "workbench" and len(parts) > 1:
        subpackage = ".".join(parts[:2])
        return subpackage  # a subpackage, or one of workbench's top-level modules
    return parts[0]


def package_graph(graph: dict) -> dict:
    """{package: packages its modules import}, from the module graph."""
    packages: dict = {}
    for module, imported in graph.items():
        own = package_of(module)
        packages.setdefault(own, set()).update(package_of(name) for name in imported if package_of(name) != own)
    return packages


def layering_offences(packages: dict) -> list:
    level = {package: i for i, layer in enumerate(LAYERS) for package in layer}
    offences = [f"{package} is in no layer of LAYERS" for package in packages if package not in level]
    for package, imported in packages.items():
        for name in sorted(imported):
            if package in level and name in level and level[name] >= level[package]:
                offences.append(f"{package} (layer {level[package]}) imports {name} (layer {level[name]})")
    return offences


def test_packages_import_only_from_layers_below():
    packages = package_graph(GRAPH)
    assert _cycles(packages) == []
    assert layering_offences(packages) == []


def test_a_planted_back_arrow_is_found_even_inside_a_function():
    """The checks above on a planted cycle: `workbench.data` importing the UI inside a function."""
    planted = ast.parse("def show():\n    from workbench.ui.app import build_app\n    return build_app\n")
    graph = {**GRAPH, "workbench.data.planted": _imports("workbench.data.planted", planted) | {"workbench.ui.app"}}
    assert "workbench.ui.app" in _imports("workbench.data.planted", planted)
    packages = package_graph(graph)
    assert any("workbench.data" in cycle and "workbench.ui" in cycle for cycle in _cycles(packages))
    assert "workbench.data (layer 2) imports workbench.ui (layer 6)" in layering_offences(packages)


def deferred_imports_without_a_reason(module: str, tree, lines: list) -> list:
    """Imports inside functions whose line lacks `# noqa: PLC0415` followed by the reason."""
    found = []
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    text = " ".join(lines[node.lineno - 1 : node.end_lineno])
                    if not re.search(r"#\s*noqa:\s*[A-Z0-9, ]*PLC0415\W+\w+", text):
                        found.append(f"{module}:{node.lineno}")
    return sorted(set(found))


def test_imports_inside_functions_say_why_they_are_deferred():
    """Deferring is for heavy imports (TensorFlow, Gradio, Ray, ONNX, pandas): each says which, on its
    line after ruff's `# noqa: PLC0415`, e.g. `import keras  # noqa: PLC0415 - TensorFlow: seconds`."""
    offences = []
    for module, tree in MODULES.items():
        lines = SOURCES[module].splitlines()
        offences += deferred_imports_without_a_reason(module, tree, lines)
    planted = "def f():\n    import keras\n    return keras\n"
    assert deferred_imports_without_a_reason("planted", ast.parse(planted), planted.splitlines()) == ["planted:2"]
    assert offences == []


def test_store_and_models_import_only_the_base_of_workbench():
    for module, imported in GRAPH.items():
        if module.split(".")[0] in ("store", "models"):
            reached = {name for name in imported if name.startswith("workbench")}
            assert reached <= BASE, f"{module} imports {sorted(reached - BASE)}"
    for leaf in BASE:
        assert GRAPH[leaf] == set(), f"{leaf} must stay a leaf"


def test_no_module_uses_another_modules_private_names():
    offences = []
    for module, tree in MODULES.items():
        aliases = {}  # local name -> our module it stands for
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = _resolve(module, node)
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in MODULES:
                        aliases[alias.asname or alias.name] = sub
                    elif target in MODULES and alias.name.startswith("_") and target != module:
                        offences.append(f"{module} imports {target}.{alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in MODULES and alias.asname:
                        aliases[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                offences.append(f"{module} uses {aliases[node.value.id]}.{node.attr}")
    assert offences == []


def test_kinds_are_told_apart_by_the_protocol_not_by_class_names():
    def names_a_type(node) -> bool:  # type(x).__name__ or x.__class__.__name__
        return (
            isinstance(node, ast.Attribute)
            and node.attr == "__name__"
            and (
                (isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "type")
                or (isinstance(node.value, ast.Attribute) and node.value.attr == "__class__")
            )
        )

    for module, tree in MODULES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                assert not any(names_a_type(side) for side in [node.left, *node.comparators]), (
                    f"{module} tells kinds apart by a class name (line {node.lineno})"
                )


# Run statuses, phases and kinds are named by their enums (`workbench.constants`), never spelt out.
STATUS_WORDS = frozenset(map(str, [*RunStatus, *RunPhase]))
KIND_WORDS = frozenset(map(str, RunKind))
FIELDS = {"status": STATUS_WORDS, "phase": STATUS_WORDS, "kind": KIND_WORDS}  # a column and what it holds
NOT_A_STATUS = "not a run status"  # on a line whose word only looks like one (e.g. printing "interrupted")


def bare_status_literals(module: str, tree, lines: list) -> list:
    """Where a status, phase or kind is spelt as a string: a side of a comparison (or an item of a tuple,
    list or set compared with `in`), an argument of a call (a kind: only as `kind=`), a `"status": ...`
    entry of a dict, a default of a parameter named status, phase or kind. A CLI command or a tab named
    "finetune", a dict field named "completed" or text in an f-string do not count."""
    found = []

    def words(node, allowed) -> list:
        items = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
        return [n for n in items if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in allowed]

    def report(nodes, where):
        for n in nodes:
            if NOT_A_STATUS not in lines[n.lineno - 1]:
                found.append(f"{module}:{n.lineno}: {n.value!r} {where}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in [node.left, *node.comparators]:
                report(words(side, STATUS_WORDS | KIND_WORDS), "compared")
        elif isinstance(node, ast.Call):
            for arg in node.args:
                report(words(arg, STATUS_WORDS), "passed")
            for keyword in node.keywords:
                report(words(keyword.value, FIELDS.get(keyword.arg, STATUS_WORDS)), "passed")
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value in FIELDS:
                    report(words(value, FIELDS[key.value]), f"as {key.value!r}")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            arguments = node.args
            positional = [*arguments.posonlyargs, *arguments.args]
            pairs = list(zip(positional[len(positional) - len(arguments.defaults) :], arguments.defaults))
            pairs += [(a, d) for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults) if d is not None]
            for argument, default in pairs:
                if argument.arg in FIELDS:
                    report(words(default, FIELDS[argument.arg]), f"as the default of {argument.arg}")
    return sorted(set(found))


def test_statuses_phases_and_kinds_are_named_by_their_enums():
    offences = []
    for module, tree in MODULES.items():
        if module != "workbench.constants":
            offences += bare_status_literals(module, tree, SOURCES[module].splitlines())
    assert offences == []


def test_a_planted_bare_status_is_found():
    planted = (
        "def f(store, run, kind='scratch'):\n"  # 1
        "    if run['status'] == 'completed':\n"  # 2
        "        store.set_status(run['id'], 'failed', 'why')\n"  # 3
        "    active = run['status'] in ('queued', 'running')\n"  # 4
        "    store.update_run(run['id'], phase='evaluating test')\n"  # 5
        "    row = {'status': 'interrupted', 'completed': 3, 'kind': 'finetune'}\n"  # 6
        "    if run.get('kind') != 'finetune':\n"  # 7
        "        return Clone('finetune', api_name='finetune', text=f'{n} completed')\n"  # 8: a tab, text
        "    print('interrupted')  # the command: not a run status\n"  # 9
    )
    found = bare_status_literals("planted", ast.parse(planted), planted.splitlines())
    assert found == [
        "planted:1: 'scratch' as the default of kind",
        "planted:2: 'completed' compared",
        "planted:3: 'failed' passed",
        "planted:4: 'queued' compared",
        "planted:4: 'running' compared",
        "planted:5: 'evaluating test' passed",
        "planted:6: 'finetune' as 'kind'",
        "planted:6: 'interrupted' as 'status'",
        "planted:7: 'finetune' compared",
    ]
