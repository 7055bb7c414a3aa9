-- name: search
-- description: Explanations containing some text (case-insensitive), best first.
-- param: text str required "text to look for"
-- param: layer int null "only this layer (null: all layers)"
-- param: limit int 100 "rows shown"
-- param: model str gpt2-xl "model partition"
-- param: run str public "explanation run (null: all runs)"
select layer, neuron, explanation, score, run
from explanations
where model = $model and ($run is null or run = $run) and ($layer is null or layer = $layer)
  and contains(lower(explanation), lower($text))
order by score desc nulls last, layer, neuron, explanation_index
limit $limit
