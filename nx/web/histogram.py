"""The neuron page's activation histogram: the activations of a neuron's stored records, as SVG.

What the warehouse holds of a neuron's activations is its records: the top-activating ones,
the random sample and the per-quantile samples. ``histogram`` bins their tokens' activations
(stacked by sample, since the top records are far from a random draw) and ``svg`` draws them
server-side, with the quantile boundaries (``neuron_page.quantile_bins``) as dashed lines where
they are known: no script, and every number in the markup is one the page formatted itself.
Heights are on a log scale: most tokens of most neurons sit near zero.
"""
from __future__ import annotations

import math

import numpy as np
from markupsafe import Markup, escape

from nx.web.tokens import number

BINS = 60
SAMPLES = (("random", "#8c959f"), ("quantile", "#9fd4b0"), ("top", "#16803c"))  # bottom to top
WIDTH, HEIGHT, LEFT, RIGHT, BOTTOM, TOP = 800, 180, 44, 24, 22, 34
CLOSE = 30  # labels nearer than this (in SVG units) are staggered or left out


def histogram(data: dict, quantile_bins: list[dict]) -> dict | None:
    """Bin edges, counts per sample and the quantile boundaries; None without activations."""
    values = {sample: _finite(r["activations"] for r in data[f"{sample}_records"]) for sample, _ in SAMPLES}
    everything = np.concatenate(list(values.values()))
    if not everything.size:
        return None
    low, high = float(everything.min()), float(everything.max())
    if high <= low:
        high = low + 1.0
    edges = np.linspace(low, high, BINS + 1)
    counts = {sample: np.histogram(v, edges)[0].tolist() for sample, v in values.items()}
    # a bin's upper bound, inside the range: the last bin's is the largest activation itself
    boundaries = [{"x": b["high"], "label": f"{b['levels'][1]:g}" if b["levels"] else f"bin {b['quantile']}"}
                  for b in quantile_bins if b["high"] is not None and low <= b["high"] < high]
    return {"edges": edges.tolist(), "counts": counts, "boundaries": boundaries,
            "tokens": {sample: int(v.size) for sample, v in values.items()}}


def _finite(lists) -> np.ndarray:
    found = np.array([v for values in lists for v in values if v is not None], np.float64)
    return found[np.isfinite(found)]


def svg(found: dict | None) -> Markup:
    """The histogram as an inline SVG (empty markup when there is nothing to draw)."""
    if not found:
        return Markup("")
    edges, counts = found["edges"], found["counts"]
    totals = [sum(counts[s][i] for s, _ in SAMPLES) for i in range(len(edges) - 1)]
    top = math.log10(1 + max(totals)) or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - BOTTOM - TOP

    def x_of(value: float) -> float:
        return LEFT + (value - edges[0]) / (edges[-1] - edges[0]) * plot_w

    def y_of(count: int) -> float:
        return TOP + plot_h - math.log10(1 + count) / top * plot_h

    parts = [f'<svg class="histogram" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="histogram of the activations of the stored records">']
    for i in range(len(edges) - 1):
        below = 0
        x, w = x_of(edges[i]), max(x_of(edges[i + 1]) - x_of(edges[i]) - 1, 1)
        for sample, colour in SAMPLES:
            n = counts[sample][i]
            if n:
                y0, y1 = y_of(below), y_of(below + n)
                parts.append(f'<rect x="{x:.1f}" y="{y1:.1f}" width="{w:.1f}" height="{max(y0 - y1, 0.5):.1f}" '
                             f'fill="{colour}"><title>{n} {sample} tokens, {number(edges[i])} to '
                             f'{number(edges[i + 1])}</title></rect>')
                below += n
    last, raised = -CLOSE, False
    for b in found["boundaries"]:
        x = x_of(b["x"])
        raised = x - last < CLOSE and not raised  # a label next to the last one goes above it
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP - (16 if raised else 4)}" y2="{TOP + plot_h}" '
                     f'class="boundary"/><text x="{x:.1f}" y="{TOP - (20 if raised else 8)}" '
                     f'class="boundary">{escape(b["label"])}</text>')
        last = x
    axis_y = TOP + plot_h
    parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{axis_y}" y2="{axis_y}" class="axis"/>')
    ticks = [edges[0], edges[-1]]
    if all(abs(x_of(0.0) - x_of(t)) > CLOSE * 1.5 for t in ticks) and edges[0] < 0 < edges[-1]:
        ticks.append(0.0)
    for value in ticks:
        parts.append(f'<text x="{x_of(value):.1f}" y="{HEIGHT - 6}" class="tick">{number(value, 2)}</text>')
    parts.append(f'<text x="{LEFT - 6}" y="{TOP + 4}" class="count">{max(totals)}</text>'
                 f'<text x="{LEFT - 6}" y="{axis_y}" class="count">0</text></svg>')
    return Markup("".join(parts))
