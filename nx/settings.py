"""Settings declared once: name, environment variable, default and help.

Resolution is flag > environment > default. Secrets (the API key) are read here and passed
to the client only; nothing in nx writes them anywhere.
"""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    name: str
    env: str
    default: str | None
    help: str


WAREHOUSE = Setting(
    "warehouse", "NX_WAREHOUSE", "./nx-warehouse",
    "Warehouse root: a directory, or az://ACCOUNT/CONTAINER/path.",
)
SOURCE = Setting(
    "source", "NX_SOURCE", None,
    "Source root in the public layout: a directory, an https:// URL or az://ACCOUNT/CONTAINER/path "
    "(default: OpenAI's public bucket for the chosen model).",
)
OPENAI_API_KEY = Setting("api_key", "OPENAI_API_KEY", None, "API key of the OpenAI-compatible server.")
OPENAI_BASE_URL = Setting(
    "base_url", "OPENAI_BASE_URL", None,
    "Base URL of the OpenAI-compatible server (default: OpenAI's).",
)

QUERIES = Setting("queries", "NX_QUERIES", None, "A directory of your own named queries (*.sql).")

COMMIT_SECONDS = Setting(
    "commit_seconds", "NX_COMMIT_SECONDS", "5",
    "How long ingest lets written files wait for their Delta commit, in seconds (a commit costs "
    "tens of milliseconds: fewer, larger commits are faster; smaller values lose less to a kill).",
)

CACHE_DIR = Setting(
    "cache_dir", "NX_CACHE_DIR", None,
    "Where copies of an az:// warehouse's files are kept (default $XDG_CACHE_HOME/nx or ~/.cache/nx; "
    "'off': none). Delta files never change, so a copy stays good.",
)
CACHE_GB = Setting("cache_gb", "NX_CACHE_GB", "10", "Size cap of that cache in GiB (least recently used go first).")

SETTINGS = (WAREHOUSE, SOURCE, OPENAI_API_KEY, OPENAI_BASE_URL, QUERIES, COMMIT_SECONDS, CACHE_DIR, CACHE_GB)

# The public releases: model name -> (source root, layers, neurons per layer).
PUBLIC_MODELS = {
    "gpt2-xl": ("az://openaipublic/neuron-explainer/data", 48, 6400),
    "gpt2-small": ("az://openaipublic/neuron-explainer/gpt2_small_data", 12, 3072),
}
DEFAULT_MODEL = "gpt2-xl"


def resolve(setting: Setting, value: str | None = None) -> str | None:
    """The value given, else the environment's, else the default."""
    if value not in (None, ""):
        return value
    from_env = os.environ.get(setting.env)
    if from_env not in (None, ""):
        return from_env
    return setting.default


def default_source(model: str) -> str | None:
    """OpenAI's public root for a published model; None for a model nx does not know."""
    known = PUBLIC_MODELS.get(model)
    return known[0] if known else None
