"""Table ``token_lookups``: one row per token of a neuron's activation-based lookup table."""
import pyarrow as pa

from nx.schema.base import LAYER_COLUMN, MODEL, table

TOKEN_LOOKUPS = table(
    "token_lookups", "One row per token with the highest average activation for the neuron.",
    (MODEL,), [
    LAYER_COLUMN,
    ("neuron", pa.int32(), "neuron index within the layer"),
    ("rank", pa.int32(), "position in the source list (0 = highest average activation)"),
    ("token", pa.string(), "the token"),
    ("average_activation", pa.float64(), "its average activation (null: NaN in the source)"),
    ("extras", pa.string(), "always null (file-level fields go to the ingest log)"),
])
