"""What a user can get wrong on the command line ends in one stderr line and a documented exit
code (0 ok, 1 failed, 2 usage, 3 unreachable, 130 interrupted), never a traceback."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from nx.cli import app

INTERRUPTED = "nx: error: interrupted; nothing half-written was left: run the same command again to finish\n"
# Minutes of work each, so only an interrupt ends them within the test's time. DuckDB stops the
# first when Python sees the signal (and raises its own error); the second it does not stop.
SLOW = {"DuckDB stops": "select sum(a.range * b.range) from range(100000) a, range(100000) b",
        "DuckDB runs on": "select sum(a.range * b.range) from range(1000000) a, range(100000) b"}


@pytest.fixture
def warehouse(ingested) -> str:
    return ingested["warehouse"]


def nx(*args) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


def _started_a_thread(pid: int, seconds: float = 30.0) -> None:
    """Wait until ``pid`` has more than one thread: DuckDB's, so the command is past parsing."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii") as status:
                threads = next(int(line.split()[1]) for line in status if line.startswith("Threads:"))
        except (OSError, StopIteration):
            time.sleep(1.0)  # no /proc: give the command a second to start
            return
        if threads > 1:
            return
        time.sleep(0.05)


@pytest.mark.parametrize("query", SLOW)
def test_ctrl_c_during_nx_sql_exits_130_with_one_line(warehouse, query):
    # The child's SIGINT is Python's default even when the tests run where SIGINT is ignored (a
    # background job): an ignored SIGINT is inherited, and Python then leaves it ignored.
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "nx", "sql", SLOW[query], "-w", warehouse],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _started_a_thread(process.pid)
        time.sleep(1.0)  # the query is running by now
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert (process.returncode, stdout, stderr) == (130, "", INTERRUPTED)
    assert time.monotonic() - started < 60


@pytest.mark.parametrize("where", ["file", "below a file"])
def test_export_to_a_file_exits_2_before_writing(warehouse, tmp_path, where):
    blocker = tmp_path / "blocker"
    blocker.write_text("mine\n")
    to = blocker if where == "file" else blocker / "sub" / "dir"
    result = nx("export", "explanations", "--to", to, "-w", warehouse, "-q")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"nx: error: {to}: export writes to a directory, but {blocker} is a file\n"
    assert os.listdir(tmp_path) == ["blocker"] and blocker.read_text() == "mine\n"


@pytest.mark.parametrize("args", [
    ["sql", "select 1", "--max-rows", "-1"],
    ["query", "top-explained", "--max-rows", "-1"],
    ["show", "0", "0", "--records", "-1"],
])
def test_negative_counts_are_usage_errors(warehouse, args):
    result = nx(*args, "-w", warehouse)
    assert result.exit_code == 2 and result.stdout == ""
    assert "Traceback" not in result.stderr and "greater than or equal to 0" in result.stderr


def test_help_after_a_query_name_prints_that_querys_help(warehouse):
    result = nx("query", "top-explained", "--help", "-w", warehouse)
    assert result.exit_code == 0 and result.stdout.startswith("Usage: nx query top-explained ")
    text = " ".join(result.stdout.split())
    assert "Explanations scoring at least min_score" in text and "--min-score NUMBER (default 0.8)" in text
    assert "--limit INTEGER (default null)" in text and "--format FORMAT" in text  # then nx query's options
    general = nx("query", "--help")
    assert general.exit_code == 0 and "cannot replace" in " ".join(general.stdout.split())
    unknown = nx("query", "no-such-query", "--help", "-w", warehouse)
    assert (unknown.exit_code, unknown.stdout) == (2, "") and "no named query 'no-such-query'" in unknown.stderr
