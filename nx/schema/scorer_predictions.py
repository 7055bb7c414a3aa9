"""Table ``scorer_predictions``: one row per example a detection or fuzzing scorer asked about."""
import pyarrow as pa

from nx.schema.base import LAYER_COLUMN, MODEL, RUN, table

SCORER_PREDICTIONS = table(
    "scorer_predictions", "One row per detection or fuzzing example of an nx explain run: label, answer, prediction.",
    (MODEL, RUN), [
    LAYER_COLUMN,
    ("neuron", pa.int32(), "neuron index within the layer"),
    ("explanation_index", pa.int32(), "which explanation (sample) of the neuron was scored"),
    ("scorer", pa.string(), "'detection' or 'fuzzing'"),
    ("example_index", pa.int32(), "position of the example among the scorer's examples"),
    ("sample", pa.string(), "'top' or 'random': where the record comes from (valid split)"),
    ("sequence_id", pa.string(), "hash of tokens + activations: joins to activation_records"),
    ("label", pa.bool_(), "detection: the record is a top one; fuzzing: the marked tokens are the firing ones"),
    ("marked", pa.list_(pa.int32()), "fuzzing: positions of the marked tokens (null for detection)"),
    ("prediction", pa.bool_(), "the model's answer, 1 = true (null: the answer could not be read)"),
    ("probability", pa.float64(), "P(answer 1) from the answer's logprobs (null: no logprobs)"),
    ("answer", pa.string(), "the answer as written (at most 200 characters)"),
    ("error", pa.string(), "why the prediction is missing"),
])
