"""Tokens as HTML: escaped, odd characters made visible, shaded by activation.

Tokens are arbitrary web text. Every piece of a token is escaped (``markupsafe.escape``)
before it becomes markup; characters that would vanish or rearrange the page are replaced
by its visible sign (``nx.tokens``: ``↵`` newline, ``⇥`` tab, ``⟨U+200F⟩`` ...) in a ``ws``
span; an empty token is ``∅``. The span keeps the real
text in its ``title`` so the hover says what it is.

Colours: activations shade white to green by ``value / scale`` (``scale`` is the neuron's
largest activation, so records of one neuron compare), negative values pale red; simulated
activations shade white to blue. The exact value is in the ``title`` (the browser's hover).
Numbers (``number``) and timestamps (``when``: to the second, in UTC) are shown as text here too.
"""
from __future__ import annotations

import datetime as dt
import math
from functools import lru_cache

from markupsafe import Markup, escape

from nx.tokens import sign_of

GREEN = (22, 128, 60)
BLUE = (37, 99, 235)
RED = (220, 38, 38)


def visible(token: str | None) -> Markup:
    """The token as escaped HTML with invisible and layout-breaking characters shown as signs."""
    return Markup(_visible(token))


@lru_cache(maxsize=65536)  # a vocabulary repeats: a page draws ~10,000 tokens of a few thousand kinds
def _visible(token: str | None) -> str:
    if token is None:
        return '<span class="ws" title="no token">∅</span>'
    if token == "":
        return '<span class="ws" title="empty token">∅</span>'
    parts: list[str] = []
    plain: list[str] = []
    for char in token:
        sign = sign_of(char)
        if sign is None:
            plain.append(char)
            continue
        if plain:
            parts.append(str(escape("".join(plain))))
            plain = []
        parts.append(f'<span class="ws" title="U+{ord(char):04X}">{escape(sign)}</span>')
    if plain:
        parts.append(str(escape("".join(plain))))
    return "".join(parts)


def shade(value: float | None, scale: float, colour: tuple[int, int, int] = GREEN) -> str:
    """A CSS background for ``value`` on a white-to-``colour`` scale (negative: pale red)."""
    if value is None or not math.isfinite(value) or scale <= 0:
        return "#fff"
    t = value / scale
    if t < 0:
        colour, t = RED, min(-t, 1.0) * 0.35
    t = min(t, 1.0)
    r, g, b = (round(255 + (c - 255) * t) for c in colour)
    return f"#{r:02x}{g:02x}{b:02x}"


def ink(value: float | None, scale: float) -> str:
    """Text colour readable on ``shade(value, scale)``."""
    return " c" if value is not None and scale > 0 and math.isfinite(value) and value / scale > 0.62 else ""


def number(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def when(value) -> str | None:
    """A timestamp to the second in UTC (``2026-12-01 14:35:21 UTC``); None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def scale_of(*lists) -> float:
    """The largest finite value of the given lists of numbers (0 if none is positive)."""
    best = 0.0
    for values in lists:
        for v in values or ():
            if v is not None and math.isfinite(v) and v > best:
                best = v
    return best


LEVELS = 100  # shades per colour: finer than the eye sees, and each one's markup is made once


@lru_cache(maxsize=None)
def _opening(level: int, colour: tuple[int, int, int]) -> str:
    """``<span class="t" style="..."`` for ``level`` in -LEVELS..LEVELS (negative: pale red)."""
    value = level / LEVELS
    background = shade(value, 1.0, colour)
    style = "" if background in ("#fff", "#ffffff") else f' style="background:{background}"'
    return f'<span class="t{ink(value, 1.0)}"{style}'


def _level(value: float | None, scale: float) -> int:
    if value is None or scale <= 0 or not math.isfinite(value):
        return 0
    return max(-LEVELS, min(LEVELS, round(value / scale * LEVELS)))


def record_html(tokens: list[str], activations: list[float | None], scale: float) -> Markup:
    """One activation record: a span per token, shaded, its exact activation on hover."""
    return Markup("".join(f'{_opening(_level(value, scale), GREEN)} title="{number(value, 4)}">{_visible(token)}</span>'
                          for token, value in zip(tokens, activations)))


def simulation_html(tokens: list[str], true: list[float | None], expected: list[float | None],
                    true_scale: float, expected_scale: float) -> Markup:
    """One scored sequence: each token twice, real activation above (green), simulated below
    (blue). A token the simulation missed (real >= half the scale, simulated < a fifth) is
    marked ``miss``; one it imagined (the reverse) ``extra``."""
    out = []
    for token, t, p in zip(tokens, true, expected or [None] * len(tokens)):
        real, simulated = _level(t, true_scale), _level(p, expected_scale)
        mark = " miss" if real >= LEVELS / 2 and simulated < LEVELS / 5 else \
            " extra" if simulated >= LEVELS / 2 and real < LEVELS / 5 else ""
        text = _visible(token)
        out.append(f'<span class="pair{mark}" title="real {number(t, 4)} · simulated {number(p, 3)}">'
                   f'{_opening(real, GREEN)}>{text}</span>{_opening(simulated, BLUE)}>{text}</span></span>')
    return Markup("".join(out))


def chip_html(token: str, value: float | None, scale: float, colour=GREEN, digits: int = 3) -> Markup:
    """A token with a value beside it (lookup table, weight-based tokens)."""
    return Markup(f'<span class="chip"><span class="t{ink(abs(value or 0), scale)}" '
                  f'style="background:{shade(abs(value) if value is not None else None, scale, colour)}" '
                  f'title="{number(value, 4)}">{visible(token)}</span>'
                  f'<span class="v">{number(value, digits)}</span></span>')
