"""The README's "A researcher's first hour" works for a newcomer who knows only the README: its
blocks marked `workflow`, read from the README (so the two cannot drift), run in order and as
written in an empty directory laid out like the clone's top (`nx/sample` reachable), with an
environment holding only what that section gives: the activated `.venv` on PATH, a new HOME, no
NX_* variables, a terminal 100 columns wide, and OPENAI_API_KEY / OPENAI_BASE_URL for the
`nx explain` step, which reaches tests/fake_openai.py (serving the models the README names) as
a researcher reaches their own server. Each command exits 0 and prints what the README shows
(stdout and stderr, as a terminal does; timings and the viewer's port normalised; a shown output
ending in `…` is the start of the output), the polars script prints its output block, the card
names the neuron's best explanation, the second question is answered once the token-lookup run
exists, and the viewer, started as the README says, shows real content on every page the README
names, in headless Chromium, without a console error."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from chromium import launched_chromium
from fake_openai import MODELS, FakeOpenAI

ROOT = Path(__file__).resolve().parent.parent
SECTION = (ROOT / "README.md").read_text().split("## A researcher's first hour\n")[1].split("\n## ")[0]
BIN = Path(sys.executable).parent  # the .venv's bin: what `source .venv/bin/activate` puts on PATH
TIMING = re.compile(r"[\d.,]+ s\b|[\d,]+ files/s")
ADDRESS = re.compile(r"http://127\.0\.0\.1:\d+/")
MORE = "…"  # a shown output ending in this line is the start of the output
TERMINAL_COLUMNS = "100"
STEP_TIMEOUT = 120  # seconds; a hung step fails instead of hanging the suite


@dataclass
class Step:
    kind: str        # "console" (one command) or "python" (a script pasted into python)
    code: str
    shown: str       # the output the README shows ("" when it shows none)


@dataclass
class Outcome:
    step: Step
    returncode: int
    output: str      # stdout and stderr together, as on a terminal


@dataclass
class Walk:
    directory: Path
    env: dict[str, str]
    outcomes: list[Outcome] = field(default_factory=list)


def workflow_steps() -> list[Step]:
    """The section's `workflow` fences in order: each `$ ` line of a console block with the lines
    below it, and each python block with the text block after it."""
    steps: list[Step] = []
    for kind, body in re.findall(r"```(\w+) workflow\n(.*?)```", SECTION, flags=re.S):
        if kind == "console":
            for chunk in re.split(r"^\$ ", body, flags=re.M)[1:]:
                command, _, shown = chunk.partition("\n")
                steps.append(Step("console", command, shown))
        elif kind == "python":
            steps.append(Step("python", body, ""))
        elif kind == "text":
            assert steps and steps[-1].kind == "python" and not steps[-1].shown, "a text block follows a python one"
            steps[-1].shown = body
        else:
            raise AssertionError(f"unknown workflow block: {kind}")
    return steps


STEPS = workflow_steps()
SERVE = STEPS[-1]


def normalised(text: str) -> list[str]:
    return [ADDRESS.sub("http://127.0.0.1:PORT/", TIMING.sub("<time>", line)).rstrip()
            for line in text.strip("\n").splitlines()]


def matches(output: str, shown: str) -> bool:
    expected, got = normalised(shown), normalised(output)
    if expected and expected[-1] == MORE:
        return got[:len(expected) - 1] == expected[:-1]
    return got == expected


def named_models() -> set[str]:
    return {model for step in STEPS if step.kind == "console"
            for model in re.findall(r"--(?:explainer|simulator)-model (\S+)", step.code)}


def run_step(step: Step, walk: Walk) -> Outcome:
    if step.kind == "console":
        argv, stdin = ["bash", "-c", step.code], None
    else:
        argv, stdin = ["bash", "-c", "python -"], step.code
    result = subprocess.run(argv, cwd=walk.directory, env=walk.env, input=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=STEP_TIMEOUT)
    return Outcome(step, result.returncode, result.stdout)


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    """Every step before the viewer's, run in order in a fresh directory."""
    directory = tmp_path_factory.mktemp("researcher")
    (directory / "nx").symlink_to(ROOT / "nx")  # the package, where a clone has it: --source nx/sample
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch, FakeOpenAI() as fake:
        for model in named_models():  # the stand-in for OpenAI serves the models the README names
            patch.setitem(MODELS, model, MODELS["fake-chat"])
        env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(home), "COLUMNS": TERMINAL_COLUMNS,
               "OPENAI_API_KEY": "sk-not-a-real-key", "OPENAI_BASE_URL": fake.url}
        walked = Walk(directory, env)
        for step in STEPS[:-1]:
            walked.outcomes.append(run_step(step, walked))
        yield walked


def test_the_workflow_needs_only_what_the_readme_says():
    for words in ("source .venv/bin/activate", "`HOME`", "`NX_*`", f"{TERMINAL_COLUMNS} columns",
                  "`OPENAI_API_KEY`", "`OPENAI_BASE_URL`", "`--port 0`"):
        assert words in SECTION, words
    commands = [step.code for step in STEPS if step.kind == "console"]
    assert commands[0] == "nx ingest --all --source nx/sample -w sample-warehouse"
    assert commands[0] in (ROOT / "scripts" / "quickstart").read_text()  # the quickstart's own ingest
    assert all(re.match(r"nx |python ", c) for c in commands), commands
    assert SERVE.code.startswith("nx serve ") and "--port 0" in SERVE.code  # the viewer comes last
    assert {"monosemantic", "activations-not-tokens"} <= {w for c in commands for w in c.split()}
    assert any(step.kind == "python" and "nx.scan(" in step.code and 'format="polars"' in step.code
               for step in STEPS)
    assert any(c.startswith("nx show ") for c in commands)


