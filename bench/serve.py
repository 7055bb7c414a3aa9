"""Benchmark: nx serve at GPT-2 XL scale, page by page, against one nx.connect() query.

Uses bench/query.py's synthetic warehouse (written straight as Parquet in ingest's layout):
explanations, related neurons, token lookups and token weights of all 307,200 neurons
(48 layers x 6,400), activation records, neurons and scored sequences for 2 layers. Starts
``nx serve`` as its own process (the real command) and, with one keep-alive HTTP client
(gzip on, as a browser), measures warm latency over many requests of:

1. the neuron page (HTML) of random neurons of the record layers (every pane full);
2. its JSON twin (everything, distributions included);
3. the home page with layer statistics and the lists;
4. a search (text match ranked by score, varied words), as HTML;

and, in this process on the same files, the same data read with one ``nx.connect()`` query:
the neuron's activation records (and, for reference, ``nx.neuron()``), the ``layer-stats``
named query, the search SQL over the views. Prints median and 95th percentile of each, and
the time the viewer's first answer took after start (its index load). Targets: a neuron page
under 100 ms, a search under 300 ms.

    python bench/serve.py [--requests 200] [--keep DIR] [--warehouse DIR] [--port 8765]
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import query as query_bench  # noqa: E402  (bench/query.py: the synthetic GPT-2 XL warehouse)

SEARCH_WORDS = ("er", "an", "th", "qu", "ion", "st", "ou", "ing", "ea", "zz")
SEARCH_SQL = """
select layer, neuron, run, explanation, score, top_only_score, random_only_score, count(*) over () as total
from explanations
where model = 'gpt2-xl' and explanation is not null and contains(lower(explanation), lower($text))
order by score desc nulls last, layer, neuron, run, explanation_index limit 50
"""


def percentiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def timed(work, arguments: list, warm: int = 5) -> list[float]:
    for argument in arguments[:warm]:
        work(argument)
    times = []
    for argument in arguments:
        started = time.perf_counter()
        work(argument)
        times.append(time.perf_counter() - started)
    return times


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(root: Path, port: int) -> tuple[subprocess.Popen, float]:
    """``nx serve`` in its own process; returns it and the seconds to its first answer."""
    import httpx

    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "nx", "serve", "-w", str(root), "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nx serve exited: {process.stderr.read().decode()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/index.json", timeout=60).status_code == 200:
                return process, time.perf_counter() - started
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("nx serve did not answer within 120 s")


def bench_server(port: int, neurons: list[tuple[int, int]], requests: int) -> dict[str, list[float]]:
    import httpx

    base = f"http://127.0.0.1:{port}"
    results = {}
    with httpx.Client(base_url=base, timeout=60) as client:
        def get(path: str) -> None:
            answer = client.get(path)
            answer.raise_for_status()
            answer.read()

        results["neuron page (HTML)"] = timed(get, [f"/neuron/{l}/{n}" for l, n in neurons])
        results["neuron page, JSON twin"] = timed(get, [f"/neuron/{l}/{n}.json" for l, n in neurons])
        results["home page with layer stats"] = timed(get, ["/"] * requests)
        words = [random.choice(SEARCH_WORDS) for _ in range(requests)]
        results["search (HTML, 50 best of the matches)"] = timed(get, [f"/search?q={w}" for w in words])
        results["search, JSON twin"] = timed(get, [f"/search.json?q={w}" for w in words])
    return results


def bench_baseline(root: Path, neurons: list[tuple[int, int]], requests: int) -> dict[str, list[float]]:
    import nx

    con = nx.connect(str(root))
    records = "select * from activation_records where model = 'gpt2-xl' and layer = $layer and neuron = $neuron"
    stats_sql = nx.queries.named_queries(str(root))["layer-stats"].sql
    results = {
        "neuron: its activation records": timed(
            lambda key: con.sql(records, params={"layer": key[0], "neuron": key[1]}).fetchall(), neurons),
        "home: layer-stats named query": timed(
            lambda _: con.sql(stats_sql, params={"threshold": 0.8, "model": "gpt2-xl", "run": "public"}).fetchall(),
            [None] * min(requests, 50)),
        "search: the same SQL over the views": timed(
            lambda word: con.sql(SEARCH_SQL, params={"text": word}).fetchall(),
            [random.choice(SEARCH_WORDS) for _ in range(min(requests, 50))]),
        "nx.neuron(l, n) (reference)": timed(
            lambda key: nx.neuron(key[0], key[1], warehouse=str(root)), neurons[:min(len(neurons), 50)]),
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page")
    parser.add_argument("--keep", help="build the warehouse here (and reuse it if present)")
    parser.add_argument("--warehouse", help="an existing warehouse to measure instead (its record layers are found)")
    parser.add_argument("--port", type=int, default=0, help="port for nx serve (default: a free one)")
    args = parser.parse_args()
    random.seed(0)
    work = Path(tempfile.mkdtemp(prefix="nx-bench-serve-"))
    root = Path(args.warehouse or args.keep or work / "warehouse")
    layers, per_layer = query_bench.LAYERS, query_bench.NEURONS
    record_layers = list(range(layers // 2 - 2, layers // 2))
    process = None
    try:
        if not (root / "explanations").exists():
            query_bench.build(root, layers, record_layers)
        found = sorted(int(p.name.split("=")[1]) for p in (root / "activation_records" / "model=gpt2-xl").iterdir())
        record_layers = found or record_layers
        neurons = [(random.choice(record_layers), random.randrange(per_layer)) for _ in range(args.requests)]
        port = args.port or free_port()
        process, first = start_server(root, port)
        served = bench_server(port, neurons, args.requests)
        baseline = bench_baseline(root, neurons, args.requests)
        explanations = sum(1 for _ in (root / "explanations").rglob("*.parquet"))
        print(f"nx serve at GPT-2 XL scale: {layers} layers x {per_layer:,} neurons ({explanations:,} explanations "
              f"files), activation records for layers {record_layers}; {os.cpu_count()} cores; warm, "
              f"{args.requests} requests each, one keep-alive client with gzip")
        print(f"  first answer after start (index of {layers * per_layer:,} explanations loaded): {first:.2f} s")
        print(f"\n  {'nx serve':<52}{'median ms':>10}{'p95 ms':>10}")
        for name, times in served.items():
            median, p95 = percentiles(times)
            print(f"  {name:<52}{median * 1000:>10.1f}{p95 * 1000:>10.1f}")
        print(f"\n  {'the same data with one nx.connect() query':<52}{'median ms':>10}{'p95 ms':>10}")
        for name, times in baseline.items():
            median, p95 = percentiles(times)
            print(f"  {name:<52}{median * 1000:>10.1f}{p95 * 1000:>10.1f}")
        page, search = percentiles(served["neuron page (HTML)"])[0], percentiles(served["search (HTML, 50 best of the matches)"])[0]
        print(f"\n  neuron page median {page * 1000:.0f} ms (target < 100 ms); search median {search * 1000:.0f} ms "
              f"(target < 300 ms)")
        print(f"  neuron page / its activation records via nx.connect(): "
              f"{page / percentiles(baseline['neuron: its activation records'])[0]:.2f}x; search / the same SQL on "
              f"the views: {search / percentiles(baseline['search: the same SQL over the views'])[0]:.2f}x")
    finally:
        if process is not None:
            process.terminate()
            process.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
