-- name: top-explained
-- description: Explanations scoring at least min_score (ev_correlation_score), best first.
-- param: min_score float 0.8 "lowest score shown"
-- param: layer int null "only this layer (null: all layers)"
-- param: limit int null "at most this many rows (null: all)"
-- param: model str gpt2-xl "model partition"
-- param: run str public "explanation run: public, or the name of an nx explain run"
select layer, neuron, explanation, score, top_only_score, random_only_score
from explanations
where model = $model and run = $run and score >= $min_score and ($layer is null or layer = $layer)
order by score desc, layer, neuron, explanation_index
limit $limit
