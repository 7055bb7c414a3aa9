"""Progress reporting as an injected object: the library counts, the caller draws.

Long functions take ``progress: Progress`` and call ``start(total, description)`` (which adds
to the total and names the stage; it may be called again, e.g. ``start(0, "listing")`` before
the total is known) then ``advance(n, **counts)``;
the CLI passes a rich bar, tests pass ``CountingProgress`` and compare its counts with what
was written. ``note(text)`` is a line for people (the CLI prints it on stderr), such as what a
run is waiting for; ``tell`` calls it on a progress that has it.
"""
from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, total: int, description: str = "") -> None: ...

    def advance(self, n: int = 1, **counts: int) -> None: ...

    def finish(self) -> None: ...

    def note(self, text: str) -> None: ...


def tell(progress: Progress, text: str) -> None:
    """``progress.note(text)``, for a progress object written before notes existed too."""
    note = getattr(progress, "note", None)
    if note is not None:
        note(text)


class NullProgress:
    """Draws nothing: the default for library calls."""

    def start(self, total: int, description: str = "") -> None:
        pass

    def advance(self, n: int = 1, **counts: int) -> None:
        pass

    def finish(self) -> None:
        pass

    def note(self, text: str) -> None:
        pass


class CountingProgress:
    """Keeps totals, for tests and for callers that draw their own way."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0
        self.counts: dict[str, int] = {}
        self.finished = False
        self.notes: list[str] = []

    def start(self, total: int, description: str = "") -> None:
        self.total += total

    def advance(self, n: int = 1, **counts: int) -> None:
        self.done += n
        for name, value in counts.items():
            self.counts[name] = self.counts.get(name, 0) + value

    def finish(self) -> None:
        self.finished = True

    def note(self, text: str) -> None:
        self.notes.append(text)
