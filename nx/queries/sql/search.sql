-- name: search
-- description: Explanations matching some text (case-insensitive), best first.
-- param: text str required "what to look for"
-- param: match substring|word|regex substring "substring ('at' finds 'cat'), word ('at' as a whole word) or regex"
-- param: layer int null "only this layer (null: all layers)"
-- param: limit int null "at most this many rows (null: all)"
-- param: model str gpt2-xl "model partition"
-- param: run str public "explanation run (null: all runs)"
select layer, neuron, explanation, score, run
from explanations
where model = $model and ($run is null or run = $run) and ($layer is null or layer = $layer)
  and text_matches(explanation, $text, $match)
order by score desc nulls last, layer, neuron, explanation_index
limit $limit
