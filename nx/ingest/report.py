"""IngestReport: what an ingest run did, per kind; ``asdict()`` for machines, ``str()`` for people."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

MAX_LISTED_FAILURES = 20


@dataclass
class KindCounts:
    ok: int = 0
    missing: int = 0
    malformed: int = 0
    skipped: int = 0          # already ingested and unchanged
    rows: dict[str, int] = field(default_factory=dict)

    def add(self, other: "KindCounts") -> None:
        self.ok += other.ok
        self.missing += other.missing
        self.malformed += other.malformed
        self.skipped += other.skipped
        for table, n in other.rows.items():
            self.rows[table] = self.rows.get(table, 0) + n


@dataclass
class Failure:
    kind: str
    path: str
    status: str
    error: str


@dataclass
class IngestReport:
    model: str
    source: str
    warehouse: str
    kinds: dict[str, KindCounts] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    failure_count: int = 0
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        """True when every file looked at was ingested (nothing missing or malformed)."""
        return self.failure_count == 0

    def add_failure(self, failure: Failure) -> None:
        self.failure_count += 1
        if len(self.failures) < MAX_LISTED_FAILURES:
            self.failures.append(failure)

    def asdict(self) -> dict:
        return asdict(self) | {"complete": self.complete}

    def __str__(self) -> str:
        lines = [f"ingest of {self.source} (model {self.model}) into {self.warehouse}"]
        header = f"  {'kind':<22}{'ok':>9}{'missing':>9}{'malformed':>11}{'skipped':>9}  rows written"
        lines.append(header)
        for kind, c in self.kinds.items():
            rows = ", ".join(f"{t} {n:,}" for t, n in c.rows.items()) or "-"
            lines.append(f"  {kind:<22}{c.ok:>9,}{c.missing:>9,}{c.malformed:>11,}{c.skipped:>9,}  {rows}")
        for f in self.failures:
            lines.append(f"  {f.status}: {f.path}: {f.error}")
        if self.failure_count > len(self.failures):
            lines.append(f"  ... and {self.failure_count - len(self.failures)} more (see the _ingest table)")
        neurons = sum(c.ok + c.missing + c.malformed for c in self.kinds.values())
        rate = f", {neurons / self.seconds:,.0f} files/s" if self.seconds > 0 and neurons else ""
        state = "complete" if self.complete else f"{self.failure_count} file(s) not ingested"
        lines.append(f"  {self.seconds:.1f} s{rate}; {state}")
        return "\n".join(lines)