def test_each_step_exits_0_and_prints_what_the_readme_shows(walk):
    assert len(walk.outcomes) == len(STEPS) - 1
    for outcome in walk.outcomes:
        step = outcome.step
        assert outcome.returncode == 0, (step.code, outcome.output)
        if step.shown.strip():
            assert matches(outcome.output, step.shown), (step.code, outcome.output)
    assert "nx: error:" not in "".join(o.output for o in walk.outcomes if not o.step.shown.strip())


def test_the_card_names_the_neurons_best_explanation(walk):
    import nx

    shows = [o for o in walk.outcomes if o.step.code.startswith("nx show ")]
    assert shows
    for outcome in shows:
        layer, neuron = (int(word) for word in outcome.step.code.split()[2:4])
        best = nx.neuron(layer, neuron, warehouse=str(walk.directory / "sample-warehouse")).best_explanation
        assert best["explanation"] in outcome.output


def test_the_second_question_is_answered_once_there_is_a_token_lookup_run(walk):
    answers = [o for o in walk.outcomes if "activations-not-tokens" in o.step.code]
    before, after = answers[0], answers[-1]
    assert "make some with nx explain --explainer token-lookup" in before.output
    assert after.output.split()[:5] == ["layer", "neuron", "activations_score", "tokens_score", "gap"]
    assert int(re.search(r"^(\d+) rows?\b", after.output, flags=re.M).group(1)) > 0


# -- the viewer ---------------------------------------------------------------------------------

def readme_pages() -> list[str]:
    """The paths listed after the viewer's block: `- `/path` — what it shows`."""
    after = SECTION.split("$ " + SERVE.code)[1]
    return re.findall(r"^- `(/[^`]*)`", after, flags=re.M)


def check_home(page) -> None:
    page.wait_for_selector("#layer-plot .main-svg")  # the scores-by-layer picture was drawn
    assert page.locator("#top-explained a.nlink").count() > 0
    assert page.locator("#runs tbody tr").count() >= 2  # public and the README's token-lookup run


def check_neuron(page, walk: Walk, layer: int, neuron: int) -> None:
    import nx

    best = nx.neuron(layer, neuron, warehouse=str(walk.directory / "sample-warehouse")).best_explanation
    assert page.locator("#best-explanation").inner_text() == best["explanation"]
    assert page.locator("#explanations .explanation").count() >= 2
    assert page.locator("#top-records .record").count() > 0
    assert page.locator("#related a.nlink").count() > 0


def check_search(page, text: str) -> None:
    rows = page.locator("#results tbody tr")
    assert rows.count() > 0 and page.locator("#results td.empty").count() == 0
    assert all(text.lower() in row.lower() for row in rows.all_inner_texts())


def check_compare(page) -> None:
    page.wait_for_selector("#compare-plot .main-svg")
    assert page.locator("#compare-plot .scatterlayer .point").count() > 0
    assert page.locator("#disagreements a.nlink").count() > 0


def check_sql(page) -> None:
    assert page.locator("#results tbody tr").count() > 0
    assert page.locator(".card.error").count() == 0


def check_page(page, path: str, walk: Walk) -> None:
    from urllib.parse import parse_qs, urlsplit

    address = urlsplit(path)
    if address.path == "/":
        check_home(page)
    elif found := re.fullmatch(r"/neuron/(\d+)/(\d+)", address.path):
        check_neuron(page, walk, int(found.group(1)), int(found.group(2)))
    elif address.path == "/search":
        check_search(page, parse_qs(address.query)["q"][0])
    elif address.path == "/compare":
        check_compare(page)
    elif address.path == "/sql":
        check_sql(page)
    else:
        raise AssertionError(f"the README names {path}: say here what it must show")


@pytest.fixture(scope="module")
def browser():
    with launched_chromium() as launched:
        yield launched


@pytest.fixture
def viewer(walk):
    """The viewer started as the README's block says, and its address read from what it prints."""
    if any(o.returncode != 0 for o in walk.outcomes):
        pytest.fail("an earlier step of the workflow failed")
    server = subprocess.Popen(["bash", "-c", "exec " + SERVE.code], cwd=walk.directory, env=walk.env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    watchdog = threading.Timer(STEP_TIMEOUT, server.kill)  # a server that never prints fails the test
    watchdog.start()
    try:
        first = server.stdout.readline()
        watchdog.cancel()
        assert matches(first, SERVE.shown), first
        yield ADDRESS.search(first).group(0).rstrip("/")
    finally:
        watchdog.cancel()
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGINT)  # Ctrl-C, as the README says
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


@pytest.mark.browser
def test_the_viewer_shows_every_page_the_readme_names(walk, browser, viewer):
    paths = readme_pages()
    assert {"/", "/search", "/sql"} <= {p.split("?")[0] for p in paths}
    assert any(p.startswith("/neuron/") for p in paths)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        for path in paths:
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda message: message.type == "error" and errors.append(message.text))
            page.on("pageerror", lambda error: errors.append(str(error)))
            answer = page.goto(viewer + path)
            assert answer.status == 200, (path, page.content()[:2000])
            check_page(page, path, walk)
            assert not errors, (path, errors)
            page.close()
    finally:
        context.close()
