"""The README's quickstart works on a fresh machine: its first command, read from the README (so
the two cannot drift), run in a fresh clone with the system's python3 and a stripped environment
(PATH=/usr/bin:/bin, an empty HOME, no virtual environment), installs nx into the clone's own
.venv and prints the best-explained sample neurons; `nx --version` then works the ways the README
says; without a C compiler it still works and says so in one line. Installs from the package
index, so it takes a minute or more: `-m "not quickstart"` leaves it out."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import nx

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_PYTHON = Path("/usr/bin/python3")
INSTALL_TIMEOUT = 900  # seconds: the first run downloads and installs every dependency
SCAN_NOTE = "ingest uses its Python twins"

pytestmark = [
    pytest.mark.quickstart,
    pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason="no system python3 at /usr/bin/python3"),
]


def quickstart_section() -> str:
    return (ROOT / "README.md").read_text().split("## Quickstart")[1].split("\n## ")[0]


def quickstart_command() -> str:
    return re.findall(r"```console\n(.*?)```", quickstart_section(), flags=re.S)[0].strip()


def stripped_environment(home: Path, **extra: str) -> dict[str, str]:
    """A new user's shell: system PATH and an empty HOME. This machine's way to the package index
    is kept (PIP_* and proxy variables, and pip's user configuration, which lives in the HOME we
    replace), else the install could not reach it."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), **extra}
    for name, value in os.environ.items():
        if name.startswith("PIP_") or name.lower() in ("http_proxy", "https_proxy", "no_proxy"):
            env[name] = value
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    for user_config in (config_home / "pip" / "pip.conf", Path.home() / ".pip" / "pip.conf"):
        if "PIP_CONFIG_FILE" not in env and user_config.is_file():
            env["PIP_CONFIG_FILE"] = str(user_config)
    return env


def run_in(clone: Path, command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=clone, env=env, capture_output=True,
                          text=True, timeout=INSTALL_TIMEOUT)


def c_files_compiled(clone: Path, env: dict[str, str]) -> bool:
    modules = "nx.ingest._record_scan, nx.ingest._token_scan, nx._sequence_digests"
    return run_in(clone, f".venv/bin/python -c 'import {modules}'", env).returncode == 0


def compiler_at_hand() -> bool:
    include = subprocess.run([SYSTEM_PYTHON, "-c", "import sysconfig; print(sysconfig.get_paths()['include'])"],
                             capture_output=True, text=True).stdout.strip()
    return Path("/usr/bin/cc").exists() and (Path(include) / "Python.h").exists()


def assert_prints_top_explained(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any("explanation" in line and "score" in line for line in lines), result.stdout
    assert "references to dog and cat" in result.stdout


@pytest.fixture(scope="module")
def quickstarted(tmp_path_factory):
    """A fresh clone of the committed HEAD where the quickstart's first command has run once."""
    clone = tmp_path_factory.mktemp("quickstart") / "nx"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    env = stripped_environment(tmp_path_factory.mktemp("home"))
    result = run_in(clone, quickstart_command(), env)
    return {"clone": clone, "env": env, "result": result}


def test_quickstart_command_prints_the_best_explained_sample_neurons(quickstarted):
    assert_prints_top_explained(quickstarted["result"])
    assert (quickstarted["clone"] / "sample-warehouse").is_dir()


def test_quickstart_builds_the_c_files_where_a_compiler_is_at_hand(quickstarted):
    compiled = c_files_compiled(quickstarted["clone"], quickstarted["env"])
    assert (SCAN_NOTE in quickstarted["result"].stderr) == (not compiled)
    if compiler_at_hand():
        assert compiled, quickstarted["result"].stderr


@pytest.mark.parametrize("readme_words, command", [
    ("source .venv/bin/activate", "source .venv/bin/activate && nx --version"),
    (".venv/bin/nx", ".venv/bin/nx --version"),
])
def test_nx_runs_again_in_a_new_shell_as_the_readme_says(quickstarted, readme_words, command):
    assert f"`{readme_words}`" in quickstart_section()
    result = run_in(quickstarted["clone"], command, quickstarted["env"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == nx.__version__


def test_without_a_c_compiler_the_quickstart_works_and_says_so_in_one_line(quickstarted, tmp_path):
    clone = quickstarted["clone"]
    for built in [*(clone / "nx" / "ingest").glob("_*.so"), *(clone / "nx").glob("_*.so")]:
        built.unlink()
    shutil.rmtree(clone / "build", ignore_errors=True)
    env = stripped_environment(tmp_path, CC="/bin/false")
    result = run_in(clone, quickstart_command(), env)
    assert_prints_top_explained(result)
    assert [line for line in result.stderr.splitlines() if SCAN_NOTE in line] == [
        "no C compiler (or no Python headers): ingest uses its Python twins (the same rows; a slower ingest of "
        "activation records)"]
    assert "error:" not in result.stderr and "/bin/false" not in result.stderr, result.stderr
    assert not c_files_compiled(clone, env)
