"""Write the bundled sample, nx/sample/: a handful of SYNTHETIC neurons in the public layout.

The neurons are made by tests/cases.py (the same builders the tests use): realistic shapes,
serialization and quirks (odd tokens, null moments, unknown fields), but invented values.
They are not GPT-2 data. Re-run after changing the builders:

    python scripts/make_sample.py
"""
from __future__ import annotations

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


def main() -> None:
    if TARGET.exists():
        shutil.rmtree(TARGET)
    manifest = cases.write_source_tree(TARGET, layers=(0, 1, 2), neurons=range(6), hard_neuron=(0, 1),
                                       second_hard_neuron=(1, 0), broken=False, seed=7)
    # Related neurons point inside the sample, so that the viewer's links lead somewhere.
    for layer in (0, 1, 2):
        for neuron in range(6):
            path = TARGET / cases.source_path("related-neurons", layer, neuron)
            path.write_bytes(cases.dumps(cases.related_neurons(layer, neuron, n=6, n_layers=3, n_neurons=6)))
    (TARGET / "SYNTHETIC.txt").write_text(NOTICE)
    files = sum(len(v) for v in manifest["ok"].values())
    print(f"wrote {files} files to {TARGET.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
