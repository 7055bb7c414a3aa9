"""Benchmark: nx ingest of collated activations vs DuckDB read_json vs json.load + pyarrow.

Generates N neurons (default 2,000) of realistic size (about 130 records of 64 tokens,
about 234 KB of JSON each, like the public files) and measures, on the same files in the
same run:

1. nx ingest collated-activations with all cores (a separate process; peak memory of it and
   of its workers is reported);
2. DuckDB ``read_json`` of the files copied to Parquet (DuckDB's own threads, a separate
   process);
3. a plain per-file ``json.load`` into pyarrow, one process.

nx and DuckDB run ``--repeat`` times each, alternating, and the best run of each counts (a
shared virtual machine's speed drifts by 10-20% from one second to the next); the
json.load baseline runs once. Prints neurons/s for each and nx's ratio to each baseline.
Target: nx >= 2.5x DuckDB (aim 4x) and peak memory under 2 GiB whatever N is.

    python bench/ingest.py [--neurons 2000] [--workers N] [--repeat 3] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
NEURONS_PER_LAYER = 1000


def _write_one(args: tuple[str, int]) -> int:
    import cases

    root, index = args
    layer, neuron = divmod(index, NEURONS_PER_LAYER)
    path = Path(root) / "collated-activations" / str(layer) / f"{neuron}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = cases.dumps(cases.realistic_neuron_record(layer, neuron, seed=index))
    path.write_bytes(data)
    return len(data)


def generate(root: Path, n: int) -> int:
    with ProcessPoolExecutor() as pool:
        return sum(pool.map(_write_one, [(str(root), i) for i in range(n)], chunksize=32))


NX_RUN = """
import json, resource, sys, time
import nx.ingest
started = time.perf_counter()
report = nx.ingest.run(["collated-activations"], source=sys.argv[1], warehouse=sys.argv[2], workers=int(sys.argv[3]))
seconds = time.perf_counter() - started
self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"seconds": seconds, "ok": report.kinds["collated-activations"].ok,
                  "self_kb": self_kb, "child_kb": child_kb}))
"""


def run_nx(source: Path, warehouse: Path, workers: int) -> dict:
    out = subprocess.run([sys.executable, "-c", NX_RUN, str(source), str(warehouse), str(workers)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


DUCKDB_RUN = """
import sys, time
import duckdb
started = time.perf_counter()
duckdb.connect().execute(f\"\"\"COPY (SELECT * FROM read_json('{sys.argv[1]}/collated-activations/*/*.json',
                format='auto', maximum_object_size=67108864, filename=true))
                TO '{sys.argv[2]}' (FORMAT parquet, COMPRESSION zstd)\"\"\")
print(time.perf_counter() - started)
"""


def run_duckdb(source: Path, target: Path) -> float:
    # its own process, like nx's: a process forked from one that held DuckDB's memory would
    # report that memory as its own peak (Linux keeps the peak across exec)
    out = subprocess.run([sys.executable, "-c", DUCKDB_RUN, str(source), str(target)],
                         check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def run_json_load(source: Path, target: Path) -> float:
    import pyarrow as pa
    import pyarrow.parquet as pq

    started = time.perf_counter()
    writer = None
    for path in sorted((source / "collated-activations").glob("*/*.json")):
        with open(path) as f:
            record = json.load(f)
        rows = [{"sample": sample, "rank": rank, "tokens": r["tokens"], "activations": r["activations"]}
                for sample, key in (("top", "most_positive_activation_records"), ("random", "random_sample"))
                for rank, r in enumerate(record[key])]
        table = pa.Table.from_pylist(rows)
        writer = writer or pq.ParquetWriter(target, table.schema, compression="zstd")
        writer.write_table(table)
    if writer:
        writer.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--neurons", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--repeat", type=int, default=3, help="runs of nx and of DuckDB; the best counts")
    parser.add_argument("--keep", help="keep the generated source here (and reuse it if present)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nx-bench-ingest-"))
    source = Path(args.keep) if args.keep else work / "source"
    try:
        if not (source / "collated-activations").exists():
            t = time.perf_counter()
            total = generate(source, args.neurons)
            print(f"generated {args.neurons:,} neurons, {total / args.neurons / 1000:.0f} KB each "
                  f"({time.perf_counter() - t:.0f} s)", file=sys.stderr)
        n = sum(1 for _ in (source / "collated-activations").glob("*/*.json"))
        nx_runs, duck_runs = [], []
        for attempt in range(max(1, args.repeat)):
            shutil.rmtree(work / "warehouse", ignore_errors=True)
            result = run_nx(source, work / "warehouse", args.workers)
            assert result["ok"] == n, result
            nx_runs.append(result)
            duck_runs.append(run_duckdb(source, work / "duckdb.parquet"))
        nx_result = min(nx_runs, key=lambda r: r["seconds"])
        duck_seconds = min(duck_runs)
        json_seconds = run_json_load(source, work / "json.parquet")
        nx_rate = n / nx_result["seconds"]
        duck_rate = n / duck_seconds
        json_rate = n / json_seconds
        peak_mib = (max(r["self_kb"] for r in nx_runs) + args.workers * max(r["child_kb"] for r in nx_runs)) / 1024
        print(f"neurons: {n:,}   cores: {os.cpu_count()}   nx workers: {args.workers}   best of {len(nx_runs)}")
        nx_seconds = " ".join(f"{r['seconds']:.2f}" for r in nx_runs)
        print(f"runs (s): nx {nx_seconds}   duckdb {' '.join(f'{d:.2f}' for d in duck_runs)}")
        print(f"{'method':<40}{'seconds':>9}{'neurons/s':>11}{'nx ratio':>10}")
        print(f"{'nx ingest collated-activations':<40}{nx_result['seconds']:>9.1f}{nx_rate:>11,.0f}{1:>10.2f}")
        print(f"{'duckdb read_json -> parquet':<40}{duck_seconds:>9.1f}{duck_rate:>11,.0f}{nx_rate / duck_rate:>10.2f}")
        print(f"{'json.load + pyarrow (1 process)':<40}{json_seconds:>9.1f}{json_rate:>11,.0f}{nx_rate / json_rate:>10.2f}")
        print(f"nx peak memory: main {max(r['self_kb'] for r in nx_runs) / 1024:,.0f} MiB + {args.workers} x worker "
              f"{max(r['child_kb'] for r in nx_runs) / 1024:,.0f} MiB = {peak_mib:,.0f} MiB (bound) (target < 2048 MiB)")
        print(f"nx vs duckdb: {nx_rate / duck_rate:.2f}x (target >= 2.5x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
