"""Table ``explanations``: one row per scored explanation of a neuron, per run."""
import pyarrow as pa

from nx.schema.base import LAYER_COLUMN, MODEL, RUN, table

EXPLANATIONS = table(
    "explanations", "One row per scored explanation; run 'public' holds OpenAI's, others nx explain's.",
    (MODEL, RUN), [
    LAYER_COLUMN,
    ("neuron", pa.int32(), "neuron index within the layer"),
    ("explanation_index", pa.int32(), "position in the file's scored_explanations list"),
    ("explanation", pa.string(), "the explanation text, verbatim"),
    ("score", pa.float64(), "the preferred score: ev_correlation_score"),
    ("ev_correlation_score", pa.float64(), "correlation of true and simulated activations, pooled"),
    ("rsquared_score", pa.float64(), "1 - mean((t-p)^2)/mean(t^2), pooled"),
    ("absolute_dev_explained_score", pa.float64(), "1 - mean(|t-p|)/mean(|t|), pooled"),
    ("top_only_score", pa.float64(), "ev-correlation over the top-activating sequences only"),
    ("random_only_score", pa.float64(), "ev-correlation over the random sequences only"),
    ("sequence_count", pa.int32(), "number of scored sequences"),
    ("explainer", pa.string(), "explainer kind: token-activations or token-lookup (null for public, whose "
                               "explanations were written from top activations)"),
    ("explainer_model", pa.string(), "model that wrote the explanation (null for public)"),
    ("simulator_model", pa.string(), "model that simulated it (null for public)"),
    ("simulator", pa.string(), "simulator kind: all-at-once, chat-logprobs, sampling, token-by-token, json (null for public)"),
    ("prompt_version", pa.string(), "version of the prompt templates (null for public)"),
    ("calibration", pa.string(), "how simulations were calibrated: 'linear', 'percentile' (null: raw 0-10)"),
    ("best", pa.bool_(), "the best-scoring of the neuron's samples in this run (null for public)"),
    ("detection_balanced_accuracy", pa.float64(), "detection scorer (top vs random records): balanced accuracy (mean of recall and specificity)"),
    ("detection_precision", pa.float64(), "detection scorer (top vs random records): precision"),
    ("detection_recall", pa.float64(), "detection scorer (top vs random records): recall"),
    ("detection_f1", pa.float64(), "detection scorer (top vs random records): F1"),
    ("detection_auc", pa.float64(), "detection scorer (top vs random records): ROC AUC over P(yes) from logprobs (null: no logprobs)"),
    ("fuzzing_balanced_accuracy", pa.float64(), "fuzzing scorer (right vs shuffled marks): balanced accuracy (mean of recall and specificity)"),
    ("fuzzing_precision", pa.float64(), "fuzzing scorer (right vs shuffled marks): precision"),
    ("fuzzing_recall", pa.float64(), "fuzzing scorer (right vs shuffled marks): recall"),
    ("fuzzing_f1", pa.float64(), "fuzzing scorer (right vs shuffled marks): F1"),
    ("fuzzing_auc", pa.float64(), "fuzzing scorer (right vs shuffled marks): ROC AUC over P(yes) from logprobs (null: no logprobs)"),
    ("status", pa.string(), "'ok', or 'failed' (no explanation or scores, see error)"),
    ("error", pa.string(), "why a failed neuron failed"),
    ("extras", pa.string(), "JSON of unknown source fields, by object path"),
])
