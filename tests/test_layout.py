"""The layout's rules, checked on the source: no import cycles, `store/` and `models/` stand below the
rest of `workbench/`, and no module reaches for another module's private names."""
import ast
from pathlib import Path

from conftest import ROOT

PACKAGES = ("workbench", "store", "models")
# The two leaf modules `store/` and `models/` may use: they import nothing of ours themselves.
BASE = {"workbench.errors", "workbench.constants"}


def _modules() -> dict:
    """{module name: parsed tree} of every module in our packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = ast.parse(path.read_text(), str(path))
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


def test_no_import_cycles():
    """Tarjan's strongly connected components: every component must be a single module."""
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH[node]:
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

    for module in GRAPH:
        if module not in index:
            visit(module)
    assert cycles == []


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
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                offences.append(f"{module} uses {aliases[node.value.id]}.{node.attr}")
    assert offences == []


def test_kinds_are_told_apart_by_the_protocol_not_by_class_names():
    def names_a_type(node) -> bool:  # type(x).__name__ or x.__class__.__name__
        return isinstance(node, ast.Attribute) and node.attr == "__name__" and (
            (isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "type")
            or (isinstance(node.value, ast.Attribute) and node.value.attr == "__class__"))

    for module, tree in MODULES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                assert not any(names_a_type(side) for side in [node.left, *node.comparators]), \
                    f"{module} tells kinds apart by a class name (line {node.lineno})"
