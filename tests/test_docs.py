"""The README is a contract: its console examples run and print what it says, its Python
example prints its output block, its tables section is generated from nx/schema, and every
command is documented and has help."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
NX = str(Path(sys.executable).parent / "nx")
TIMING = re.compile(r"[\d.,]+ s\b|[\d,]+ files/s")

sys.path.insert(0, str(ROOT / "scripts"))


def fenced_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def console_examples() -> list[tuple[str, str]]:
    examples = []
    for block in fenced_blocks("console"):
        command, output = None, []
        for line in block.splitlines():
            if line.startswith("$ "):
                if command:
                    examples.append((command, "\n".join(output)))
                command, output = line[2:], []
            elif command:
                output.append(line)
        if command:
            examples.append((command, "\n".join(output)))
    return examples


def normalised(text: str) -> str:
    return "\n".join(TIMING.sub("<time>", line).rstrip() for line in text.strip().splitlines())


@pytest.fixture(scope="module")
def readme_directory(tmp_path_factory):
    """A directory like the repository's top, where the README's commands are typed."""
    directory = tmp_path_factory.mktemp("readme")
    (directory / "nx").symlink_to(ROOT / "nx")  # the package, as in a checkout
    return directory


def test_readme_console_examples_print_what_the_readme_shows(readme_directory):
    examples = console_examples()
    assert examples[0][0].startswith("nx ingest --all --source nx/sample")
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    for command, expected in examples:
        assert command.startswith("nx ")
        result = subprocess.run([NX, *shlex_split(command[3:])], cwd=readme_directory, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, (command, result.stderr)
        assert normalised(result.stdout) == normalised(expected), command


def shlex_split(text: str) -> list[str]:
    import shlex

    return shlex.split(text)


def test_readme_python_example_prints_its_output(readme_directory):
    code, output = fenced_blocks("python")[0], fenced_blocks("text")[0]
    if not (readme_directory / "sample-warehouse").exists():
        subprocess.run([NX, "ingest", "--all", "--source", "nx/sample", "-w", "sample-warehouse", "-q"],
                       cwd=readme_directory, check=True, capture_output=True)
    result = subprocess.run([sys.executable, "-c", code], cwd=readme_directory, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "POLARS_FMT_STR_LEN": "40"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == output.strip()


def test_readme_tables_section_is_generated_from_the_schema():
    from table_docs import table_docs

    section = README.split("<!-- tables -->")[1].split("<!-- /tables -->")[0]
    assert section.strip() == table_docs().strip()


def test_every_command_is_documented_and_has_help():
    from click.testing import CliRunner

    from nx.cli import app

    runner = CliRunner()
    commands = list(app.commands)
    assert {"ingest", "sql", "query", "show", "export", "explain"} <= set(commands)
    for name in commands:
        assert f"nx {name}" in README, name
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0 and "Usage: nx " + name in result.output


def test_quickstart_is_two_commands():
    quickstart = README.split("## Quickstart")[1].split("\n## ")[0]
    commands = [b.strip() for b in re.findall(r"```console\n(.*?)```", quickstart, flags=re.S)]
    assert commands == [
        "bash scripts/quickstart",
        "bash .ci/run",
    ]


def test_sample_is_marked_synthetic():
    assert "SYNTHETIC" in (ROOT / "nx" / "sample" / "SYNTHETIC.txt").read_text()
    assert shutil.which(NX) or Path(NX).exists()
