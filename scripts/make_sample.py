"""Write the bundled sample, nx/sample/: a handful of SYNTHETIC neurons in the public layout.

The neurons are made by tests/cases.py (the same builders the tests use): realistic shapes,
serialization and quirks (odd tokens, null moments, unknown fields), but invented values.
They are not GPT-2 data. Re-run after changing the builders:

    python scripts/make_sample.py
"""
from __future__ import annotations

import random
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import cases  # noqa: E402

TARGET = ROOT / "nx" / "sample"
NOTICE = """SYNTHETIC SAMPLE DATA -- not GPT-2 XL activations or OpenAI explanations.

Made by scripts/make_sample.py with the builders in tests/cases.py, in the exact layout and
serialization of OpenAI's public neuron-explainer datasets, so that nx can be tried without a
download:  nx ingest --all --source nx/sample
"""


LAYERS, NEURONS = (0, 1, 2), range(6)
RELATED = 3  # per direction and sign: layer 1 has 6 neurons upstream, as many as both signs need


def related_neurons(layer: int, neuron: int) -> dict:
    """Related neurons that point inside the sample, so that the viewer's links lead somewhere,
    and that are distinct within each direction, as weights make them: a neuron is once in a
    list, and never among both the most positive and the most negative. (The weights and the
    layout are cases.related_neurons'; its names are drawn with repeats, fine for tests.)"""
    found = cases.related_neurons(layer, neuron, n=RELATED, n_layers=len(LAYERS), n_neurons=len(NEURONS))
    rng = random.Random(f"related {layer}/{neuron}")
    for key, others in (("c_fc", range(0, layer)), ("c_proj", range(layer + 1, len(LAYERS)))):
        if found[key] is None:
            continue
        picked = rng.sample([(other, n) for other in others for n in NEURONS], 2 * RELATED)
        names = [cases.neuron_name(other, n) for other, n in picked]
        found[key]["top_positive_neurons"], found[key]["top_negative_neurons"] = names[:RELATED], names[RELATED:]
    return found


def main() -> None:
    if TARGET.exists():
        shutil.rmtree(TARGET)
    manifest = cases.write_source_tree(TARGET, layers=LAYERS, neurons=NEURONS, hard_neuron=(0, 1),
                                       second_hard_neuron=(1, 0), broken=False, seed=7)
    for layer in LAYERS:
        for neuron in NEURONS:
            path = TARGET / cases.source_path("related-neurons", layer, neuron)
            path.write_bytes(cases.dumps(related_neurons(layer, neuron)))
    (TARGET / "SYNTHETIC.txt").write_text(NOTICE)
    files = sum(len(v) for v in manifest["ok"].values())
    print(f"wrote {files} files to {TARGET.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
