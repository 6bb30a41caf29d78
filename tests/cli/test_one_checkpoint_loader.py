"""No package or app unpickles a file except through ``rq_core.checkpoints.load_checkpoint``
(weights-only) and the user-run ``convert`` command: a scan of every source file."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    path
    for pattern in ("packages/*/src/**/*.py", "apps/*/src/**/*.py")
    for path in ROOT.glob(pattern)
)
LOADER = ROOT / "packages" / "rq-core" / "src" / "rq_core" / "checkpoints.py"
# Calls that unpickle a file (or run a TorchScript archive).
UNPICKLING = {
    "torch.load",
    "torch.serialization.load",
    "torch.jit.load",
    "pickle.load",
    "pickle.loads",
    "pickle.Unpickler",
    "dill.load",
    "dill.loads",
    "joblib.load",
    "cloudpickle.load",
    "cloudpickle.loads",
}
# The only calls allowed, as (file, enclosing function): the weights-only loader, and the
# conversion a user runs on a file they trust (docs/training.md).
ALLOWED = {(LOADER, "load_checkpoint"), (LOADER, "convert")}


def _imported_names(tree: ast.Module) -> dict[str, str]:
    """Local name -> dotted origin, for ``import x as y`` and ``from x import y as z``."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.AST, names: dict[str, str]) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(names.get(node.id, node.id))
    return ".".join(reversed(parts))


def unpickling_calls(path: Path) -> list[tuple[str, str, int, ast.Call]]:
    """(called name, enclosing function, line, call) of every call that unpickles a file,
    including ``numpy.load(..., allow_pickle=True)``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = _imported_names(tree)
    found = []

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        if isinstance(node, ast.Call):
            called = _dotted(node.func, names)
            pickled_numpy = called == "numpy.load" and any(
                k.arg == "allow_pickle"
                and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                for k in node.keywords
            )
            if called in UNPICKLING or pickled_numpy:
                found.append((called, function, node.lineno, node))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(tree, "<module>")
    return found


def test_the_scan_sees_the_sources_and_catches_each_form(tmp_path):
    assert len(SOURCES) > 50 and LOADER in SOURCES
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import torch\nimport torch as T\nfrom torch import load\nimport pickle, numpy as np\n"
        "def f(p):\n"
        "    torch.load(p, weights_only=True)\n    T.load(p)\n    load(p)\n"
        "    torch.serialization.load(p)\n    pickle.loads(b'')\n"
        "    np.load(p, allow_pickle=True)\n"
        "    np.load(p)\n    np.load(p, allow_pickle=False)\n"
    )
    assert [line for _, _, line, _ in unpickling_calls(sample)] == [6, 7, 8, 9, 10, 11]


def test_only_the_weights_only_loader_and_convert_unpickle_files():
    offenders = [
        f"{path.relative_to(ROOT)}:{line} {called} in {function}()"
        for path in SOURCES
        for called, function, line, _ in unpickling_calls(path)
        if (path, function) not in ALLOWED
    ]
    assert offenders == [], "load files through rq_core.checkpoints.load_checkpoint:\n" + "\n".join(
        offenders
    )


def test_the_loader_loads_weights_only():
    calls = [call for _, name, _, call in unpickling_calls(LOADER) if name == "load_checkpoint"]
    assert len(calls) == 1
    weights_only = [k.value for k in calls[0].keywords if k.arg == "weights_only"]
    assert len(weights_only) == 1 and isinstance(weights_only[0], ast.Constant)
    assert weights_only[0].value is True
