"""The neuron card of ``nx show``: a ``Neuron`` drawn with rich.

Sections: statistics; explanations of every run with all their scores; the top activation
records with each token shaded by its activation (background intensity, relative to the
neuron's largest activation; the peak token is also marked «» when there is no colour);
lookup-table tokens; weight-based tokens; upstream and downstream neurons with their best
public explanation. Odd characters inside tokens are made visible (``nx.tokens``: ↵ newline, ⇥ tab, ...).
``html_card`` is the same neuron, shorter, as escaped HTML for notebooks.
"""
from __future__ import annotations

import html
from typing import BinaryIO, TextIO

from nx.queries.neuron import WEIGHT_SIDES, Neuron
from nx.queries.render import dumps_json, format_float
from nx.tokens import visible_text

SHADES = 6  # background levels, so a line of tokens stays a short run of styles


def _number(value) -> str:
    return "–" if value is None else format_float(value) if isinstance(value, float) else str(value)


def _token(text: str) -> str:
    return visible_text(text)


def shade(activation: float | None, peak: float | None) -> str:
    """A background style for an activation: none at or below 0, darkest green at the peak."""
    if activation is None or not peak or peak <= 0 or activation <= 0:
        return ""
    level = min(SHADES, max(1, round(SHADES * activation / peak)))
    fade = int(235 - 150 * level / SHADES)
    return f"black on rgb({fade},{235},{fade})"


def record_text(record: dict, peak: float | None, color: bool):
    """One activation record as a line of tokens, each on its shade."""
    from rich.text import Text

    text = Text()
    activations = record.get("activations") or []
    top = max(range(len(activations)), key=lambda i: activations[i] if activations[i] is not None else float("-inf"),
              default=None)
    for i, token in enumerate(record.get("tokens") or []):
        activation = activations[i] if i < len(activations) else None
        shown = _token(token)
        if not color and i == top:
            shown = f"«{shown}»"
        text.append(shown, style=shade(activation, peak) if color else "")
    return text


def _stats_line(neuron: Neuron) -> str:
    stats = neuron.stats or {}
    parts = [f"max activation {_number(stats.get('max_activation'))}", f"mean {_number(stats.get('mean'))}",
             f"variance {_number(stats.get('variance'))}",
             f"{len(neuron.top_records)} top, {len(neuron.random_records)} random, "
             f"{len(neuron.quantile_records)} quantile records"]
    return " · ".join(parts) if neuron.stats else "no activation records ingested"


def _explanations(neuron: Neuron):
    from rich.table import Table

    table = Table(title="Explanations", title_justify="left", title_style="bold", expand=False)
    for name in ("run", "score", "top-only", "random-only", "r²", "abs-dev"):
        table.add_column(name, justify="left" if name == "run" else "right", no_wrap=True)
    table.add_column("explanation", overflow="fold")
    for row in neuron.explanations:
        table.add_row(row["run"], _number(row["score"]), _number(row["top_only_score"]),
                      _number(row["random_only_score"]), _number(row["rsquared_score"]),
                      _number(row["absolute_dev_explained_score"]),
                      row["explanation"] if row["explanation"] is not None else f"({row['status']}: {row['error']})")
    return table


def _token_list(entries: list[dict], value: str, limit: int):
    """Tokens with their values, laid out in columns so that no entry is split across lines."""
    from rich.columns import Columns
    from rich.text import Text

    items = [Text.assemble((f"'{_token(e['token'])}'" if e["token"] is not None else "NULL", "bold"),
                           (f" {_number(e[value])}", "dim")) for e in entries[:limit]]
    if len(entries) > limit:
        items.append(Text(f"… {len(entries) - limit} more", style="dim"))
    return Columns(items, padding=(0, 2))


def _related(title: str, entries: list[dict], limit: int):
    from rich.table import Table

    table = Table(title=title, title_justify="left", title_style="bold", expand=False)
    for name in ("sign", "neuron", "weight", "score"):
        table.add_column(name, justify="right" if name in ("weight", "score") else "left", no_wrap=True)
    table.add_column("best public explanation", overflow="fold")
    for sign in ("positive", "negative"):
        for entry in [e for e in entries if e["sign"] == sign][:limit]:
            table.add_row(sign, f"{entry['layer']}/{entry['neuron']}", _number(entry["weight"]),
                          _number(entry["score"]), entry["explanation"] or "")
    return table


