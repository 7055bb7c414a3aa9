"""Search over activation contexts (``/contexts?token=...&layer=L``): the stored records of one
layer that contain a token, strongest activation on it first.

A token matches when, spaces around it ignored (GPT-2's tokens carry their leading space: " dog"
is asked as dog), it is the text as typed, or (unless ``case`` is given) that text in lower case,
in upper case or capitalized. These few spellings are looked up with ``list_contains`` over one
layer's ``activation_records``: comparing every token in lower case took 20 s a layer of GPT-2
XL's size (51 million tokens), the lookups a few. A layer is required for the same reason. Every
value is a bound parameter. Each hit carries the record's tokens, so the page shows a window of
``WINDOW`` tokens each side of the strongest match, shaded on the record's own scale.
"""
from __future__ import annotations

import duckdb

from nx.web import tokens

WINDOW = 12

CONTEXTS_SQL = """
with matched as (
    select neuron, sample, quantile, rank, tokens, activations, max_activation,
           list_transform(tokens, lambda t: list_contains($spellings, t)) as hits
    from activation_records
    where model = $model and layer = $layer and ($sample is null or sample = $sample) and ({found})
), scored as (
    select *, list_max(list_transform(range(len(tokens)), lambda i: case when hits[i + 1] then activations[i + 1] end))
              as token_activation
    from matched
)
select neuron, sample, quantile, rank, tokens, activations, max_activation, token_activation,
       coalesce(list_position(list_transform(range(len(tokens)),
                                             lambda i: hits[i + 1] and activations[i + 1] = token_activation), true),
                list_position(hits, true)) - 1 as position,
       count(*) over () as total
from scored
order by token_activation desc nulls last, neuron, sample, rank
limit $limit offset $offset
"""


def spellings(token: str, case: bool) -> list[str]:
    """The token strings that match ``token``: with and without a leading space, in its case
    forms unless ``case``."""
    word = token.strip()
    forms = [word] if case else [word, word.lower(), word.upper(), word.capitalize()]
    return list(dict.fromkeys(f"{space}{form}{end}" for form in forms for space in ("", " ") for end in ("", " ")))


def search(cursor: duckdb.DuckDBPyConnection, params: dict) -> dict:
    """One page of matching records (``params``: token, case, layer, sample, model, limit, offset)."""
    names = spellings(params["token"], params["case"])
    found = " or ".join(f"list_contains(tokens, $s{i})" for i in range(len(names)))
    bound = {k: params[k] for k in ("model", "layer", "sample", "limit", "offset")}
    bound.update({f"s{i}": name for i, name in enumerate(names)}, spellings=names)
    rows = cursor.sql(CONTEXTS_SQL.format(found=found), params=bound).to_arrow_table().to_pylist()
    total = rows[0]["total"] if rows else 0
    for row in rows:
        row.pop("total")
    return {"total": total, "rows": rows}


def panes(rows: list[dict]) -> list[dict]:
    """Each hit's window of tokens around its strongest match, as escaped, shaded HTML."""
    shown = []
    for row in rows:
        at = row["position"] if row["position"] is not None and row["position"] >= 0 else 0
        start, end = max(at - WINDOW, 0), min(at + WINDOW + 1, len(row["tokens"]))
        scale = tokens.scale_of(row["activations"]) or 1.0
        shown.append({"before": tokens.record_html(row["tokens"][start:at], row["activations"][start:at], scale),
                      "match": tokens.record_html(row["tokens"][at:at + 1], row["activations"][at:at + 1], scale),
                      "after": tokens.record_html(row["tokens"][at + 1:end], row["activations"][at + 1:end], scale),
                      "cut_before": start > 0, "cut_after": end < len(row["tokens"])})
    return shown
