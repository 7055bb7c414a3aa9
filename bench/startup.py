"""Benchmark: the command line's start-up, the contract of ``nx sql`` as a whole process.

On the bundled sample (ingested into a temporary warehouse), where the query itself costs
next to nothing, so what is measured is what a command costs before and after it:

- ``nx sql "<a query>"`` vs ``python -c "import duckdb; ..."`` running the same SQL over the
  same Parquet files (the table's current files, as the Delta log lists them), printing CSV
  as ``nx sql`` does when piped (target: nx within 1.5x);
- ``nx query top-explained`` against the same bare command;
- ``nx --help`` vs ``python -c "import duckdb"`` (target within 1.5x).

Each command runs ``--repeat`` times, interleaved so drift in a shared machine hits them
alike; the medians are compared. nx's modules are byte-compiled first, as pip install does.

    python bench/startup.py [--repeat 15]
"""
from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NX_SQL = "nx sql '<the query>'"
QUERY = ("select layer, count(*) as explained, avg(score) as mean_score from {source} "
         "where run = 'public' group by layer order by layer")


def nx_command() -> list[str]:
    found = shutil.which("nx")
    return [found] if found else [sys.executable, "-m", "nx"]


def bare_query(files: list[str]) -> str:
    source = f"read_parquet({files!r}, hive_partitioning = true)"
    return ("import csv, sys, duckdb\n"
            f"result = duckdb.sql({QUERY.format(source=source)!r})\n"
            "writer = csv.writer(sys.stdout)\n"
            "writer.writerow(result.columns)\n"
            "writer.writerows(result.fetchall())\n")


def measure(commands: dict[str, list[str]], repeat: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, command in commands.items():
            started = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(found) for name, found in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="runs of each command (median)")
    args = parser.parse_args()
    import nx
    import nx.ingest
    from nx.queries.location import locate

    compileall.compile_dir(str(Path(nx.__file__).parent), quiet=1)
    work = Path(tempfile.mkdtemp(prefix="nx-bench-startup-"))
    try:
        warehouse = work / "warehouse"
        nx.ingest.run(source=str(ROOT / "nx" / "sample"), warehouse=str(warehouse), workers=1)
        files = locate(str(warehouse)).file_urls("explanations")
        nx_sql = [*nx_command(), "sql", QUERY.format(source="explanations"), "-w", str(warehouse)]
        bare = [sys.executable, "-c", bare_query(files)]
        same = subprocess.run(nx_sql, check=True, capture_output=True, text=True).stdout
        assert same == subprocess.run(bare, check=True, capture_output=True, text=True).stdout, "not the same rows"
        results = measure({
            "bare python -c 'import duckdb; <the query>'": bare,
            NX_SQL: nx_sql,
            "nx query top-explained": [*nx_command(), "query", "top-explained", "-w", str(warehouse)],
            "bare python -c 'import duckdb'": [sys.executable, "-c", "import duckdb"],
            "nx --help": [*nx_command(), "--help"],
        }, args.repeat)
        floor = results["bare python -c 'import duckdb; <the query>'"]
        imports = results["bare python -c 'import duckdb'"]
        print(f"start-up on the bundled sample; {os.cpu_count()} cores; median of {args.repeat} runs")
        print(f"{'command':<50}{'seconds':>9}")
        for name, seconds in results.items():
            print(f"  {name:<48}{seconds:>9.3f}")
        print(f"  nx sql / bare duckdb, same query and files: {results[NX_SQL] / floor:.2f}x (target <= 1.5x)")
        print(f"  nx query top-explained / bare duckdb: {results['nx query top-explained'] / floor:.2f}x")
        print(f"  nx --help / python -c 'import duckdb': {results['nx --help'] / imports:.2f}x (target <= 1.5x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
