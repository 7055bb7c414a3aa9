"""Table ``activation_records``: one row per 64-token activation record of a neuron."""
import pyarrow as pa

from nx.schema.base import LAYER, MODEL, table

ACTIVATION_RECORDS = table(
    "activation_records", "One row per activation record: top, random and per-quantile samples.",
    (MODEL, LAYER), [
    ("neuron", pa.int32(), "neuron index within the layer"),
    ("sample", pa.string(), "'top' (most positive), 'random', or 'quantile'"),
    ("quantile", pa.int32(), "quantile bin of a 'quantile' record, else null"),
    ("rank", pa.int32(), "position in its source list (0 = first; top records: most activating first)"),
    ("tokens", pa.list_(pa.string()), "the record's tokens, exactly as in the source"),
    ("activations", pa.list_(pa.float64()), "the neuron's activation on each token"),
    ("max_activation", pa.float64(), "largest activation in this record"),
    ("sequence_id", pa.string(), "hash of tokens + activations: joins to explanation_sequences"),
    ("extras", pa.string(), "JSON of unknown record fields (e.g. dfa_values), null if none"),
])
