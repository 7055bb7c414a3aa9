-- name: activations-not-tokens
-- description: Neurons well explained from their activations but not from their tokens alone: per neuron, the best token-activations score against the best token-lookup score, largest gap first.
-- param: min_score float 0.5 "lowest best token-activations score shown"
-- param: layer int null "only this layer (null: all layers)"
-- param: limit int null "at most this many rows (null: all)"
-- param: model str gpt2-xl "model partition"
-- A neuron whose top activations explain it well while its token lookup table does not responds
-- to context, not to a token: the question the original neuron-explainer README asks. The
-- explainer kind comes from the row, else from its run's row in runs; public explanations
-- were written from top activations. Without a token-lookup run the query stops and says how
-- to make one.
with kinds as (
    select e.layer, e.neuron, e.run, e.explanation, e.score,
           coalesce(e.explainer, r.explainer, case when e.run = 'public' then 'token-activations' end) as explainer
    from explanations e
    left join runs r on r.model = e.model and r.run = e.run
    where e.model = $model and e.score is not null and ($layer is null or e.layer = $layer)
), best as (
    select layer, neuron,
           max(score) filter (where explainer = 'token-activations') as activations_score,
           max(score) filter (where explainer = 'token-lookup') as tokens_score,
           arg_max(run, score) filter (where explainer = 'token-activations') as activations_run,
           arg_max(run, score) filter (where explainer = 'token-lookup') as tokens_run,
           arg_max(explanation, score) filter (where explainer = 'token-activations') as activations_explanation,
           arg_max(explanation, score) filter (where explainer = 'token-lookup') as tokens_explanation
    from kinds group by layer, neuron
), lookup_runs as (
    select count(*) as n from kinds where explainer = 'token-lookup'
), found as (
    select layer, neuron, activations_score, tokens_score, activations_score - tokens_score as gap,
           activations_run, tokens_run, activations_explanation, tokens_explanation
    from best
    where activations_score >= $min_score and tokens_score is not null
    union all
    select error('no token-lookup explanations of model ' || $model || coalesce(' in layer ' || $layer, '')
                 || ' in the warehouse to compare with: '
                 || 'make some with nx explain --explainer token-lookup --run NAME --layers L '
                 || '--explainer-model M --simulator-model M (the same neurons as a token-activations run, '
                 || 'or the public one)')::integer,
           null, null, null, null, null, null, null, null
    from lookup_runs where n = 0
)
select * from found
order by gap desc, layer, neuron
limit $limit
