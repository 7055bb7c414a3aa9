"""Table ``_ingest``: the file log, one row per source file ingest has looked at."""
import pyarrow as pa

from nx.schema.base import LAYER_COLUMN, MODEL, table

KIND = pa.field("kind", pa.string())

INGEST_LOG = table(
    "_ingest", "One row per source file: its status, size and why it failed.",
    (MODEL, KIND), [
    LAYER_COLUMN,
    ("neuron", pa.int32(), "neuron index within the layer"),
    ("path", pa.string(), "the file's path relative to the source root"),
    ("size", pa.int64(), "size in bytes (null if missing)"),
    ("version", pa.string(), "etag or modification time, to notice a changed file"),
    ("status", pa.string(), "'ok', 'missing' or 'malformed'"),
    ("error", pa.string(), "one-line reason for missing or malformed"),
    ("note", pa.string(), "e.g. 'non-strict JSON (NaN literals)'"),
    ("labelled", pa.bool_(), "explanations: sequences were labelled against activation records"),
    ("rows", pa.int64(), "rows this file contributed to its main table"),
    ("skeleton", pa.string(), "JSON of file-level structure not in any row (null sides, extras)"),
    ("ingested_at", pa.timestamp("us", tz="UTC"), "when the file was ingested"),
])
