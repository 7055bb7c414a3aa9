"""Named queries: ``.sql`` files with a header naming their parameters, found and bound here.

A file looks like::

    -- name: top-explained
    -- description: Public explanations scoring at least min_score, best first.
    -- param: min_score float 0.8 "lowest score shown"
    -- param: layer int null "only this layer (null: all)"
    -- param: text str required "what to look for"
    select ... where score >= $min_score ...

``param`` lines give name, type (str, int, float, bool, or the values a str may take:
``substring|word|regex``), default (``null`` for none, ``required`` when the caller must give
it) and a help text. Values are bound as DuckDB ``$name`` parameters, never formatted into the
SQL. The name defaults to the file's stem. Every nx connection also has the macro
``text_matches(text, pattern, how)`` (``views.py``), so a query can match text the way ``search``
does.

Queries are looked up in nx's own ``nx/queries/sql/``, then ``<warehouse>/_queries/``, then the
directory in ``NX_QUERIES``. Users add queries; they cannot replace a built-in one: the viewer
and other tools rely on the built-ins' columns, and a warehouse someone else wrote must not be
able to change what ``top-explained`` answers. Among user files, ``NX_QUERIES`` replaces the
warehouse's of the same name. A user file that cannot be used (a built-in's name, not UTF-8, a
directory, a bad header) is skipped with a ``QueryFileWarning`` naming it and why, so one bad
file never disables the others; ``nx`` prints these as one line on stderr.
"""
from __future__ import annotations

import os
import re
import shlex
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import resources

from nx.errors import UsageError
from nx.queries.location import Root, locate
from nx.queries.render import Rows
from nx.settings import QUERIES as QUERIES_DIR, resolve

WAREHOUSE_QUERIES = "_queries"
# Options of nx query and nx.query's own arguments (--help too: click would take it).
RESERVED = ("name", "warehouse", "arrow", "format", "output", "list", "max_rows", "help")
TYPES = {"str": str, "int": int, "float": float, "bool": bool}
METAVARS = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "bool": "true|false"}  # what --help shows
_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")
_INT64 = (-2**63, 2**63 - 1)  # what DuckDB binds a Python int as; larger fails deep in the query
# Names a command line and a viewer URL (/queries/NAME) can carry: no leading dash, no spaces or slashes.
_NAME = re.compile(r"\w[\w.-]*")


class QueryFileWarning(UserWarning):
    """A user's named-query file was skipped; the message names the file and says why."""


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: object
    required: bool
    help: str
    choices: tuple[str, ...] = ()  # a str parameter that takes only these values

    def describe(self) -> str:
        option = f"--{self.name.replace('_', '-')} {'|'.join(self.choices) or METAVARS[self.type]}"
        if self.required:
            return f"{option} (required)"
        return f"{option} (default {'null' if self.default is None else self.default})"


@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    params: tuple[Param, ...]
    sql: str
    origin: str
    builtin: bool = False

    def bind(self, given: dict[str, object]) -> dict[str, object]:
        """Parameter values for DuckDB: given ones converted to their types, defaults for the rest."""
        known = {p.name: p for p in self.params}
        unknown = [name for name in given if name.replace("-", "_") not in known]
        if unknown:
            raise UsageError(f"query {self.name!r} has no parameter {unknown[0]!r}; parameters: {self.signature()}")
        values = {name.replace("-", "_"): value for name, value in given.items()}
        bound = {}
        for param in self.params:
            if param.name in values:
                bound[param.name] = convert(values[param.name], param, self.name)
            elif param.required:
                raise UsageError(f"query {self.name!r} needs --{param.name.replace('_', '-')}; "
                                 f"parameters: {self.signature()}")
            else:
                bound[param.name] = param.default
        # DuckDB refuses values for parameters the SQL does not use.
        return {name: value for name, value in bound.items() if re.search(rf"\${name}\b", self.sql)}

    def signature(self) -> str:
        return ", ".join(p.describe() for p in self.params) or "none"

    def stopped_at_default_limit(self, given: dict[str, object], count: int) -> int | None:
        """The default ``limit`` when ``count`` rows reached it and the caller gave none: more rows
        may match, which a reader must be told (None otherwise)."""
        limit = next((p for p in self.params if p.name == "limit"), None)
        if limit is None or limit.default is None or {n.replace("-", "_") for n in given} & {"limit"}:
            return None
        return limit.default if count == limit.default else None


_RAISED = "Invalid Input Error: "  # how DuckDB words what SQL's error('...') raises


