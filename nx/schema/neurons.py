"""Table ``neurons``: one row per neuron record (collated activations)."""
import pyarrow as pa

from nx.schema.base import LAYER_COLUMN, MODEL, table

NEURONS = table("neurons", "One row per neuron: moments, quantile boundaries, max activation, counts.",
                (MODEL,), [
    LAYER_COLUMN,
    ("neuron", pa.int32(), "neuron index within the layer"),
    ("mean", pa.float64(), "mean of the neuron's activations (null: NaN in the source)"),
    ("variance", pa.float64(), "variance of the activations"),
    ("skewness", pa.float64(), "skewness of the activations"),
    ("kurtosis", pa.float64(), "kurtosis of the activations"),
    ("quantile_boundaries", pa.list_(pa.float64()), "boundaries of the quantile bins (null if not tracked)"),
    ("max_activation", pa.float64(), "largest activation over the top records (null if there are none)"),
    ("top_count", pa.int32(), "number of top-activating records"),
    ("random_count", pa.int32(), "number of random records"),
    ("quantile_count", pa.int32(), "number of quantile bins (null: random_sample_by_quantile is null)"),
    ("extras", pa.string(), "JSON of source fields nx does not model, by object path (null: none)"),
])
