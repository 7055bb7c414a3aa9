"""Start-up cost is a contract: ``nx sql`` on a local warehouse imports neither pydantic (typer
would, when a command runs), polars, pyarrow, deltalake, openai, adlfs nor rich (for CSV), nor
the ingest and explain packages. (An import list, not a timing: bench/query.py measures the
ratio to a bare ``python -c "import duckdb; ..."``.)"""
from __future__ import annotations

import json
import subprocess
import sys

from query_fixtures import warehouse  # noqa: F401  (fixture)

HEAVY = ("pydantic", "typer", "polars", "pyarrow", "deltalake", "openai", "adlfs", "azure", "aiohttp", "rich",
         "nx.ingest", "nx.explain")


def loaded_after(code: str, heavy: tuple[str, ...] = HEAVY) -> dict:
    probe = code + f"\nimport json, sys\nprint(json.dumps([m for m in {heavy!r} if m in sys.modules]))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return {"stdout": result.stdout.splitlines(), "loaded": json.loads(result.stdout.splitlines()[-1])}


def test_nx_sql_on_a_local_warehouse_loads_nothing_heavy(warehouse):
    run = loaded_after("import sys\nfrom nx.cli import app\n"
                       f"sys.argv = ['nx', 'sql', 'select count(*) as n from explanations', '-w', {warehouse!r}]\n"
                       "try:\n    app()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n")
    assert run["stdout"][:2] == ["n", "6"]
    assert run["loaded"] == []


def test_the_python_api_loads_nothing_heavy_until_asked(warehouse):
    # nx.sql and nx.query return Arrow tables: pyarrow is theirs to load
    run = loaded_after(f"import nx\nnx.sql('select 1', {warehouse!r})\nnx.query('top-explained', {warehouse!r})\n"
                       f"nx.neuron(0, 0, warehouse={warehouse!r})", tuple(m for m in HEAVY if m != "pyarrow"))
    assert run["loaded"] == []
    scanned = loaded_after(f"import nx\nnx.scan('explanations', {warehouse!r})")
    assert scanned["loaded"] == ["polars", "pyarrow"]  # a scan's schema is the declared (Arrow) one
