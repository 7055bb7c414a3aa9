-- name: layer-stats
-- description: Per layer: number of scored explanations, mean and quantiles of their scores, share above threshold.
-- param: threshold float 0.8 "score counted in share_above"
-- param: model str gpt2-xl "model partition"
-- param: run str public "explanation run"
select layer,
       count(*) as explanations,
       avg(score) as mean_score,
       quantile_cont(score, 0.1) as p10,
       quantile_cont(score, 0.25) as p25,
       median(score) as median,
       quantile_cont(score, 0.75) as p75,
       quantile_cont(score, 0.9) as p90,
       avg((score > $threshold)::double) as share_above,
       avg(random_only_score) as mean_random_only_score
from explanations
where model = $model and run = $run and score is not null
group by layer
order by layer
