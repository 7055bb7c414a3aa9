"""Parsing ``--layers`` / ``--neurons`` values: ``"0-3,7"`` -> [0, 1, 2, 3, 7]."""
from __future__ import annotations

from nx.errors import UsageError


def parse_ranges(text: str | list[int] | None, what: str = "value", upper: int | None = None) -> list[int] | None:
    """Sorted unique numbers of a range list; None stays None (meaning: all)."""
    if text is None:
        return None
    if isinstance(text, (list, tuple, range)):
        numbers = set(int(v) for v in text)
    else:
        numbers = set()
        for part in str(text).replace(" ", "").split(","):
            if not part:
                continue
            first, sep, last = part.partition("-")
            try:
                if sep:
                    lo, hi = int(first), int(last)
                    if lo > hi:
                        raise UsageError(f"bad {what} range {part!r}: {lo} is above {hi}")
                    numbers.update(range(lo, hi + 1))
                else:
                    numbers.add(int(first))
            except ValueError:
                raise UsageError(f"bad {what} list {text!r}: use numbers and ranges like 0-3,7") from None
        if not numbers:
            raise UsageError(f"empty {what} list {text!r}")
    if any(n < 0 for n in numbers):
        raise UsageError(f"bad {what} list {text!r}: numbers cannot be negative")
    if upper is not None and any(n >= upper for n in numbers):
        raise UsageError(f"bad {what} list {text!r}: the largest {what} is {upper - 1}")
    return sorted(numbers)
