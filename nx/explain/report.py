"""What a run did, returned by ``nx.explain.run``: counts, tokens, failures, why it stopped.

The command line prints ``str(report)`` and exits non-zero when ``report.failed`` is not 0.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

_SHOWN_FAILURES = 10


@dataclass
class ExplainReport:
    run: str
    model: str
    explainer_model: str
    simulator_model: str
    explainer: str
    simulator: str
    prompt_version: str
    ok: int = 0                 # neurons explained and scored by this call
    failed: int = 0             # neurons that failed in this call (stored with their reason)
    skipped: int = 0            # neurons already scored in this run before this call
    remaining: int = 0          # neurons not attempted because the run stopped early
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    stopped: str | None = None  # why the run stopped before the end (key, model, quota)
    failures: list[dict] = field(default_factory=list)   # {"layer", "neuron", "error"}

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def asdict(self) -> dict:
        return dict(dataclasses.asdict(self), tokens=self.tokens)

    def __str__(self) -> str:
        lines = [
            f"run {self.run} ({self.model}): {self.ok} ok, {self.failed} failed, {self.skipped} skipped"
            + (f", {self.remaining} not attempted" if self.remaining else ""),
            f"explainer {self.explainer} on {self.explainer_model}, simulator {self.simulator} on "
            f"{self.simulator_model}, prompts {self.prompt_version}",
            f"{self.tokens:,} tokens ({self.prompt_tokens:,} prompt + {self.completion_tokens:,} "
            f"completion), {self.requests:,} requests, {self.retries:,} retries, {self.seconds:.1f} s",
        ]
        for failure in self.failures[:_SHOWN_FAILURES]:
            lines.append(f"  failed: layer {failure['layer']} neuron {failure['neuron']}: {failure['error']}")
        if len(self.failures) > _SHOWN_FAILURES:
            lines.append(f"  ... and {len(self.failures) - _SHOWN_FAILURES} more failures")
        if self.stopped:
            lines.append(f"stopped early: {self.stopped}")
        if self.failed or self.remaining:
            lines.append("re-run the same command to retry the failed neurons and finish the run")
        return "\n".join(lines)
