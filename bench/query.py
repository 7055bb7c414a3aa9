"""Benchmark: the query layer at GPT-2 XL scale.

Builds a synthetic warehouse the way ``nx ingest`` does (``Warehouse.write_files`` per unit of
128 neurons for neurons, activation records and explanations, 1,600 for the other tables; one
Delta commit per table and layer; compaction at the end):

- explanations, related neurons, token lookups and token weights of all 307,200 neurons
  (48 layers x 6,400);
- neurons, activation records (125 records of 64 tokens a neuron, as the public files) and
  scored sequences for ``--record-layers`` layers (default 2) x 6,400 neurons;
- the ``_ingest`` log, so ``nx export`` can write the JSON of any of them.

Tokens are Zipf-distributed over a 50,257-token vocabulary; activations are float32 GELU
outputs with spikes, so the Parquet compresses like real data, not like a toy. Then, in one run:

1. ``top-explained`` through ``nx sql`` as a whole process vs the same SQL through a bare
   ``python -c "import duckdb; ..."`` over ONE Parquet file holding the same rows, the floor
   for this engine (median of --repeat runs; target nx within 1.3x); with Azurite on the PATH
   (npm ``azurite``), the same ``nx sql`` over an az:// copy of the table (target within 3x
   of the local one-file floor);
2. ``nx.neuron(l, n)`` latency (target < 50 ms) vs ``json.load`` of that neuron's five JSON
   files (written by ``nx export``, so both sides hold the same data, in the public format);
3. the warehouse's size vs the public JSON's size for the same neurons (estimated from the
   exported sample, per kind).

    python bench/query.py [--record-layers 2] [--repeat 7] [--sample 20] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa

from nx.schema import TABLES

LAYERS, NEURONS, VOCABULARY = 48, 6400, 50_257
RECORDS = (("top", None, 50), ("random", None, 50), *(("quantile", q, 5) for q in range(5)))
TOKENS = 64
SMALL_CHUNK, LARGE_CHUNK = 128, 1600
MODEL = {"model": "gpt2-xl"}
TOP_EXPLAINED = ("select layer, neuron, explanation, score, top_only_score, random_only_score "
                 "from {source} where model = 'gpt2-xl' and run = 'public' and score >= 0.8 "
                 "order by score desc, layer, neuron, explanation_index")


# -- synthetic data ------------------------------------------------------------------------
def vocabulary() -> pa.Array:
    rng = np.random.default_rng(50257)
    letters = np.array(list("etaoinshrdlucmfwypvbgkjqxz"))
    words = ["".join(rng.choice(letters, size=int(rng.integers(1, 9)))) for _ in range(VOCABULARY)]
    return pa.array([(" " if i % 3 else "") + w for i, w in enumerate(words)])


def token_ids(rng, n: int) -> np.ndarray:
    return np.minimum(rng.zipf(1.2, size=n) - 1, VOCABULARY - 1)


def lists(values: pa.Array, width: int) -> pa.ListArray:
    return pa.ListArray.from_arrays(pa.array(np.arange(0, len(values) + 1, width, dtype=np.int32)), values)


def hex_ids(rng, n: int) -> pa.Array:
    return pa.array([f"{v:016x}" for v in rng.integers(0, 2 ** 63, size=n)])


def activations(rng, rows: int, spikes: np.ndarray | None) -> np.ndarray:
    x = rng.normal(-1.3, 0.7, size=(rows, TOKENS))
    values = 0.5 * x * (1 + np.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))
    if spikes is not None:
        values[np.arange(rows), rng.integers(0, TOKENS, size=rows)] = spikes
    return values.astype(np.float32).astype(np.float64)


def explanation_table(rng, neurons: np.ndarray, vocab: pa.Array) -> pa.Table:
    n = len(neurons)
    score = np.clip(rng.normal(0.25, 0.2, n), -0.6, 0.99)
    words = vocab.take(pa.array(token_ids(rng, 2 * n))).to_pylist()
    text = [f"references to{words[2 * i]} and{words[2 * i + 1]}" for i in range(n)]
    noise = lambda: rng.normal(0, 0.05, n)  # noqa: E731
    return pa.table({"neuron": neurons, "explanation_index": np.zeros(n, np.int32), "explanation": text,
                     "score": score, "ev_correlation_score": score, "rsquared_score": score - 0.3 + noise(),
                     "absolute_dev_explained_score": score - 0.4 + noise(), "top_only_score": score + noise(),
                     "random_only_score": score - 0.2 + noise(), "sequence_count": np.full(n, 10, np.int32),
                     "status": ["ok"] * n})


def record_tables(rng, neurons: np.ndarray, vocab: pa.Array) -> dict[str, pa.Table]:
    """neurons, activation_records and explanation_sequences of one chunk of neurons."""
    per = sum(count for _, _, count in RECORDS)
    rows = len(neurons) * per
    sample = np.tile(np.concatenate([[s] * c for s, _, c in RECORDS]), len(neurons))
    quantile = np.tile(np.concatenate([[q if q is not None else -1] * c for _, q, c in RECORDS]), len(neurons))
    rank = np.tile(np.concatenate([np.arange(c) for _, _, c in RECORDS]), len(neurons)).astype(np.int32)
    peaks = np.where(sample == "top", rng.uniform(3, 10, rows) * np.exp(-rank / 40), np.nan)
    values = activations(rng, rows, None)
    top = sample == "top"
    values[top, rng.integers(0, TOKENS, size=int(top.sum()))] = peaks[top]
    tokens = lists(vocab.take(pa.array(token_ids(rng, rows * TOKENS))), TOKENS)
    acts = lists(pa.array(values.ravel()), TOKENS)
    records = pa.table({
        "neuron": np.repeat(neurons, per), "sample": sample,
        "quantile": pa.array(quantile, mask=quantile < 0, type=pa.int32()), "rank": rank,
        "tokens": tokens, "activations": acts, "max_activation": values.max(axis=1), "sequence_id": hex_ids(rng, rows)})
    boundaries = lists(pa.array(np.sort(rng.normal(0, 2, len(neurons) * 6))), 6)
    neuron_rows = pa.table({
        "neuron": neurons, "mean": rng.normal(-0.05, 0.01, len(neurons)), "variance": rng.uniform(0.1, 0.4, len(neurons)),
        "skewness": rng.uniform(2, 10, len(neurons)), "kurtosis": rng.uniform(10, 100, len(neurons)),
        "quantile_boundaries": boundaries, "max_activation": values.reshape(len(neurons), per, TOKENS).max(axis=(1, 2)),
        "top_count": np.full(len(neurons), 50, np.int32), "random_count": np.full(len(neurons), 50, np.int32),
        "quantile_count": np.full(len(neurons), 5, np.int32)})
    # The paper's valid split: 5 top then 5 random records per neuron, simulated.
    chosen = np.concatenate([np.arange(i * per, i * per + 5) for i in range(len(neurons))] +
                            [np.arange(i * per + 50, i * per + 55) for i in range(len(neurons))])
    chosen.sort()
    n_seq = len(chosen)
    truth = values[chosen]
    expected = np.clip(truth + rng.normal(0, 1, truth.shape), 0, None)
    spread = lists(lists(pa.array(np.round(rng.uniform(0, 10, n_seq * TOKENS * 3), 2)), 3), TOKENS)
    probabilities = lists(lists(pa.array(rng.dirichlet(np.ones(3), n_seq * TOKENS).ravel()), 3), TOKENS)
    sequences = pa.table({
        "neuron": np.repeat(neurons, 10), "explanation_index": np.zeros(n_seq, np.int32),
        "seq_index": np.tile(np.arange(10, dtype=np.int32), len(neurons)), "sample": sample[chosen],
        "tokens": tokens.take(pa.array(chosen)), "true_activations": lists(pa.array(truth.ravel()), TOKENS),
        "expected_activations": lists(pa.array(expected.ravel()), TOKENS),
        "activation_scale": ["neuron_activations"] * n_seq, "distribution_values": spread,
        "distribution_probabilities": probabilities,
        "ev_correlation_score": rng.uniform(-0.2, 0.9, n_seq), "rsquared_score": rng.uniform(-1, 0.6, n_seq),
        "absolute_dev_explained_score": rng.uniform(-1, 0.5, n_seq),
        "sequence_id": records.column("sequence_id").take(pa.array(chosen))})
    return {"neurons": neuron_rows, "activation_records": records, "explanation_sequences": sequences}


def related_tables(rng, layer: int, layers: int, neurons: np.ndarray, vocab: pa.Array) -> dict[str, pa.Table]:
    n = len(neurons)
    sides = [(d, s) for d, ok in (("input", layer > 0), ("output", layer < layers - 1)) if ok
             for s in ("positive", "negative")]
    parts = []
    for direction, sign in sides:
        other = rng.integers(0, layer, n * 10) if direction == "input" else rng.integers(layer + 1, layers, n * 10)
        weight = np.sort(rng.uniform(0.05, 0.6, (n, 10)), axis=1)[:, ::-1].ravel()
        parts.append(pa.table({"neuron": np.repeat(neurons, 10), "direction": [direction] * (n * 10),
                               "sign": [sign] * (n * 10), "rank": np.tile(np.arange(10, dtype=np.int32), n),
                               "other_layer": other.astype(np.int32),
                               "other_neuron": rng.integers(0, NEURONS, n * 10).astype(np.int32),
                               "weight": weight if sign == "positive" else -weight}))
    lookups = pa.table({"neuron": np.repeat(neurons, 50), "rank": np.tile(np.arange(50, dtype=np.int32), n),
                        "token": vocab.take(pa.array(token_ids(rng, n * 50))),
                        "average_activation": np.sort(rng.uniform(0.1, 6, (n, 50)), axis=1)[:, ::-1].ravel()})
    weights = []
    for direction in ("input", "output"):
        for sign in ("positive", "negative"):
            strength = np.sort(rng.uniform(0.1, 0.9, (n, 20)), axis=1)[:, ::-1].ravel()
            weights.append(pa.table({"neuron": np.repeat(neurons, 20), "direction": [direction] * (n * 20),
                                     "sign": [sign] * (n * 20), "rank": np.tile(np.arange(20, dtype=np.int32), n),
                                     "token": vocab.take(pa.array(token_ids(rng, n * 20))),
                                     "strength": strength if sign == "positive" else -strength}))
    return {"related_neurons": pa.concat_tables(parts).sort_by("neuron"), "token_lookups": lookups,
            "token_weights": pa.concat_tables(weights).sort_by("neuron")}


def complete(name: str, table: pa.Table) -> pa.Table:
    """Add the declared columns a generator left out, as nulls."""
    for field in TABLES[name].columns:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table


def write_layer(args: tuple[str, int, int, bool]) -> dict[str, list]:
    """Every table of one layer, written as an ingest worker writes them; the new files by table."""
    from nx.warehouse import Warehouse

    root, layer, layers, with_records = args
    store = Warehouse(root)
    vocab = vocabulary()
    rng = np.random.default_rng(layer)
    written: dict[str, list] = {}
    values = {**MODEL, "run": "public", "layer": layer}

    def write(name: str, table: pa.Table) -> None:
        spec = TABLES[name]
        written.setdefault(name, []).extend(
            store.write_files(name, {k: v for k, v in values.items() if k in spec.schema.names}, complete(name, table)))

    for chunk in range(NEURONS // SMALL_CHUNK):
        neurons = np.arange(chunk * SMALL_CHUNK, (chunk + 1) * SMALL_CHUNK, dtype=np.int32)
        write("explanations", explanation_table(rng, neurons, vocab))
        if with_records:
            for name, table in record_tables(rng, neurons, vocab).items():
                write(name, table)
    for chunk in range(NEURONS // LARGE_CHUNK):
        neurons = np.arange(chunk * LARGE_CHUNK, (chunk + 1) * LARGE_CHUNK, dtype=np.int32)
        for name, table in related_tables(rng, layer, layers, neurons, vocab).items():
            write(name, table)
    kinds = ["explanations", "related-neurons", "token-lookups", "token-weights"]
    kinds += ["collated-activations"] if with_records else []
    null_side = {0: ["c_fc"], layers - 1: ["c_proj"]}.get(layer)
    for kind in kinds:
        skeleton = None
        if kind == "related-neurons":
            skeleton = json.dumps({"": {"dataclass_name": "WeightBasedNeuronConnections"},
                                   **({"__null__": null_side} if null_side else {})})
        written.setdefault("_ingest", []).extend(store.write_files("_ingest", {**MODEL, "kind": kind, "layer": layer},
                                                                   complete("_ingest", pa.table({
            "neuron": np.arange(NEURONS, dtype=np.int32), "path": [f"{kind}/{layer}/{n}" for n in range(NEURONS)],
            "status": ["ok"] * NEURONS, "skeleton": [skeleton] * NEURONS}))))
    return written


def build(root: Path, layers: int, record_layers: list[int]) -> None:
    from nx import maintenance
    from nx.warehouse import Warehouse

    started = time.perf_counter()
    store = Warehouse(str(root))
    touched = set()
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        for written in pool.map(write_layer, [(str(root), layer, layers, layer in record_layers)
                                             for layer in range(layers)]):
            for name, files in written.items():  # a commit per table and layer, as ingest batches them
                store.commit(name, files, operation="ingest")
                touched.add(name)
    files = sum(len(store.files(t)) for t in touched)
    built = time.perf_counter() - started
    maintenance.compact(store, sorted(touched), "ingest")
    print(f"built the warehouse in {built:.0f} s ({files:,} files), compacted in "
          f"{time.perf_counter() - started - built:.0f} s ({sum(len(store.files(t)) for t in touched):,} files)",
          file=sys.stderr)


# -- measurements --------------------------------------------------------------------------
def compile_nx() -> None:
    """Bytecode for nx's modules, as a pip install writes it (an editable install under
    PYTHONDONTWRITEBYTECODE=1 would compile them on every run, ~50 ms, and duckdb's never)."""
    import compileall

    import nx

    compileall.compile_dir(str(Path(nx.__file__).parent), quiet=1)



