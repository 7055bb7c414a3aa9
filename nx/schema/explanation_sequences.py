"""Table ``explanation_sequences``: one row per scored sequence of a scored explanation."""
import pyarrow as pa

from nx.schema.base import LAYER, MODEL, RUN, table

_FLOATS = pa.list_(pa.float64())
_DISTRIBUTION = pa.list_(pa.list_(pa.float64()))

EXPLANATION_SEQUENCES = table(
    "explanation_sequences", "One row per scored sequence: true vs simulated activations.",
    (MODEL, RUN, LAYER), [
    ("neuron", pa.int32(), "neuron index within the layer"),
    ("explanation_index", pa.int32(), "which explanation of the neuron"),
    ("seq_index", pa.int32(), "position in scored_sequence_simulations"),
    ("sample", pa.string(), "'top' or 'random' when the sequence matches such a record, else null"),
    ("tokens", pa.list_(pa.string()), "the sequence's tokens"),
    ("true_activations", _FLOATS, "real activations"),
    ("expected_activations", _FLOATS, "simulated expected activations"),
    ("activation_scale", pa.string(), "'neuron_activations' or 'simulated_normalized_activations'"),
    ("distribution_values", _DISTRIBUTION, "per token: the values the simulator gave probability to"),
    ("distribution_probabilities", _DISTRIBUTION, "per token: their probabilities"),
    ("uncalibrated_expected_activations", _FLOATS, "the raw simulation before calibration (null: none)"),
    ("uncalibrated_activation_scale", pa.string(), "scale of the raw simulation"),
    ("uncalibrated_distribution_values", _DISTRIBUTION, "raw distribution values"),
    ("uncalibrated_distribution_probabilities", _DISTRIBUTION, "raw distribution probabilities"),
    ("ev_correlation_score", pa.float64(), "per-sequence correlation"),
    ("rsquared_score", pa.float64(), "per-sequence r-squared"),
    ("absolute_dev_explained_score", pa.float64(), "per-sequence absolute deviation explained"),
    ("sequence_id", pa.string(), "hash of tokens + true activations: joins to activation_records"),
    ("extras", pa.string(), "JSON of unknown source fields, by object path"),
])
