"""The one error base of nx and the exit codes the command line maps errors to.

Library code raises these (``from`` the original exception); the CLI turns them into one
line on stderr and the documented exit code. Anything else escaping is a bug.
"""
from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1        # the query was rejected, or a run finished with failures
    USAGE = 2         # bad option, range, kind, name
    UNREACHABLE = 3   # source or warehouse cannot be read or written
    INTERRUPTED = 130


class NxError(Exception):
    """Base of every error nx raises on purpose; the message is meant for people."""

    exit_code = ExitCode.FAILED


class UsageError(NxError):
    """The caller asked for something that cannot be: a bad range, kind, name or value."""

    exit_code = ExitCode.USAGE


class SourceError(NxError):
    """The source cannot be listed or read at all (not one missing file: that is logged)."""

    exit_code = ExitCode.UNREACHABLE


class WarehouseError(NxError):
    """The warehouse cannot be read or written."""

    exit_code = ExitCode.UNREACHABLE


class QueryError(NxError):
    """DuckDB rejected a query, or the query would modify something."""

    exit_code = ExitCode.FAILED


class NotFoundError(NxError):
    """A neuron, run or named query that is not in the warehouse."""

    exit_code = ExitCode.FAILED


class ApiError(NxError):
    """An OpenAI-compatible server refused the run before it started (key, model, simulator)."""

    exit_code = ExitCode.UNREACHABLE
