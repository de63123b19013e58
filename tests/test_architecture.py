"""The package's layering stays true: walking every module of `hf_prune/` with `ast` (module-level *and* function-level
imports, `TYPE_CHECKING` blocks included), no module imports from a floor above its own, no private name crosses a
module boundary, and the import graph has no cycle. And the training path stays light: importing the trainers loads
nothing beyond what `transformers.trainer` loads but hf_prune's own training-path modules (checked in a fresh
interpreter, by `sys.modules`)."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


PACKAGE = REPO_ROOT / "hf_prune"

# Lowest first. A module may import from its own floor or any floor below; never from above. Keep in step with the
# "Layout" table of docs/development.md.
FLOORS = [
    ("version", "citations", "sample_ids", "provenance", "selection", "registry", "models", "distributed", "console",
     "metrics", "metric_scripts", "method_config", "dyn_unc_window"),
    ("recording", "sequence", "data", "task", "text_data", "text_task"),
    ("record",),
    ("stats", "run_record"),
    ("plots", "gallery"),
    ("export",),
    ("result",),
    ("kmeans", "features", "grad_norms", "importers"),
    ("strategies", "dynamic"),
    ("config", "dynamic_config", "trainer_hub"),
    ("trainer", "dynamic_trainer", "sft"),
    ("cli",),
]


def module_names() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = module_names()


def floor_of(module: str) -> int:
    if module == "hf_prune":
        return len(FLOORS)  # the package root re-exports everything lazily: it sits on top
    top = module.split(".")[1]
    for level, names in enumerate(FLOORS):
        if top in names:
            return level
    raise AssertionError(f"{module} is on no floor: add it to FLOORS (and to the layout table in docs/development.md).")


def imports_of(module: str) -> list[tuple[str, str | None, int]]:
    """`(imported module, imported name or None, line)` for every import in `module` that targets `hf_prune`."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                target = full if full in MODULES else base
                found.append((target, None if full in MODULES else alias.name, node.lineno))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, None, node.lineno) for alias in node.names)
    return [(t, n, line) for t, n, line in found if t in MODULES and t != module]


def test_every_module_is_on_a_floor():
    for module in MODULES:
        floor_of(module)


def test_no_module_imports_from_a_floor_above():
    upward = []
    for module in MODULES:
        if module == "hf_prune":
            continue
        for target, _, line in imports_of(module):
            is_own_init = MODULES[target].name == "__init__.py" and module.startswith(target + ".")
            if target == "hf_prune" or (not is_own_init and floor_of(target) > floor_of(module)):
                upward.append(f"{module}:{line} imports {target}")
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_private_name_crosses_a_module_boundary():
    private = [
        f"{module}:{line} imports {target}.{name}"
        for module in MODULES
        for target, name, line in imports_of(module)
        if name and name.startswith("_") and not name.startswith("__")
    ]
    assert not private, "\n".join(private)


def test_the_import_graph_has_no_cycle():
    graph = {
        m: {
            t
            for t, _, _ in imports_of(m)
            # a package's __init__ re-exporting its own children is not a cycle
            if not (MODULES[m].name == "__init__.py" and t.startswith(m + "."))
        }
        for m in MODULES
    }
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])


def test_the_check_catches_what_it_should(tmp_path, monkeypatch):
    """The walker sees function-level imports: a planted upward import inside a function is reported."""
    planted = 'def f():\n    from .trainer import PruningTrainer\n    return PruningTrainer\n'
    module = "hf_prune.selection"
    source = MODULES[module].read_text() + "\n\n" + planted
    fake = tmp_path / "selection.py"
    fake.write_text(source)
    monkeypatch.setitem(MODULES, module, fake)
    assert "hf_prune.trainer" in {t for t, _, _ in imports_of(module)}
    with pytest.raises(AssertionError, match="hf_prune.selection:.*imports hf_prune.trainer"):
        test_no_module_imports_from_a_floor_above()


# What training never needs: exports and cards, plots (matplotlib), results, static strategies, the CLI, the selection
# analysis of a finished dynamic run, features and k-means.
NOT_ON_THE_TRAINING_PATH = ("hf_prune.export", "hf_prune.plots", "hf_prune.result", "hf_prune.strategies",
                            "hf_prune.cli", "hf_prune.dynamic.analysis", "hf_prune.features", "hf_prune.kmeans",
                            "hf_prune.importers")  # fmt: skip

IMPORT_PROBE = """
import json, sys
import transformers.trainer
before = set(sys.modules)
import {module}
print(json.dumps(sorted(set(sys.modules) - before)))
"""


@pytest.mark.parametrize("module", ["hf_prune.trainer", "hf_prune.dynamic_trainer"])
def test_the_trainers_import_nothing_training_does_not_need(module):
    """Issue 22: `import hf_prune.trainer` (and the dynamic trainer) adds to what `transformers.trainer` loads only
    hf_prune's training-path modules (and, at most, standard-library ones): no export, plotting or result module, no
    matplotlib, no other third-party package."""
    probe = IMPORT_PROBE.format(module=module)
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    new = json.loads(out.stdout.strip().splitlines()[-1])
    assert module in new
    ours = [m for m in new if m == "hf_prune" or m.startswith("hf_prune.")]
    off_path = [m for m in ours if m.startswith(NOT_ON_THE_TRAINING_PATH)]
    assert not off_path, f"import {module} loads modules training does not need: {off_path}"
    others = {m.split(".")[0] for m in new if m not in ours} - set(sys.stdlib_module_names) - {"_distutils_hack"}
    assert not others, f"import {module} loads packages transformers.trainer does not: {sorted(others)}"
    assert not any(m.split(".")[0] == "matplotlib" for m in new)
