"""``--prompts paper``: the explainer and simulator prompts built by the original package itself.

The PyPI package ``automated-interpretability`` (the ``paper`` extra; its ``neuron_explainer``
is openai/automated-interpretability as kept up by Neuronpedia) is imported only here and only
then. Its own classes build every prompt, with their default few-shot sets and formats, so that
nx sends exactly what the original would:
- explainer: ``TokenActivationPairExplainer`` (chat messages, few-shot set ORIGINAL);
- ``all-at-once``: ``ExplanationNeuronSimulator.make_simulation_prompt`` (one completions prompt,
  ORIGINAL examples, instruction-following format), read at each ``unknown`` after ``<start>``;
- ``token-by-token``: ``ExplanationTokenByTokenSimulator.make_single_token_simulation_prompt``
  (NEWER examples): the instruction-following string on completions, chat messages on chat;
- ``json``: ``LogprobFreeExplanationTokenSimulator``'s JSON prompt (NEWER examples).
Replies are read by nx (the original's parsers turn unreadable replies into zeros; nx fails
them). The detection and fuzzing scorers have no original prompt: they keep nx's. The version
recorded with each row names the package and its version, so paper-prompt scores never mix
with nx-prompt ones.
"""
from __future__ import annotations

import functools
from typing import Sequence

from nx.errors import UsageError
from nx.explain import prompts

PACKAGE = "automated-interpretability"
INSTALL = "pip install 'nx-neurons[paper]'"
_PREFIX = "the main thing this neuron does is find"   # what the original's explainer prompt ends with
_SIMULATOR_TEMPLATE = {"all-at-once": "paper-simulator-all-at-once", "token-by-token": "paper-simulator-one-at-a-time",
                       "json": "paper-simulator-json"}


def load():
    """The prompt builder of the original package; UsageError saying how to install it if absent."""
    try:
        return _Paper()
    except ImportError as exc:
        raise UsageError(f"--prompts paper needs the original package {PACKAGE} ({exc}); install it with: "
                         f"{INSTALL}") from None


class _Paper:
    """The same functions as ``nx.explain.prompts``, built with the original's classes."""

    def __init__(self) -> None:
        from importlib.metadata import version

        from neuron_explainer.activations.activations import ActivationRecord
        from neuron_explainer.explanations import explainer, simulator
        from neuron_explainer.explanations.prompt_builder import PromptFormat

        self.package_version = version(PACKAGE)
        self._record, self._explainer, self._simulator, self._format = ActivationRecord, explainer, simulator, PromptFormat

    # -- versions ------------------------------------------------------------------------------
    def _names(self, explainer: str, simulator: str, scorers: Sequence[str]) -> list[str]:
        names = ["paper-explainer-token-activations"]
        if "simulation" in scorers:
            names.append(_SIMULATOR_TEMPLATE[simulator])
        return names + [f"scorer-{s}" for s in scorers if s != "simulation"]

    def _version_of(self, name: str) -> str:
        return prompts.VERSIONS[name] if name.startswith("scorer-") else f"{PACKAGE}-{self.package_version}"

    def version(self, explainer: str, simulator: str, scorers: Sequence[str] = ("simulation",)) -> str:
        return ",".join(f"{name}@{self._version_of(name)}" for name in self._names(explainer, simulator, scorers))

    def versions_used(self, explainer: str, simulator: str, scorers: Sequence[str] = ("simulation",)) -> dict[str, str]:
        return {name: self._version_of(name) for name in self._names(explainer, simulator, scorers)}

    # -- explainer -----------------------------------------------------------------------------
    def explainer_messages(self, records) -> list[dict]:
        from neuron_explainer.activations.activation_records import calculate_max_activation

        built = self._explainer.TokenActivationPairExplainer(model_name="nx")
        if not _tokenizer_available():
            # Its length check needs tiktoken's cl100k_base, downloaded on first use; offline it
            # cannot be had. The 128k context the explainer assumes holds 5 records many times.
            built._prompt_is_too_long = lambda *_: False
        activation_records = [self._record(tokens=list(t), activations=[a or 0.0 for a in acts]) for t, acts in records]
        return _plain(built.make_explanation_prompt(all_activation_records=activation_records,
                                                    max_activation=calculate_max_activation(activation_records),
                                                    max_tokens_for_completion=60))

    def lookup_explainer_messages(self, tokens):
        raise UsageError("--prompts paper has no token-lookup explainer")

    def parse_explanation(self, text: str | None) -> str:
        explanation = (text or "").strip().splitlines()[0].strip() if (text or "").strip() else ""
        if explanation.lower().startswith(_PREFIX):
            explanation = explanation[len(_PREFIX):].strip()
        return explanation[:-1].rstrip() if explanation.endswith(".") else explanation

    # -- simulators ----------------------------------------------------------------------------
    def completion_prompt(self, explanation: str, tokens: Sequence[str]) -> tuple[str, list[int]]:
        built = self._simulator.ExplanationNeuronSimulator(model_name="nx", explanation=explanation)
        prompt = built.make_simulation_prompt(list(tokens))
        position = prompt.rfind("<start>\n") + len("<start>\n")
        offsets = []
        for token in tokens:
            position += len(token) + 1
            if prompt[position:position + len("unknown")] != "unknown":
                raise ValueError("the original's simulation prompt is not laid out as token<TAB>unknown lines")
            offsets.append(position)
            position += len("unknown") + 1
        return prompt, offsets

    def _one_at_a_time(self, explanation: str, chat: bool):
        return self._simulator.ExplanationTokenByTokenSimulator(
            model_name="nx", explanation=explanation,
            prompt_format=self._format.HARMONY_V4 if chat else self._format.INSTRUCTION_FOLLOWING)

    def single_token_prompt(self, explanation: str, tokens: Sequence[str], index: int) -> str:
        return self._one_at_a_time(explanation, False).make_single_token_simulation_prompt(list(tokens), explanation, index)

    def single_token_messages(self, explanation: str, tokens: Sequence[str], index: int) -> list[dict]:
        return _plain(self._one_at_a_time(explanation, True).make_single_token_simulation_prompt(list(tokens), explanation, index))

    def json_simulation_messages(self, explanation: str, tokens: Sequence[str]) -> list[dict]:
        built = self._simulator.LogprobFreeExplanationTokenSimulator(model_name="nx", explanation=explanation)
        return _plain(built._make_simulation_prompt_json(list(tokens), explanation))

    # -- scorers: nx's own ---------------------------------------------------------------------
    detection_messages = staticmethod(prompts.detection_messages)
    fuzzing_messages = staticmethod(prompts.fuzzing_messages)


def _plain(messages: list) -> list[dict]:
    """The original's messages with their roles as plain strings (its Role is a str Enum)."""
    return [{"role": str(getattr(m["role"], "value", m["role"])), "content": m["content"]} for m in messages]


@functools.cache
def _tokenizer_available() -> bool:
    try:
        import tiktoken

        tiktoken.get_encoding("cl100k_base")
        return True
    except Exception:  # noqa: BLE001  no network, no cache: any failure means the same
        return False