def timed_process(command: list[str], repeat: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


def one_file(root: Path, work: Path) -> Path:
    """The explanations table's rows in one Parquet file: the floor of a query over them."""
    import nx

    path = work / "explanations.parquet"
    con = nx.connect(str(root))
    con.execute(f"copy (select * from explanations) to '{path}' (format parquet, compression zstd)")
    return path


def bench_sql(root: Path, repeat: int, work: Path, azure_url: str | None, azure_env: dict) -> dict:
    nx_command = shutil.which("nx")
    nx_command = [nx_command] if nx_command else [sys.executable, "-m", "nx"]
    floor = one_file(root, work)
    bare = ("import csv, sys, duckdb\n"
            f"rows = duckdb.sql({TOP_EXPLAINED.format(source=f'read_parquet({str(floor)!r})')!r}).fetchall()\n"
            "csv.writer(sys.stdout).writerows(rows)\n")
    commands = {"bare duckdb, one file": [sys.executable, "-c", bare],
                "nx sql": [*nx_command, "sql", TOP_EXPLAINED.format(source="explanations"), "-w", str(root)],
                "nx query top-explained": [*nx_command, "query", "top-explained", "-w", str(root)],
                "bare python -c 'import duckdb'": [sys.executable, "-c", "import duckdb"],
                "nx --help": [*nx_command, "--help"]}
    cache = work / "nx-cache"  # the local copies of az:// files (nx/file_cache.py)
    if azure_url:
        over_azure = [*nx_command, "sql", TOP_EXPLAINED.format(source="explanations"), "-w", azure_url]
        commands["nx sql over az:// (Azurite), first query: empty cache"] = over_azure
        commands["nx sql over az:// (Azurite)"] = over_azure
    results = {name: [] for name in commands}
    for run in range(repeat):  # interleaved, so drift in the machine hits every command alike
        for name, command in commands.items():
            env = {**os.environ, **azure_env, "NX_CACHE_DIR": str(cache)}
            if "empty cache" in name:
                env["NX_CACHE_DIR"] = str(work / f"nx-cache-{run}")
            started = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
            results[name].append(time.perf_counter() - started)
    rows = subprocess.run(commands["nx sql"], check=True, capture_output=True, text=True).stdout.count("\n") - 1
    return {"rows": rows, **{name: statistics.median(times) for name, times in results.items()}}


def upload_to_azurite(root: Path, work: Path):
    """An Azurite on a free port holding a copy of the warehouse's explanations table; (process,
    its az:// URL, the environment that reaches it), or None without azurite-blob."""
    if not shutil.which("azurite-blob"):
        return None
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from azurite import DEV_ACCOUNT, DEV_ACCOUNT_KEY, free_port, wait_for_port

    port = free_port()
    process = subprocess.Popen(["azurite-blob", "--blobPort", str(port), "--location", str(work / "azurite"),
                                "--silent", "--skipApiVersionCheck", "--loose"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, process)
    connection = (f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_ACCOUNT_KEY};"
                  f"BlobEndpoint=http://127.0.0.1:{port}/{DEV_ACCOUNT};")
    import adlfs

    fs = adlfs.AzureBlobFileSystem(connection_string=connection)
    fs.mkdir("bench")
    table = root / "explanations"
    for directory, _, names in os.walk(table):
        for name in names:
            local = Path(directory) / name
            fs.put_file(str(local), f"bench/nx/{local.relative_to(root).as_posix()}")
    return process, f"az://{DEV_ACCOUNT}/bench/nx", {"AZURE_STORAGE_CONNECTION_STRING": connection}


def bench_neuron(root: Path, record_layers: list[int], sample: int, work: Path) -> dict:
    import nx

    rng = np.random.default_rng(7)
    picks = [(int(rng.choice(record_layers)), int(rng.integers(0, NEURONS))) for _ in range(sample)]
    started = time.perf_counter()
    nx.neuron(*picks[0], warehouse=str(root))
    first = time.perf_counter() - started
    latencies = []
    for layer, neuron in picks:
        started = time.perf_counter()
        found = nx.neuron(layer, neuron, warehouse=str(root))
        latencies.append(time.perf_counter() - started)
    assert len(found.top_records) == 50 and len(found.upstream) + len(found.downstream) > 0
    target = work / "json"
    for layer in record_layers:
        neurons = sorted({n for l, n in picks if l == layer})
        if neurons:
            nx.export(to=str(target), warehouse=str(root), layers=[layer], neurons=neurons)
    paths = {(l, n): [target / p for p in (f"collated-activations/{l}/{n}.json", f"explanations/{l}/{n}.jsonl",
                                           f"related-neurons/weight-based/{l}/{n}.json",
                                           f"related-tokens/activation-based/{l}/{n}.json",
                                           f"related-tokens/weight-based/{l}/{n}.json")] for l, n in picks}
    loads = []
    for key in picks:
        started = time.perf_counter()
        for path in paths[key]:
            with open(path) as f:
                json.load(f)
        loads.append(time.perf_counter() - started)
    explanation_load = statistics.median(_time_load(paths[key][1]) for key in picks)
    sizes = {kind: statistics.mean(os.path.getsize(paths[key][i]) for key in picks)
             for i, kind in enumerate(("collated-activations", "explanations", "related-neurons",
                                       "token-lookups", "token-weights"))}
    related = len(found.upstream) + len(found.downstream)
    return {"first": first, "median": statistics.median(latencies), "p90": float(np.quantile(latencies, 0.9)),
            "json": statistics.median(loads), "explanation_load": explanation_load, "related": related,
            "json_sizes": sizes}


def _time_load(path: Path) -> float:
    started = time.perf_counter()
    with open(path) as f:
        json.load(f)
    return time.perf_counter() - started


def commands_in(sql: dict) -> list[str]:
    return [name for name in sql if name != "rows"]


def warehouse_bytes(root: Path, layers: list[int] | None = None, tables=None) -> int:
    """Bytes of the current version's data files (files that compaction replaced are not
    counted); with ``layers``, those layers' share (by each file's layer range)."""
    from nx.warehouse import Warehouse

    store = Warehouse(str(root))
    total = 0.0
    for table in tables or TABLES:
        for f in store.files(table):
            if layers is None:
                total += f.size
            elif "layer" in f.partition_values:
                total += f.size if int(f.partition_values["layer"]) in layers else 0
            else:
                low, high = f.bounds("layer") or (0, 0)
                total += f.size * sum(1 for layer in layers if low <= layer <= high) / (high - low + 1)
    return int(total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record-layers", type=int, default=2, help="layers with activation records")
    parser.add_argument("--repeat", type=int, default=7, help="runs of each command (median)")
    parser.add_argument("--sample", type=int, default=20, help="neurons timed with nx.neuron")
    parser.add_argument("--keep", help="build the warehouse here (and reuse it if present)")
    parser.add_argument("--layers", type=int, default=LAYERS, help="layers of the warehouse (GPT-2 XL: 48)")
    args = parser.parse_args()
    compile_nx()
    record_layers = list(range(args.layers // 2 - 2, args.layers // 2 - 2 + args.record_layers))
    work = Path(tempfile.mkdtemp(prefix="nx-bench-query-"))
    root = Path(args.keep) if args.keep else work / "warehouse"
    try:
        if not (root / "explanations").exists():
            build(root, args.layers, record_layers)
        azure = upload_to_azurite(root, work)
        try:
            sql = bench_sql(root, args.repeat, work, azure[1] if azure else None, azure[2] if azure else {})
        finally:
            if azure:
                azure[0].terminate()
        neuron = bench_neuron(root, record_layers, args.sample, work)
        complete_bytes = warehouse_bytes(root, record_layers)
        json_complete = sum(neuron["json_sizes"].values()) * NEURONS * len(record_layers)
        small = neuron["json_sizes"]
        json_small = (small["related-neurons"] + small["token-lookups"] + small["token-weights"]) * args.layers * NEURONS
        small_bytes = warehouse_bytes(root, tables=("related_neurons", "token_lookups", "token_weights"))
        print(f"GPT-2 XL scale: {args.layers} layers x {NEURONS:,} neurons; activation records for layers "
              f"{record_layers[0]}-{record_layers[-1]}; {os.cpu_count()} cores; median of {args.repeat} runs")
        floor = sql["bare duckdb, one file"]
        print(f"\n{'top-explained (score >= 0.8, ' + format(sql['rows'], ',') + ' rows), whole process':<58}"
              f"{'seconds':>9}{'ratio':>8}")
        for name in commands_in(sql):
            print(f"  {name:<56}{sql[name]:>9.3f}{sql[name] / floor:>8.2f}")
        print(f"  nx sql / bare duckdb over one file: {sql['nx sql'] / floor:.2f}x (target <= 1.3x)")
        if "nx sql over az:// (Azurite)" in sql:
            print(f"  nx sql over az:// / bare duckdb over one local file: "
                  f"{sql['nx sql over az:// (Azurite)'] / floor:.2f}x (target <= 3x); the first query, "
                  f"which copies the files: {sql['nx sql over az:// (Azurite), first query: empty cache'] / floor:.2f}x")
        startup = sql["bare python -c 'import duckdb'"]
        print(f"  nx --help / python -c 'import duckdb': {sql['nx --help'] / startup:.2f}x (target <= 1.5x)")
        print(f"\n{'one neuron (' + str(args.sample) + ' random neurons)':<58}{'ms':>9}")
        print(f"  {'nx.neuron(l, n), median':<56}{neuron['median'] * 1000:>9.1f}")
        print(f"  {'nx.neuron(l, n), 90th percentile':<56}{neuron['p90'] * 1000:>9.1f}")
        print(f"  {'nx.neuron(l, n), first call in the process':<56}{neuron['first'] * 1000:>9.1f}")
        print(f"  {'json.load of its 5 JSON files, median':<56}{neuron['json'] * 1000:>9.1f}")
        print(f"  {'  + its {} related neurons explanation files (est.)'.format(neuron['related']):<56}"
              f"{(neuron['json'] + neuron['related'] * neuron['explanation_load']) * 1000:>9.1f}")
        print(f"  nx.neuron median: {neuron['median'] * 1000:.0f} ms (target < 50 ms)")
        print(f"\n{'size':<40}{'Parquet MB':>12}{'JSON MB':>12}{'ratio':>8}")
        print(f"  {'complete neurons (' + str(len(record_layers)) + ' layers, 5 kinds)':<38}"
              f"{complete_bytes / 1e6:>12,.0f}{json_complete / 1e6:>12,.0f}{complete_bytes / json_complete:>8.3f}")
        print(f"  {'related neurons + tokens, all ' + str(args.layers) + ' layers':<38}"
              f"{small_bytes / 1e6:>12,.0f}{json_small / 1e6:>12,.0f}{small_bytes / json_small:>8.3f}")
        print(f"  {'the whole synthetic warehouse':<38}{warehouse_bytes(root) / 1e6:>12,.0f}")
        print("  (JSON sizes: the mean of the sampled neurons' files as nx export writes them, times the neurons)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
