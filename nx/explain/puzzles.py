"""``nx.explain.puzzles.run``: the original's explanation puzzles, as a benchmark of models.

Each puzzle of the original package (``neuron_explainer/explanations/puzzles.json``: a true
explanation, sentences whose activations follow it, and false explanations) is explained by the
explainer model from its sentences, and the generated, the true and every false explanation are
simulated on those sentences and scored the paper's way (pooled ev-correlation, r-squared,
absolute deviation; raw 0-10 simulations). A good explainer's explanation scores about as well
as the true one; a good simulator scores the true one above the false ones. Rows go to the
``puzzle_results`` table (model ``puzzles``, one partition per run, replaced whole when a run is
made again); the report sums them up: how often the generated explanation scored at least as
well as the true one, the mean gap, and how often the true one beat every false one.
"""
from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass, field

from nx import settings
from nx.errors import ApiError, UsageError
from nx.progress import NullProgress, Progress

MODEL = "puzzles"


@dataclass
class PuzzleReport:
    run: str
    explainer_model: str
    simulator_model: str
    simulator: str
    puzzles: int = 0
    failed: int = 0                       # puzzles with a failed explanation or simulation
    compared: int = 0                     # puzzles where the generated and true ones both have a score
    generated_at_least_true: int = 0
    mean_gap: float | None = None         # mean of generated - true score over the compared ones
    true_beats_false: int = 0             # puzzles where the true one scored above every false one
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0
    seconds: float = 0.0
    stopped: str | None = None
    results: list[dict] = field(default_factory=list)   # per puzzle: name, generated, scores

    def asdict(self) -> dict:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        lines = [f"{'puzzle':<28} {'generated':>9} {'true':>6} {'best false':>10}  explanation"]
        for r in self.results:
            lines.append(f"{r['puzzle']:<28} {_shown(r['generated_score']):>9} {_shown(r['true_score']):>6} "
                         f"{_shown(r['best_false_score']):>10}  {r['explanation'] or r['error']}")
        gap = "n/a" if self.mean_gap is None else f"{self.mean_gap:+.3f}"
        lines += [f"puzzles {self.run}: {self.puzzles} puzzles, {self.failed} failed; generated >= true in "
                  f"{self.generated_at_least_true} of {self.compared} (mean gap {gap}); true above every false "
                  f"in {self.true_beats_false}",
                  f"explainer {self.explainer_model}, simulator {self.simulator} on {self.simulator_model}; "
                  f"{self.prompt_tokens + self.completion_tokens:,} tokens, {self.requests:,} requests, "
                  f"{self.seconds:.1f} s"]
        if self.stopped:
            lines.append(f"stopped early: {self.stopped}")
        return "\n".join(lines)


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def load_puzzles() -> dict:
    """The original's puzzles by name: {name: (explanation, [(tokens, activations)], [false ones])}."""
    try:
        from neuron_explainer.explanations.puzzles import PUZZLES_BY_NAME
    except ImportError as exc:
        from nx.explain.paper import INSTALL, PACKAGE

        raise UsageError(f"nx puzzles needs the original package {PACKAGE} ({exc}); install it with: "
                         f"{INSTALL}") from None
    return {name: (p.explanation, [(list(r.tokens), list(r.activations)) for r in p.activation_records],
                   list(p.false_explanations)) for name, p in PUZZLES_BY_NAME.items()}


def run(*, warehouse=None, run: str, explainer_model: str, simulator_model: str, simulator: str = "all-at-once",
        prompts: str = "nx", base_url: str | None = None, api_key: str | None = None, concurrency: int = 8,
        timeout: float = 60.0, max_retries: int = 5, puzzles: dict | None = None,
        progress: Progress = NullProgress()) -> PuzzleReport:
    """Run the puzzles (default: the original's) and write ``puzzle_results`` rows as ``run``."""
    from nx.explain import SIMULATORS, _check_scoring, _run_coroutine
    from nx.explain import prompts as nx_prompts
    from nx.explain import runs
    from nx.warehouse import Warehouse

    runs.check_run_name(run)
    if simulator not in SIMULATORS:
        raise UsageError(f"simulator {simulator!r}: choose one of {', '.join(SIMULATORS)}")
    _check_scoring(None, 1, ("simulation",), prompts, simulator, "token-activations")
    builder = nx_prompts
    if prompts == "paper":
        from nx.explain import paper

        builder = paper.load()
    chosen = puzzles if puzzles is not None else load_puzzles()
    store = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    store.check_writable()
    key = settings.resolve(settings.OPENAI_API_KEY, api_key)
    url = settings.resolve(settings.OPENAI_BASE_URL, base_url)
    if not key and not url:
        raise ApiError("OPENAI_API_KEY is not set (needed for OpenAI's API); set it, or give --base-url")
    report = PuzzleReport(run, explainer_model, simulator_model, simulator)
    clock = time.monotonic()
    rows: list[dict] = []
    _run_coroutine(_execute(chosen, rows, report, builder, explainer_model, simulator_model, simulator, url, key,
                            concurrency, timeout, max_retries, progress))
    _summarise(report, rows)
    finished = runs.now()
    for row in rows:
        row.update(explainer_model=explainer_model, simulator_model=simulator_model, simulator=simulator,
                   prompt_version=builder.version("token-activations", simulator), finished_at=finished)
    _write(store, run, rows)
    report.seconds = time.monotonic() - clock
    return report