def draw_card(neuron: Neuron, stream: TextIO, color: bool = False, width: int | None = None,
              records: int = 5, tokens: int = 20, related: int = 5) -> None:
    """Write the card of ``neuron`` to ``stream``."""
    from rich.console import Console  # rich only when a card is drawn
    from rich.text import Text

    console = Console(file=stream, force_terminal=color, no_color=not color, width=width,
                      highlight=False, emoji=False)
    console.print(Text(f"Neuron {neuron.layer}/{neuron.neuron} · {neuron.model}", style="bold"))
    console.print(_stats_line(neuron))
    console.print()
    if neuron.explanations:
        console.print(_explanations(neuron))
    else:
        console.print(Text("No explanations.", style="dim"))
    console.print()
    if neuron.top_records:
        peak = (neuron.stats or {}).get("max_activation") or max(
            (r["max_activation"] for r in neuron.top_records if r["max_activation"] is not None), default=None)
        console.print(Text(f"Top activation records ({min(records, len(neuron.top_records))} of "
                           f"{len(neuron.top_records)}, shaded by activation)", style="bold"))
        for record in neuron.top_records[:records]:
            console.print(Text(f"#{record['rank']}  max {_number(record['max_activation'])}", style="dim"))
            console.print(record_text(record, peak, color))
        console.print()
    if neuron.token_lookups:
        console.print(Text("Token lookup table (highest average activation)", style="bold"))
        console.print(_token_list(neuron.token_lookups, "average_activation", tokens))
        console.print()
    if any(neuron.token_weights.values()):
        console.print(Text("Weight-based tokens", style="bold"))
        for side in WEIGHT_SIDES:
            console.print(Text(side.replace("_", " "), style="italic"))
            console.print(_token_list(neuron.token_weights.get(side, []), "strength", tokens // 2))
        console.print()
    for title, entries in (("Upstream neurons (input)", neuron.upstream),
                           ("Downstream neurons (output)", neuron.downstream)):
        if entries:
            console.print(_related(title, entries, related))
            console.print()


def _escaped(text) -> str:
    return html.escape(visible_text(str(text)), quote=True)


def html_card(neuron: Neuron, records: int = 3, tokens: int = 10, explanations: int = 5) -> str:
    """The neuron as a small HTML card for notebooks (``Neuron._repr_html_``): best explanations,
    the top records shaded by activation, lookup tokens, counts. Every value is escaped."""
    parts = [f'<div class="nx-neuron" style="font-family: sans-serif; line-height: 1.4">'
             f"<b>{_escaped(neuron.model)} · layer {neuron.layer} · neuron {neuron.neuron}</b><br>"
             f'<span style="color: #666">{_escaped(_stats_line(neuron))}</span>']
    ranked = sorted(neuron.explanations, key=lambda e: (e.get("score") is None, -(e.get("score") or 0)))
    if ranked:
        rows = "".join(f"<tr><td>{_escaped(e['run'])}</td><td>{_number(e.get('score'))}</td>"
                       f"<td>{_escaped(e['explanation'] if e['explanation'] is not None else e.get('status'))}</td></tr>"
                       for e in ranked[:explanations])
        parts.append(f"<table><tr><th>run</th><th>score</th><th>explanation</th></tr>{rows}</table>"
                     + (f"<i>… {len(ranked) - explanations} more</i>" if len(ranked) > explanations else ""))
    peak = (neuron.stats or {}).get("max_activation")
    for record in neuron.top_records[:records]:
        spans = []
        for token, activation in zip(record.get("tokens") or [], record.get("activations") or []):
            alpha = max(0.0, min(1.0, activation / peak)) if activation is not None and peak and peak > 0 else 0.0
            spans.append(f'<span title="{_number(activation)}" style="background: rgba(40, 160, 40, {alpha:.2f})">'
                         f"{_escaped(token)}</span>")
        parts.append(f'<div style="font-family: monospace; white-space: pre-wrap">{"".join(spans)}</div>')
    if neuron.token_lookups:
        listed = ", ".join(f"<code>{_escaped(e['token'])}</code>" for e in neuron.token_lookups[:tokens]
                           if e["token"] is not None)
        parts.append(f"lookup tokens: {listed}")
    parts.append(f"<br>{len(neuron.upstream)} upstream, {len(neuron.downstream)} downstream neurons</div>")
    return "".join(parts)


def write_json(neuron: Neuron, stream: BinaryIO) -> None:
    """Everything ``nx.neuron`` returned, as one JSON object (NaN as null)."""
    stream.write(dumps_json(neuron.asdict()) + b"\n")
    stream.flush()
