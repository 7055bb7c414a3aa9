"""Terminal presentation for the CLI: the rich progress bar, error and warning lines, and Ctrl-C.

Imported only by ``nx/cli.py``; the library never draws. Everything here writes to stderr:
stdout is data.
"""
from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time

from nx.errors import ExitCode


class RichProgress:
    """The Progress protocol drawn as a rich bar with a rate and per-status counts."""

    def __init__(self, unit: str = "neurons", counts: tuple[str, ...] = ()):
        self.unit = unit
        self.count_names = counts
        self.counts = {name: 0 for name in counts}
        self._bar = None
        self._task = None
        self._started = time.monotonic()
        self._done = 0

    def _fields(self) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        parts = [f"{self._done / elapsed:,.0f} {self.unit}/s"]
        parts += [f"{name} {value:,}" for name, value in self.counts.items()]
        return "  ".join(parts)

    def start(self, total: int, description: str = "") -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        if self._bar is None:
            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[stats]}"), TimeElapsedColumn(),
                                 console=Console(stderr=True), transient=False)
            self._bar.start()
            self._task = self._bar.add_task(description or self.unit, total=total, stats=self._fields())
        else:
            self._bar.update(self._task, total=(self._bar.tasks[0].total or 0) + total,
                             description=description or self.unit)

    def advance(self, n: int = 1, **counts: int) -> None:
        self._done += n
        for name, value in counts.items():
            if name in self.counts:
                self.counts[name] += value
        if self._bar is not None:
            self._bar.update(self._task, advance=n, stats=self._fields())

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def note(self, text: str) -> None:
        """One line on stderr at once, "nx: " first (above the bar, when there is one)."""
        if self._bar is not None:
            self._bar.console.print(f"nx: {text}", markup=False, highlight=False)
        else:
            note(f"nx: {text}")


def error_line(message: str) -> None:
    text = " ".join(str(message).split())
    print(f"nx: error: {text}", file=sys.stderr)


def note(message: str) -> None:
    print(message, file=sys.stderr)


class Interrupts:
    """Ctrl-C while a command runs: noted in ``seen`` before Python raises KeyboardInterrupt as usual.

    The note is how an interrupt is told from a failure, since DuckDB turns the KeyboardInterrupt
    raised inside a running query into an error of its own. With ``stop_after``, a thread woken by
    the signal itself (``set_wakeup_fd``: Python runs handlers only between bytecodes, and a query
    can hold the main thread in C++ for minutes) ends the process if the command has not stopped
    by then. Only Python's default handler is replaced: an ignored SIGINT stays ignored.
    """

    def __init__(self, stop_after: float | None):
        self.stop_after = stop_after
        self.seen, self.done, self._told = threading.Event(), threading.Event(), threading.Lock()
        self._active = (threading.current_thread() is threading.main_thread()
                        and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        self._wakeup = None

    def tell(self) -> None:
        """The one line, printed once whoever gets here first."""
        if self._told.acquire(blocking=False):
            error_line("interrupted; nothing half-written was left: run the same command again to finish")

    def _note(self, signum, frame) -> None:
        self.seen.set()
        signal.default_int_handler(signum, frame)

    def _watch(self, reader: socket.socket) -> None:
        with reader:
            while data := reader.recv(64):
                if signal.SIGINT in data:
                    self.seen.set()
                    if not self.done.wait(self.stop_after):
                        self.tell()
                        os._exit(int(ExitCode.INTERRUPTED))  # from a thread: exit() would end only it

    def __enter__(self) -> Interrupts:
        if self._active:
            signal.signal(signal.SIGINT, self._note)
            if self.stop_after is not None:
                reader, writer = socket.socketpair()
                writer.setblocking(False)
                self._wakeup = (writer, signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False))
                threading.Thread(target=self._watch, args=(reader,), name="nx-interrupts", daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.done.set()
        if self._wakeup is not None:
            writer, previous = self._wakeup
            signal.set_wakeup_fd(previous)
            writer.close()  # the watching thread reads the end of the stream and returns
        if self._active:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def one_line_for_nx(show):
    """A ``warnings.showwarning`` that prints nx's own warnings (a skipped query file) as one line
    on stderr, and passes others to ``show``."""

    def show_warning(message, category, filename, lineno, file=None, line=None):
        if category.__module__.split(".")[0] != "nx":
            return show(message, category, filename, lineno, file, line)
        print("nx: warning: " + " ".join(str(message).split()), file=sys.stderr)

    return show_warning
