"""Table ``runs``: one row per ``nx explain`` run (and a row for the public run)."""
import pyarrow as pa

from nx.schema.base import MODEL, RUN, table

RUNS = table(
    "runs", "One row per explain run: models, simulator, prompt versions, usage, counts.",
    (MODEL, RUN), [
    ("explainer_model", pa.string(), "model that wrote explanations"),
    ("simulator_model", pa.string(), "model that simulated them"),
    ("explainer", pa.string(), "explainer kind: token-activations or token-lookup"),
    ("simulator", pa.string(), "simulator kind: all-at-once, chat-logprobs, sampling, token-by-token or json"),
    ("prompt_versions", pa.string(), "JSON: template name -> version"),
    ("parameters", pa.string(), "JSON of the run's parameters (never the API key)"),
    ("base_url", pa.string(), "server URL used"),
    ("started_at", pa.timestamp("us", tz="UTC"), "when the run (or its latest resume) started"),
    ("ended_at", pa.timestamp("us", tz="UTC"), "when it ended"),
    ("prompt_tokens", pa.int64(), "prompt tokens used"),
    ("completion_tokens", pa.int64(), "completion tokens used"),
    ("neurons_ok", pa.int64(), "neurons explained and scored"),
    ("neurons_failed", pa.int64(), "neurons that failed (status and reason in explanations)"),
])
