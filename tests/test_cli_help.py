"""The command line's help: every value is named by what it is (SQL, LAYERS, PATH), never by
a Python type (<str>, <list[str]>) or a parameter's name in braces ({statement})."""
from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from nx.cli import app

READABLE = re.compile(r"\[?[A-Z][A-Z0-9_|.-]*\]?(\.\.\.)?|\[?true\|false\]?")


@pytest.mark.parametrize("name", list(app.commands))
def test_every_metavar_is_a_readable_word(name):
    command = app.commands[name]
    context = click.Context(command, info_name=name, parent=click.Context(app, info_name="nx"))
    for param in command.params:
        if isinstance(param, click.Option) and param.is_flag:
            continue
        assert READABLE.fullmatch(param.make_metavar(context)), (name, param.name, param.make_metavar(context))
    text = CliRunner().invoke(app, [name, "--help"]).stdout
    assert text.startswith(f"Usage: nx {name} ")
    assert not re.search(r"<(str|int|float|bool|list\[|int range)|\{[a-z_]+\}", text), text
