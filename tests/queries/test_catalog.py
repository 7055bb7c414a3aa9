"""The views' pyarrow-free catalog is nx.schema, column for column."""
from __future__ import annotations

from nx.queries import catalog


def test_the_catalog_is_generated_from_the_current_schema():
    assert catalog.TABLES == catalog.declared(), \
        "nx.schema changed: run `python -m nx.queries.catalog` to regenerate nx/queries/catalog.py"


def test_regenerating_the_catalog_gives_the_same_file():
    text = open(catalog.__file__, encoding="utf-8").read()
    assert catalog.generated_block(catalog.declared()) in text