async def _execute(chosen, rows, report, builder, explainer_model, simulator_model, simulator, url, key,
                   concurrency, timeout, max_retries, progress) -> None:
    from nx.explain.client import Client
    from nx.explain.probe import probe

    client = Client(base_url=url, api_key=key, timeout=timeout, max_retries=max_retries, concurrency=concurrency)
    try:
        await probe(client, explainer_model=explainer_model, simulator_model=simulator_model, simulator=simulator,
                    builder=builder)
        progress.start(len(chosen), "puzzles")

        async def one(name, puzzle):
            found = await _puzzle(client, builder, explainer_model, simulator_model, simulator, name, *puzzle)
            progress.advance(1, failed=int(any(r["status"] != "ok" for r in found)))
            return found

        for found in await asyncio.gather(*(one(name, puzzle) for name, puzzle in chosen.items())):
            rows.extend(found)
        progress.finish()
    finally:
        report.prompt_tokens, report.completion_tokens = client.usage.prompt_tokens, client.usage.completion_tokens
        report.requests = client.usage.requests
        await client.close()


async def _puzzle(client, builder, explainer_model, simulator_model, simulator, name, true, records, false) -> list[dict]:
    """The puzzle's rows: generated, true and each false explanation with their scores."""
    from nx.explain import explainer
    from nx.explain.client import RequestFailed

    def row(kind, index, text, scores=None, error=None) -> dict:
        return {"puzzle": name, "kind": kind, "false_index": index, "explanation": text,
                "score": scores.ev_correlation_score if scores else None,
                "rsquared_score": scores.rsquared_score if scores else None,
                "absolute_dev_explained_score": scores.absolute_dev_explained_score if scores else None,
                "sequence_count": len(records) if scores else 0,
                "status": "failed" if error else "ok", "error": error}

    try:
        generated = (await explainer.explain(client, explainer_model, "token-activations", records=records,
                                             builder=builder))[0]
    except RequestFailed as exc:
        generated, failure = None, exc.reason
    else:
        failure = None
    candidates = [("true", None, true)] + [("false", i, text) for i, text in enumerate(false)]
    found = [row("generated", None, None, error=failure)] if failure else []
    if generated is not None:
        candidates.insert(0, ("generated", None, generated))
    for kind, index, text in candidates:
        try:
            found.append(row(kind, index, text, await _score(client, builder, simulator_model, simulator, text, records)))
        except RequestFailed as exc:
            found.append(row(kind, index, text, error=exc.reason))
    return found


async def _score(client, builder, model, simulator, explanation, records):
    from nx.explain import simulators
    from nx.scoring import score

    simulations = await asyncio.gather(*(simulators.simulate(client, model, simulator, explanation, tokens, builder)
                                         for tokens, _ in records))
    return score([acts for _, acts in records], [s.expected for s in simulations])


def _summarise(report: PuzzleReport, rows: list[dict]) -> None:
    names = list(dict.fromkeys(r["puzzle"] for r in rows))
    gaps = []
    for name in names:
        mine = [r for r in rows if r["puzzle"] == name]
        by_kind = {r["kind"]: r for r in mine if r["kind"] != "false"}
        falses = [r["score"] for r in mine if r["kind"] == "false"]
        generated = by_kind.get("generated", {}).get("score")
        true = by_kind.get("true", {}).get("score")
        report.puzzles += 1
        report.failed += int(any(r["status"] != "ok" for r in mine))
        if generated is not None and true is not None:
            gaps.append(generated - true)
            report.generated_at_least_true += int(generated >= true)
        if true is not None and falses and all(f is None or true > f for f in falses):
            report.true_beats_false += 1
        report.results.append({
            "puzzle": name, "explanation": by_kind.get("generated", {}).get("explanation"),
            "error": next((r["error"] for r in mine if r["error"]), None),
            "generated_score": generated, "true_score": true,
            "best_false_score": max((f for f in falses if f is not None), default=None)})
    report.compared = len(gaps)
    report.mean_gap = sum(gaps) / len(gaps) if gaps else None


def _write(store, run: str, rows: list[dict]) -> None:
    import pyarrow as pa

    from nx.schema import TABLES
    from nx.warehouse import Replace

    partition = {"model": MODEL, "run": run}
    data = pa.Table.from_pylist(rows, schema=TABLES["puzzle_results"].columns)
    files = store.write_files("puzzle_results", partition, data)
    store.commit("puzzle_results", files, [Replace(partition, None)], "puzzles", {"run": run})
