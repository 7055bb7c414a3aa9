-- name: connections
-- description: The strongest upstream (input) and downstream (output) neurons of a neuron, with their best public explanations.
-- param: layer int required "the neuron's layer"
-- param: neuron int required "the neuron's index in its layer"
-- param: top int 10 "connections shown per direction and sign"
-- param: model str gpt2-xl "model partition"
select r.direction, r.sign, r.rank, r.other_layer, r.other_neuron, r.weight, b.explanation, b.score
from related_neurons r
left join best_explanations b
       on b.model = r.model and b.run = 'public' and b.layer = r.other_layer and b.neuron = r.other_neuron
where r.model = $model and r.layer = $layer and r.neuron = $neuron and r.rank < $top
order by r.direction, r.sign desc, r.rank
