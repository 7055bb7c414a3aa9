"""Layering contracts: the library never imports the CLI, schemas import nothing else of nx,
ingest and explain never import each other, and reading (the query layer) never imports
either writer: the public layout both sides need is nx/layout.py's."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "nx"


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at any depth (inside functions too); ``from nx import x``
    counts as ``nx.x`` as well, since x may be a module."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            names.add(str(node.args[0].value))
    return names


def modules_under(directory: str) -> list[Path]:
    return sorted((PACKAGE / directory).rglob("*.py")) if directory else sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", [p for p in modules_under("")   # cli_*.py: commands cli.py registers
                                  if p.name not in ("cli.py", "__main__.py") and not p.name.startswith("cli_")],
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


@pytest.mark.parametrize("path", modules_under("queries"), ids=lambda p: p.name)
def test_the_query_layer_never_imports_ingest_or_explain(path):
    assert not any(name.startswith(("nx.ingest", "nx.explain")) for name in imports_of(path))


def test_the_layout_imports_nothing_of_nx_but_its_errors():
    assert {name for name in imports_of(PACKAGE / "layout.py") if name.startswith("nx")} <= {"nx.errors",
                                                                                            "nx.errors.UsageError"}


def test_ingest_kinds_take_their_layout_from_nx_layout():
    from nx import layout
    from nx.ingest.kinds import KINDS

    assert list(KINDS) == list(layout.KINDS)
    for name, module in KINDS.items():
        assert (module.KIND, module.DIRECTORY, module.SUFFIX, module.TABLES, module.MAIN_TABLE) == layout.KINDS[name]


def test_reading_the_warehouse_loads_neither_writer(tmp_path):
    import subprocess
    import sys

    probe = ("import sys, nx, nx.queries, nx.queries.neuron, nx.queries.card, nx.queries.frames\n"
             "print(sorted(m for m in sys.modules if m.startswith(('nx.ingest', 'nx.explain'))))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout.strip()) == (0, "[]"), result.stderr
