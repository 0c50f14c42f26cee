"""The architecture rules that keep the leaf packages usable on their own (DESIGN.md §2)."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LEAVES = {
    "models": {"surgecast", "collectors", "actions", "simulator", "dashboard"},
    "actions": {"surgecast", "collectors", "models", "simulator", "dashboard"},
    "collectors": {"surgecast", "models", "actions", "dashboard"},
    "simulator": {"surgecast", "models", "actions", "collectors", "dashboard"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(LEAVES))
def test_leaf_packages_do_not_import_the_core_or_each_other(package):
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"{package}/ has no modules"
    offenders = {
        str(f.relative_to(REPO)): sorted(imported_roots(f) & LEAVES[package]) for f in files
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}


def test_the_user_requested_layout_exists():
    for entry in (
        "models",
        "collectors",
        "actions",
        "dashboard",
        "notebooks",
        "tests",
        "surgecast",
        "simulator",
        "benchmarks",
        "pyproject.toml",
        "README.md",
        "Makefile",
        ".ci/run",
    ):
        assert (REPO / entry).exists(), entry


def test_ci_runs_make_test():
    assert "make test" in (REPO / ".ci/run").read_text()
