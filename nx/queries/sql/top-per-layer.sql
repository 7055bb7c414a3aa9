-- name: top-per-layer
-- description: Each layer's best-scoring explanations (--top of them), layer by layer, ranked.
-- param: top int 10 "explanations shown per layer"
-- param: min_score float null "lowest score shown (null: any)"
-- param: layer int null "only this layer (null: all layers)"
-- param: limit int null "at most this many rows (null: all)"
-- param: model str gpt2-xl "model partition"
-- param: run str public "explanation run: public, or the name of an nx explain run"
select layer, rank, neuron, explanation, score, top_only_score, random_only_score
from (
    select *, row_number() over (partition by layer order by score desc, neuron, explanation_index)::integer as rank
    from explanations
    where model = $model and run = $run and score is not null
      and ($min_score is null or score >= $min_score) and ($layer is null or layer = $layer)
)
where rank <= $top
order by layer, rank
limit $limit
