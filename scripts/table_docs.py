"""Print the README's "Tables" section from nx/schema (the one place schemas are declared).

    python scripts/table_docs.py        # prints markdown; tests/test_docs.py checks the README has it
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nx.schema import TABLES  # noqa: E402


def _type(t) -> str:
    return str(t).replace("large_", "").replace("<item: ", "<").replace("timestamp[us, tz=UTC]", "timestamp")


def table_docs() -> str:
    out = []
    for table in TABLES.values():
        keys = ", ".join(f"`{f.name}`" for f in table.partitions)
        out.append(f"#### `{table.name}`\n\n{table.doc} Partitioned by {keys}.\n")
        out.append("| column | type | meaning |\n| --- | --- | --- |")
        for field in table.columns:
            out.append(f"| `{field.name}` | {_type(field.type)} | {table.column_docs.get(field.name, '')} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(table_docs())
