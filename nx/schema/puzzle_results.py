"""Table ``puzzle_results``: one row per explanation scored on one of the original's puzzles."""
import pyarrow as pa

from nx.schema.base import MODEL, RUN, table

PUZZLE_RESULTS = table(
    "puzzle_results", "One row per puzzle and explanation (generated, true, each false) of an nx puzzles run; "
                      "model is 'puzzles'.",
    (MODEL, RUN), [
    ("puzzle", pa.string(), "the puzzle's name"),
    ("kind", pa.string(), "'generated' (by the explainer model), 'true' or 'false'"),
    ("false_index", pa.int32(), "which false explanation (null for generated and true)"),
    ("explanation", pa.string(), "the explanation simulated"),
    ("score", pa.float64(), "ev-correlation of simulated and the puzzle's activations, pooled over its sentences"),
    ("rsquared_score", pa.float64(), "1 - mean((t-p)^2)/mean(t^2), pooled"),
    ("absolute_dev_explained_score", pa.float64(), "1 - mean(|t-p|)/mean(|t|), pooled"),
    ("sequence_count", pa.int32(), "number of sentences simulated"),
    ("explainer_model", pa.string(), "model that wrote the generated explanation"),
    ("simulator_model", pa.string(), "model that simulated"),
    ("simulator", pa.string(), "simulator kind"),
    ("prompt_version", pa.string(), "versions of the prompt templates"),
    ("status", pa.string(), "'ok', or 'failed' (no scores, see error)"),
    ("error", pa.string(), "why it failed"),
    ("finished_at", pa.timestamp("us", tz="UTC"), "when the run wrote this row"),
])
