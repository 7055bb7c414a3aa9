"""Run comparison: two runs' best explanation scores on the neurons both explained.

Reads the in-memory index. Returns a summary (shared neurons, mean scores, correlation,
how often the second run wins), up to ``MAX_POINTS`` points for the scatter (a fixed hash
sample when there are more, so the picture is stable between loads) and the neurons where
the two runs disagree most, with both explanations.
"""
from __future__ import annotations

import duckdb

MAX_POINTS = 5000

PAIRS_SQL = """
with a as (select layer, neuron, explanation, score from best_explanations where model = $model and run = $a),
     b as (select layer, neuron, explanation, score from best_explanations where model = $model and run = $b)
select layer, neuron, a.explanation as explanation_a, a.score as score_a,
       b.explanation as explanation_b, b.score as score_b, b.score - a.score as difference
from a join b using (layer, neuron)
"""

SUMMARY_SQL = f"""
select count(*) as neurons, avg(score_a) as mean_a, avg(score_b) as mean_b,
       corr(score_a, score_b) as correlation, avg((score_b > score_a)::double) as share_b_better
from ({PAIRS_SQL})
"""

POINTS_SQL = f"""
select layer, neuron, score_a, score_b from ({PAIRS_SQL})
where score_a is not null and score_b is not null
order by hash(layer, neuron) limit {MAX_POINTS}
"""

DISAGREE_SQL = f"""
select * from ({PAIRS_SQL}) where difference is not null
order by abs(difference) desc, layer, neuron limit $limit
"""


def compare(cursor: duckdb.DuckDBPyConnection, model: str, a: str, b: str, limit: int) -> dict:
    params = {"model": model, "a": a, "b": b}
    summary = cursor.sql(SUMMARY_SQL, params=params).to_arrow_table().to_pylist()[0]
    points = cursor.sql(POINTS_SQL, params=params).fetchnumpy()
    disagree = cursor.sql(DISAGREE_SQL, params={**params, "limit": limit}).to_arrow_table().to_pylist()
    return {"model": model, "a": a, "b": b, "summary": summary,
            "points": {"layer": points["layer"].tolist(), "neuron": points["neuron"].tolist(),
                       "score_a": points["score_a"].tolist(), "score_b": points["score_b"].tolist()},
            "sampled": summary["neurons"] > MAX_POINTS, "disagreements": disagree}
