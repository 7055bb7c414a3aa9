-- name: monosemantic
-- description: Explanations that score high on random sequences alone: the paper's "possibly monosemantic" neurons.
-- param: min_score float 0.7 "lowest random-only score shown"
-- param: layer int null "only this layer (null: all layers)"
-- param: limit int null "at most this many rows (null: all)"
-- param: model str gpt2-xl "model partition"
-- param: run str public "explanation run"
-- A neuron that fires only on what its explanation says scores well even on random text,
-- where it is mostly silent; one explained only at its peaks scores well on top records alone.
select layer, neuron, explanation, random_only_score, top_only_score, score
from explanations
where model = $model and run = $run and random_only_score >= $min_score and ($layer is null or layer = $layer)
order by random_only_score desc, layer, neuron, explanation_index
limit $limit
