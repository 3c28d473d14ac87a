"""Can this generator's edits move a real photo's attribute at all, while the photo stays its person?

For the first NUM held-out photos (../shared/data/celeba-sample, sorted) in which a face is found, aligned to
stylegan2-utkface64, and for each boundary at alpha ALPHA, the teachers' mean attribute change of four edits:

- ``random``: random codes edited in the generator, the yardstick of issue 17's goal;
- ``code only``: the encoder's code of each photo edited in the generator (the person is lost with the code);
- ``pti``: the same code edited in the photo's own tuned copy of the generator (``DEFAULT_TUNING``);
- ``photo + edit``: the photo plus the generator's own pixel change at that code, x + G(p + alpha n) - G(p): what
  a reconstruction as good as the photo itself would show if the edit followed the generator.

and, but for ``random``, the share of photos whose edited face is still the photo's person (dlib distance under
the calibrated threshold) and the bootstrap 95 % interval of its gap to ``random`` (bench/inversion.py's).

    python bench/edit_transfer.py [--num 247] [--alpha 2]
"""

from __future__ import annotations

import argparse

import numpy as np
from inversion import aligned_pictures, change_intervals

from facesteer.attributes import load_scorer
from facesteer.attributes.identity import calibrated_threshold, identity_distance
from facesteer.boundaries import Boundary
from facesteer.editing import shift
from facesteer.generators import load_generator
from facesteer.generators.base import to_uint8_images
from facesteer.generators.ops import uint8_to_unit
from facesteer.inversion import FACESTEER_RECIPE, invert
from facesteer.inversion.encoder import load_encoder

BOUNDARIES = "runs/sg2-utk20k/boundaries-w/{}_w.npy"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=247, help="photos (247: every held-out photo with a face)")
    parser.add_argument("--alpha", type=float, default=2.0)
    parser.add_argument("--attributes", nargs="+", default=["smile", "age", "gender"])
    parser.add_argument("--random", type=int, default=256, help="random codes edited for comparison")
    args = parser.parse_args()
    generator = load_generator("stylegan2-utkface64")
    photos, _ = aligned_pictures("../shared/data/celeba-sample", generator, args.num)
    inversion = invert(photos, generator, "pti", FACESTEER_RECIPE, load_encoder(generator), progress=True)
    pivots, reconstructions = inversion.codes, inversion.reconstructions
    random_codes = generator.map(generator.sample_z(args.random, seed=123), "w")
    threshold = calibrated_threshold(generator.resolution)
    code_only = generator.synthesize(pivots, "w")
    print(f"{len(photos)} photos; the pivot's image is the photo's person for "
          f"{np.mean(identity_distance(photos, code_only) < threshold):.3f}, pti's reconstruction for "
          f"{np.mean(identity_distance(photos, reconstructions) < threshold):.3f}")  # fmt: skip
    print(f"{'attribute':<10} {'edit':<13} {'change':>8} {'gap to random (95 %)':>24} {'person kept':>12}")
    with load_scorer("teachers", workers=1) as scorer:
        before = {
            "random": scorer.score(generator.synthesize(random_codes, "w")),
            "code only": scorer.score(code_only),
            "pti": scorer.score(reconstructions),
            "photo + edit": scorer.score(photos),
        }
        for attribute in args.attributes:
            column = scorer.attributes.index(attribute)
            normal = Boundary.load(BOUNDARIES.format(attribute)).normal
            moved = shift(pivots, normal, args.alpha)
            code_only_edited = generator.synthesize(moved, "w")
            change = uint8_to_unit(code_only_edited) - uint8_to_unit(code_only)
            after = {
                "random": generator.synthesize(shift(random_codes, normal, args.alpha), "w"),
                "code only": code_only_edited,
                "pti": np.concatenate(
                    [inversion.generator_for(i, generator).synthesize(moved[i : i + 1], "w") for i in range(len(moved))]
                ),
                "photo + edit": to_uint8_images((uint8_to_unit(photos) + change).clamp(-1, 1)),
            }
            changes = {edit: scorer.score(after[edit])[:, column] - before[edit][:, column] for edit in after}
            for edit, images in after.items():
                line = f"{attribute:<10} {edit:<13} {np.nanmean(changes[edit]):>8.3f}"
                if edit != "random":
                    low, high = change_intervals(changes[edit], changes["random"])["change_difference_ci95"]
                    kept = np.mean(identity_distance(photos, images) < threshold)
                    line += f" {f'[{low:.3f}, {high:.3f}]':>24} {kept:>12.3f}"
                print(line, flush=True)


if __name__ == "__main__":
    main()
