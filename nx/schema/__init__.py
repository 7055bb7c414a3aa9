"""Every warehouse table's schema, declared once. Imports nothing else of nx but itself.

``TABLES`` maps a table name to its ``Table`` (partition keys with types, columns, docs).
Writers validate against it; DuckDB views pass its ``hive_types``; ``nx.scan`` its schema.
"""
from nx.schema.activation_records import ACTIVATION_RECORDS
from nx.schema.base import Table
from nx.schema.explanation_sequences import EXPLANATION_SEQUENCES
from nx.schema.explanations import EXPLANATIONS
from nx.schema.ingest_log import INGEST_LOG
from nx.schema.neurons import NEURONS
from nx.schema.puzzle_results import PUZZLE_RESULTS
from nx.schema.related_neurons import RELATED_NEURONS
from nx.schema.runs import RUNS
from nx.schema.scorer_predictions import SCORER_PREDICTIONS
from nx.schema.token_lookups import TOKEN_LOOKUPS
from nx.schema.token_weights import TOKEN_WEIGHTS

TABLES: dict[str, Table] = {t.name: t for t in (
    NEURONS, ACTIVATION_RECORDS, EXPLANATIONS, EXPLANATION_SEQUENCES, RELATED_NEURONS,
    TOKEN_WEIGHTS, TOKEN_LOOKUPS, INGEST_LOG, RUNS, SCORER_PREDICTIONS, PUZZLE_RESULTS,
)}

# The seven data tables of the warehouse (the log and runs are bookkeeping).
DATA_TABLES = ("neurons", "activation_records", "explanations", "explanation_sequences",
               "related_neurons", "token_weights", "token_lookups")

__all__ = ["TABLES", "DATA_TABLES", "Table"]
