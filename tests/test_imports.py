"""The shape of the import graph: no cycles (not even ones hidden inside functions), and a
command line whose parser, `--help` included, loads no heavy library."""

from __future__ import annotations

import ast
import graphlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import aevae

PACKAGE = Path(aevae.__file__).parent
HEAVY = ("torch", "optuna", "sqlalchemy", "mlflow")


def module_files() -> dict[str, Path]:
    """Every module under aevae/ by dotted name; a package's __init__ is the package."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def aevae_imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The aevae modules `name` imports anywhere in its file: at the top, inside functions,
    under TYPE_CHECKING. `from aevae.x import y` counts as aevae.x, and as aevae.x.y too
    when that is a module. A submodule's parent package is not counted: Python runs it
    first, but that is not an import the submodule asks for."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(package[:len(package) - node.level + 1] + [node.module or ""]).rstrip(".")
            else:
                base = node.module
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules)
    return {module for module in found if module.split(".")[0] == "aevae" and module != name}


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: aevae_imports(name, path, modules) for name, path in modules.items()}


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    assert "aevae.bench.run" in graph["aevae.commands.bench"]  # imported inside run()
    assert "aevae.data.sources" in graph["aevae.data"]  # `from aevae.data.sources import ...`
    assert "aevae.report.ae_vae" in graph["aevae.report"]  # `from aevae.report import ae_vae`
    assert all(target in graph for targets in graph.values() for target in targets), \
        "an import names an aevae module that does not exist"


def test_no_import_cycles():
    try:
        graphlib.TopologicalSorter(import_graph()).prepare()
    except graphlib.CycleError as exc:
        cycle = exc.args[1]
        pytest.fail(f"import cycle: {' -> '.join(reversed(cycle))}; move what both sides need "
                    f"into a module that neither imports (an import inside a function counts too).")


# The floors of the house, lowest first: a package imports only packages of lower floors, so
# the import graph runs one way (no arrow back up) and no two packages import each other
# (two packages of one floor import neither). The science sits in the middle: data, models,
# metrics, analysis, training; orchestration (executors, bench, tune) above it, the read side
# (report, compare) and the commands on top.
FLOORS = [
    {"aevae", "aevae.errors"},
    {"aevae.redact", "aevae.registry", "aevae.folders", "aevae.interrupts", "aevae.extras", "aevae.stopwatch"},
    {"aevae.plugins"},
    {"aevae.config", "aevae.machine", "aevae.tracking"},
    {"aevae.data", "aevae.models", "aevae.plotting"},
    {"aevae.numerics"},
    {"aevae.metrics", "aevae.resolve"},
    {"aevae.analysis"},
    {"aevae.training", "aevae.executors"},
    {"aevae.bench", "aevae.tune"},
    {"aevae.report"},
    {"aevae.compare"},
    {"aevae.commands"},
    {"aevae.cli"},
    {"aevae.__main__"},
]


def package(module: str) -> str:
    """`aevae.bench.run` -> `aevae.bench`; a top-level module is its own package."""
    return ".".join(module.split(".")[:2])


def test_the_import_graph_runs_one_way():
    floor = {name: i for i, names in enumerate(FLOORS) for name in names}
    graph = import_graph()
    unplaced = sorted({package(m) for m in graph} - set(floor))
    assert not unplaced, f"place these packages on a floor of FLOORS: {unplaced}"
    upward = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                    if package(a) != package(b) and floor[package(b)] >= floor[package(a)])
    assert not upward, "imports that run up or sideways: " + "; ".join(upward)


def loaded_after(code: str, *args: str) -> tuple[str, list[str]]:
    """Run `code` in a fresh interpreter on this checkout's aevae; return its output and
    which of HEAVY it left in sys.modules."""
    probe = f"{code}\nimport sys\nprint('LOADED:', *[m for m in {HEAVY!r} if m in sys.modules])"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PACKAGE.parent), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    output, _, loaded = done.stdout.rpartition("LOADED:")
    return output, loaded.split()


HELP = """
import sys
from aevae.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    assert exc.code == 0, exc.code
"""


@pytest.mark.parametrize("command", ["", "report", "train", "tune", "bench", "compare"])
def test_help_loads_no_heavy_library(command):
    output, loaded = loaded_after(HELP, *command.split(), "--help")
    assert output.startswith(f"usage: aevae {command}".rstrip())
    assert loaded == [], f"`aevae {command} --help` imports {', '.join(loaded)}"


@pytest.mark.parametrize("module", ["aevae.report", "aevae.compare.run"])
def test_the_report_and_compare_load_neither_torch_nor_optuna(module):
    _, loaded = loaded_after(f"import {module}")
    assert not {"torch", "optuna"} & set(loaded)
