"""nx sql -o: a directory given as the output file is a usage error in one line (it was an
IsADirectoryError traceback), and nothing is left in it."""
from __future__ import annotations

import os

from query_fixtures import cli, warehouse  # noqa: F401  (fixtures)


def test_output_to_a_directory_is_a_usage_error(cli, warehouse, tmp_path):
    result = cli("sql", "select 1 as a", "-w", warehouse, "-o", tmp_path)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"nx: error: cannot write {tmp_path}: it is a directory; give a file name for -o\n"
    assert os.listdir(tmp_path) == []
