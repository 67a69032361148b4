"""Imports point one way, and every built-in is registered one way.

The import graph is read statically (`ast`) from src/cpqa. It counts every import that can run:
module-level ones and those inside functions alike, since a lazy import is still a dependency and
the cycles it hides (the CLI and its sub-CLIs, `run` and the Ray executor) are what this test is
for. Imports under `if TYPE_CHECKING:` never run and are left out.
"""

import ast
import subprocess
import sys
from pathlib import Path

from cpqa import catalog

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "cpqa"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _runtime_nodes(tree: ast.AST):
    """Every node of `tree` except those under `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for other in node.orelse:
                yield other
                yield from _runtime_nodes(other)
            continue
        yield node
        yield from _runtime_nodes(node)


def _imports(module: str) -> set[str]:
    """The cpqa modules `module` imports (a name imported from a package counts as its submodule
    when it is one)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
    return {m for m in found if m in MODULES and m != module}


GRAPH = {module: _imports(module) for module in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _layer(module: str) -> str:
    """A module's layer: its subpackage of cpqa (cpqa.audio, ...) or, at the root, itself."""
    parts = module.split(".")
    return ".".join(parts[:2]) if (SRC.joinpath(*parts[:2])).is_dir() else module


def test_no_module_imports_itself_back():
    assert _cycles(GRAPH) == []


def test_layers_point_one_way():
    """Between subpackages and root modules, imports go one way: no two layers import each other,
    directly or round a loop (audio never imports labels, an executor never imports run, ...)."""
    layers: dict[str, set[str]] = {}
    for module, imported in GRAPH.items():
        layers.setdefault(_layer(module), set()).update(_layer(m) for m in imported if _layer(m) != _layer(module))
    assert _cycles(layers) == []


def test_cli_commands_import_the_ui_module_not_the_package():
    commands = [m for m in MODULES if m.startswith("cpqa.cli.") and m != "cpqa.cli.__main__"]
    assert commands and all("cpqa.cli" not in GRAPH[m] for m in commands)


def test_loading_the_evaluator_loads_no_stage():
    stage_modules = sorted({target.partition(":")[0] for _, target in catalog.STAGES})
    code = f"import sys, cpqa.evaluate.evaluation; print(sorted(m for m in {stage_modules!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def _catalog_rows():
    yield from (("stage", row) for row in catalog.STAGES)
    yield from (("executor", row) for row in catalog.EXECUTORS)
    yield from (("export format", row) for row in catalog.EXPORT_FORMATS)
    for capability, rows in catalog.BACKENDS.items():
        yield from ((capability, row) for row in rows)


def test_every_catalog_path_names_a_class_or_function_of_its_module():
    for kind, (name, target, *_) in _catalog_rows():
        module, _, attr = target.partition(":")
        assert module in MODULES, f"{kind} '{name}': no module {module}"
        defined = {n.name for n in ast.parse(MODULES[module].read_text()).body
                   if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
        assert attr in defined, f"{kind} '{name}': {module} defines no {attr}"


def test_each_stage_is_catalogued_under_its_own_name():
    from cpqa.registry import STAGES

    for name, _ in catalog.STAGES:
        assert STAGES.get(name).name == name


def test_built_ins_register_only_through_the_catalog():
    """One way to register: no `register` decorator or registry `.add()` line outside the registry."""
    registries = ("registry", "STAGES", "EXECUTORS", "EXPORT_FORMATS", "BACKENDS")
    offenders = []
    for module, path in MODULES.items():
        if module == "cpqa.registry":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            receiver = ast.unparse(node.func.value)
            if node.func.attr == "register" or (node.func.attr == "add" and any(r in receiver for r in registries)):
                offenders.append(f"{module}:{node.lineno} {ast.unparse(node.func)}")
    assert offenders == []
