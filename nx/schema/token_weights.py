"""Table ``token_weights``: one row per weight-based token connection."""
import pyarrow as pa

from nx.schema.base import LAYER_COLUMN, MODEL, table

TOKEN_WEIGHTS = table(
    "token_weights", "One row per token whose embedding connects most strongly to the neuron.",
    (MODEL,), [
    LAYER_COLUMN,
    ("neuron", pa.int32(), "neuron index within the layer"),
    ("direction", pa.string(), "'input' (the token excites the neuron) or 'output' (the neuron promotes it)"),
    ("sign", pa.string(), "'positive' or 'negative'"),
    ("rank", pa.int32(), "position in its source list (0 = strongest)"),
    ("token", pa.string(), "the token"),
    ("strength", pa.float64(), "connection strength"),
    ("extras", pa.string(), "always null (file-level fields go to the ingest log)"),
])