def stopped_with(error: Exception) -> str | None:
    """The sentence of a query that stops with SQL's ``error('...')`` (activations-not-tokens
    without a token-lookup run says how to make one), without DuckDB's label; None for any
    other error."""
    text = str(error)
    return text[len(_RAISED):] if text.startswith(_RAISED) else None


def convert(value: object, param: Param, query: str) -> object:
    if param.choices and value is not None and value not in param.choices and not (
            value == "null" and not param.required):
        raise UsageError(f"query {query!r}: --{param.name.replace('_', '-')} must be one of "
                         f"{', '.join(param.choices)}, not {value!r}")
    if value is None or not isinstance(value, str):
        return value
    if value.lower() == "null" and not param.required:
        return None
    try:
        if param.type == "bool":
            if value.lower() not in _TRUE + _FALSE:
                raise ValueError(value)
            return value.lower() in _TRUE
        converted = TYPES[param.type](value)
        if param.type == "int" and not _INT64[0] <= converted <= _INT64[1]:
            raise UsageError(f"query {query!r}: --{param.name.replace('_', '-')} must be int from {_INT64[0]} "
                             f"to {_INT64[1]}, not {value!r}")
        return converted
    except ValueError:
        raise UsageError(f"query {query!r}: --{param.name.replace('_', '-')} must be {param.type}, "
                         f"not {value!r}") from None


def parse(text: str, stem: str, origin: str) -> NamedQuery:
    """A NamedQuery from a file's text; UsageError naming the file for a bad header."""
    fields: dict[str, str] = {}
    params: list[Param] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("--"):
            break
        key, sep, value = stripped[2:].strip().partition(":")
        key, value = key.strip().lower(), value.strip()
        if not sep or key not in ("name", "description", "param"):
            continue
        if key == "param":
            params.append(_parse_param(value, origin))
        else:
            fields[key] = value
    name = fields.get("name") or stem
    if not _NAME.fullmatch(name):
        raise UsageError(f"{origin}: bad query name {name!r}: use letters, digits, '_', '.' and '-', "
                         "starting with a letter, digit or '_'")
    seen = [param.name for param in params]
    twice = next((n for n in seen if seen.count(n) > 1), None)
    if twice:
        raise UsageError(f"{origin}: parameter {twice!r} is declared twice")
    return NamedQuery(name, fields.get("description", ""), tuple(params), text, origin)


def _parse_param(value: str, origin: str) -> Param:
    try:
        parts = shlex.split(value)
    except ValueError as exc:
        raise UsageError(f"{origin}: bad param line {value!r}: {exc}") from None
    choices = tuple(parts[1].split("|")) if len(parts) > 1 and "|" in parts[1] else ()
    if len(parts) < 2 or (parts[1] not in TYPES and not (choices and all(choices))) or not parts[0].isidentifier():
        raise UsageError(f"{origin}: bad param line {value!r}: write 'param: NAME TYPE DEFAULT \"help\"' "
                         f"with TYPE one of {', '.join(TYPES)}, or the values it takes: one|two|three")
    name, kind = parts[0], "str" if choices else parts[1]
    if name in RESERVED:
        raise UsageError(f"{origin}: a parameter cannot be called {name!r} (reserved: {', '.join(RESERVED)})")
    default_text = parts[2] if len(parts) > 2 else "required"
    required = default_text == "required"
    shell = Param(name, kind, None, required, " ".join(parts[3:]), choices)
    try:
        default = None if required else convert(default_text, shell, origin)
    except UsageError:
        raise UsageError(f"{origin}: bad param line {value!r}: the default is not {parts[1]}") from None
    return Param(name, kind, default, required, shell.help, choices)


def _builtin() -> list[NamedQuery]:
    folder = resources.files("nx.queries") / "sql"
    return [replace(parse(entry.read_text(encoding="utf-8"), entry.name[:-4], f"nx:{entry.name}"), builtin=True)
            for entry in sorted(folder.iterdir(), key=lambda e: e.name) if entry.name.endswith(".sql")]


def _user_query(read: Callable[[str], bytes], path: str, origin: str) -> NamedQuery | None:
    """The query in one user file, or None after a QueryFileWarning saying why it was skipped."""
    try:
        return parse(read(path).decode("utf-8"), os.path.basename(path)[:-4], origin)
    except IsADirectoryError:
        why = "it is a directory, not a file"
    except OSError as exc:
        why = f"it cannot be read ({exc.strerror or exc})"
    except UnicodeDecodeError as exc:
        why = f"it is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
    except UsageError as exc:
        why = str(exc).removeprefix(f"{origin}: ")
    _skip(origin, why)
    return None


