"""NFE's figure 5 as numbers: hair blonde edited plain and projected off hair length, on the 200 held-out codes
`facesteer evaluate` uses (rows 10,000-10,199 of seed 0), measured by the anime scorer in std units per unit step.

    python bench/anime_conditioning.py [--run runs/anime10k]
"""

from __future__ import annotations

import argparse

import numpy as np

from facesteer.attributes import load_scorer
from facesteer.boundaries import Boundary
from facesteer.evaluation.metrics import edit_effects
from facesteer.generators import load_generator
from facesteer.latents import LatentDataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="runs/anime10k")
    args = parser.parse_args()
    generator = load_generator("stylegan2-anime64")
    run = LatentDataset(args.run)
    codes = generator.map(generator.sample_z(200, run.manifest["seed"], start=run.num), "w")
    spread = np.nanstd(run.scores(), axis=0)
    folder = f"{args.run}/boundaries-w"
    blonde, length = Boundary.load(f"{folder}/hair_blonde_w.npy"), Boundary.load(f"{folder}/hair_length_w.npy")
    directions = {"hair blonde": blonde.normal, "hair blonde keeping hair length": blonde.conditioned_on(length).normal,
                  "hair length": length.normal}  # fmt: skip
    with load_scorer("anime", workers=1) as scorer:
        effects = edit_effects(generator, scorer, codes, directions, 2.0, space="w", progress=False) / spread
        columns = [scorer.attributes.index(name) for name in ("hair_blonde", "hair_length")]
    print(f"cosine(hair blonde, hair length) = {float(blonde.normal[0] @ length.normal[0]):+.3f}")
    for name, row in zip(directions, effects, strict=True):
        print(f"{name:32s} hair_blonde {row[columns[0]]:+.3f}  hair_length {row[columns[1]]:+.3f}")


if __name__ == "__main__":
    main()
