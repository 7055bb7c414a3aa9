-- name: token
-- description: Neurons whose lookup table lists a token, or whose top records peak on it (spaces around it ignored).
-- param: token str required "the token, e.g. ' Canada' (quoted) or Canada"
-- param: layer int null "only this layer (null: all layers; the top records are large, so give one)"
-- param: limit int null "at most this many rows (null: all)"
-- param: model str gpt2-xl "model partition"
with lookup as (
    select layer, neuron, min(rank) as lookup_rank, max(average_activation) as average_activation
    from token_lookups
    where model = $model and ($layer is null or layer = $layer) and trim(token) = trim($token)
    group by layer, neuron
), peaks as (
    -- top records whose highest activation falls on the token
    select layer, neuron, count(*) as top_records
    from activation_records
    where model = $model and ($layer is null or layer = $layer) and sample = 'top'
      and trim(tokens[list_position(activations, max_activation)]) = trim($token)
    group by layer, neuron
), hits as (
    select layer, neuron, l.lookup_rank, l.average_activation, coalesce(p.top_records, 0) as top_records
    from lookup l full join peaks p using (layer, neuron)
), explained as (
    select layer, neuron, explanation, score from best_explanations
    where model = $model and run = 'public' and ($layer is null or layer = $layer)
)
select layer, neuron, h.lookup_rank, h.average_activation, h.top_records, e.explanation, e.score
from hits h
left join explained e using (layer, neuron)
order by h.top_records desc, h.lookup_rank nulls last, layer, neuron
limit $limit
