"""The Neural Face Editor's table for facesteer's anime boundaries: per attribute, the SVM's dataset size (the
confident samples at both ends), its train and validation accuracy, and the accuracy on every other sample,
for each folder of W boundaries given (`facesteer train-boundary RUN --all --space w --ratio R --out DIR`).

    python bench/nfe_table.py runs/anime10k/boundaries-w runs/anime10k/boundaries-w-r20 \\
        runs/anime100k/boundaries-w runs/anime100k/boundaries-w-r20
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path)
    args = parser.parse_args()
    print("| run | ratio | attribute | dataset (both ends) | train acc | validation acc | all other samples acc |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for folder in args.folders:
        for sidecar in sorted(folder.glob("*.json")):
            info = json.loads(sidecar.read_text())
            counts = info["counts"]
            other = "-" if info.get("all_accuracy") is None else f"{info['all_accuracy']:.3f}"
            print(f"| {info['run']} ({counts['valid']:,} valid) | {info['ratio']} | {info['attribute']} | "
                  f"{2 * counts['chosen_per_side']:,} | {info.get('train_accuracy', float('nan')):.3f} | "
                  f"{info['validation_accuracy']:.3f} | {other} |")  # fmt: skip


if __name__ == "__main__":
    main()