def _skip(origin: str, why: str) -> None:
    warnings.warn(f"{origin}: skipped: {why}", QueryFileWarning, stacklevel=2)


def _from_warehouse(root: Root) -> list[NamedQuery]:
    found = [_user_query(root.read_bytes, path, root.url_of(path))
             for path in root.glob(root.join(WAREHOUSE_QUERIES, "*.sql"))]
    return [query for query in found if query is not None]


def _from_directory(directory: str | None) -> list[NamedQuery]:
    if not directory:
        return []
    try:
        names = sorted(name for name in os.listdir(directory) if name.endswith(".sql"))
    except OSError as exc:
        _skip(f"{QUERIES_DIR.env}={directory}", f"not a directory nx can list ({exc.strerror or exc})")
        return []
    found = [_user_query(_read_file, os.path.join(directory, name), os.path.join(directory, name))
             for name in names]
    return [query for query in found if query is not None]


def _read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def params_from_args(args: list[str]) -> dict[str, str]:
    """``--min-score 0.9 --layer=3`` -> {"min_score": "0.9", "layer": "3"} (values stay strings)."""
    params: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise UsageError(f"unexpected argument {arg!r}: give parameters as --NAME VALUE")
        key, sep, value = arg[2:].partition("=")
        if not sep:
            if i + 1 >= len(args):
                raise UsageError(f"--{key} needs a value")
            value = args[i + 1]
            i += 1
        params[key.replace("-", "_")] = value
        i += 1
    return params


def listing(queries: dict[str, NamedQuery]) -> Rows:
    """The named queries as rows: name, parameters, description, origin ("built-in" or the user's file)."""
    return Rows(["name", "parameters", "description", "origin"], ["VARCHAR"] * 4,
                [(q.name, q.signature(), q.description, "built-in" if q.builtin else q.origin)
                 for q in queries.values()])


def _param_line(indent: str, param: Param) -> str:
    """A parameter and its help, the help in a column (on a line of its own after a long option)."""
    option = param.describe()
    if len(option) > 40 and param.help:
        return f"{indent}{option}\n{indent}{'':<40} {param.help}"
    return f"{indent}{option:<40} {param.help}".rstrip()


def describe(queries: dict[str, NamedQuery]) -> str:
    """The named queries as text for a terminal: name and description, then one line per parameter."""
    lines = []
    for query in queries.values():
        origin = "" if query.builtin else f"  (user query from {query.origin})"
        lines.append(f"{query.name}{origin}")
        if query.description:
            lines.append(f"    {query.description}")
        for param in query.params:
            lines.append(_param_line("      ", param))
        lines.append("")
    return "\n".join(lines)


def usage(queries: dict[str, NamedQuery], name: str, command_help: str) -> str:
    """``nx query NAME --help``: the query's description and parameters, then the options of
    ``nx query`` itself (the ``Options:`` part of ``command_help``)."""
    if name not in queries:
        raise UsageError(f"no named query {name!r}; queries: {', '.join(queries)} (see nx query --list)")
    query = queries[name]
    lines = [f"Usage: nx query {name} [--PARAM VALUE]... [OPTIONS]", ""]
    if query.description:
        lines += [f"  {query.description}", ""]
    if not query.builtin:
        lines += [f"  A user query, from {query.origin}.", ""]
    lines.append("Parameters:" if query.params else "Parameters: none")
    lines += [_param_line("  ", param) for param in query.params]
    options = command_help[command_help.find("Options:"):] if "Options:" in command_help else ""
    return "\n".join(lines) + ("\n\n" + options if options else "")


def named_queries(root: Root | None) -> dict[str, NamedQuery]:
    """Every named query by name: the built-ins, then user files (``NX_QUERIES`` replaces the
    warehouse's of the same name); a user file named like a built-in is skipped with a warning."""
    found = {query.name: query for query in _builtin()}
    in_warehouse = _from_warehouse(locate(root)) if root is not None else []
    for query in [*in_warehouse, *_from_directory(resolve(QUERIES_DIR))]:
        if found.get(query.name, query).builtin:
            _skip(query.origin, f"{query.name!r} is a built-in query, which user queries cannot replace: "
                               "give yours another name")
            continue
        found[query.name] = query
    return dict(sorted(found.items()))


def find(name: str, root: Root) -> NamedQuery:
    queries = named_queries(root)
    if name not in queries:
        raise UsageError(f"no named query {name!r}; queries: {', '.join(queries)} (see nx query --list)")
    return queries[name]
