"""Terminal presentation for the CLI: the rich progress bar and error lines.

Imported only by ``nx/cli.py``; the library never draws. Everything here writes to stderr:
stdout is data.
"""
from __future__ import annotations

import sys
import time


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


def error_line(message: str) -> None:
    text = " ".join(str(message).split())
    print(f"nx: error: {text}", file=sys.stderr)


def note(message: str) -> None:
    print(message, file=sys.stderr)
