"""Layering contracts: the library never imports the CLI, schemas import nothing else of nx,
and ingest and explain never import each other."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "nx"


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules_under(directory: str) -> list[Path]:
    return sorted((PACKAGE / directory).rglob("*.py")) if directory else sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", [p for p in modules_under("") if p.name not in ("cli.py", "__main__.py")],
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_library_modules_never_import_the_cli(path):
    assert not {"nx.cli", "nx.render"} & imports_of(path)


@pytest.mark.parametrize("path", modules_under("schema"), ids=lambda p: p.name)
def test_schema_imports_nothing_of_nx_but_itself(path):
    others = {name for name in imports_of(path) if name.startswith("nx") and not name.startswith("nx.schema")}
    assert not others


@pytest.mark.parametrize("path", modules_under("ingest"), ids=lambda p: p.name)
def test_ingest_never_imports_explain(path):
    assert not any(name.startswith("nx.explain") for name in imports_of(path))


@pytest.mark.parametrize("path", modules_under("explain"), ids=lambda p: p.name)
def test_explain_never_imports_ingest(path):
    assert not any(name.startswith("nx.ingest") for name in imports_of(path))


@pytest.mark.parametrize("path", modules_under(""), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_small_and_say_what_they_own(path):
    text = path.read_text()
    assert len(text.splitlines()) <= 500
    if text.strip():
        assert ast.get_docstring(ast.parse(text)), "every module starts with a docstring"
