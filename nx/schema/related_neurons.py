"""Table ``related_neurons``: one row per weight-based connection to another neuron."""
import pyarrow as pa

from nx.schema.base import LAYER_COLUMN, MODEL, table

RELATED_NEURONS = table(
    "related_neurons", "One row per connection: upstream (input, c_fc) or downstream (output, c_proj).",
    (MODEL,), [
    LAYER_COLUMN,
    ("neuron", pa.int32(), "neuron index within the layer"),
    ("direction", pa.string(), "'input' (c_fc: upstream neurons) or 'output' (c_proj: downstream)"),
    ("sign", pa.string(), "'positive' or 'negative'"),
    ("rank", pa.int32(), "position in its source list (0 = strongest)"),
    ("other_layer", pa.int32(), "layer of the connected neuron"),
    ("other_neuron", pa.int32(), "index of the connected neuron"),
    ("weight", pa.float64(), "connection weight"),
    ("extras", pa.string(), "JSON: the raw name when it is not 'L_N'"),
])
