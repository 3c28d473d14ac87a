"""Does moving along the quality boundary correct artifacts? FID, faces found, identity kept, per step.

For held-out codes (rows of a seed never sampled into the boundary's run) moved by +alpha along the quality
boundary, alpha = 0 (the originals), 1, 2, 3, this measures:

- FID of the moved faces against the generator's training photos (as in its model card);
- the share of faces the teachers find (MediaPipe);
- the mean quality score (the realism logit) of the moved faces;
- identity: the share of moved faces whose dlib embedding stays within the calibrated same-person distance of
  the original's, and the mean distance, over the pairs where both faces are found.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from facesteer.attributes.base import AttributeScorer
from facesteer.boundaries import Boundary
from facesteer.editing import shift
from facesteer.fid import feature_statistics, frechet_distance
from facesteer.generators.base import Generator


def fix_effects(
    generator: Generator,
    boundary: Boundary,
    reference: tuple[np.ndarray, np.ndarray],
    teachers: AttributeScorer,
    quality: AttributeScorer,
    identity: AttributeScorer,
    threshold: float,
    alphas: Sequence[float] = (0.0, 1.0, 2.0, 3.0),
    num: int = 2000,
    seed: int = 1,
    start: int = 0,
    identity_num: int = 300,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """One row per alpha: ``alpha``, ``fid``, ``faces_found`` (share), ``quality`` (mean logit), and, for
    alpha > 0, ``identity_kept`` (share under ``threshold``), ``identity_distance`` (mean), ``identity_pairs``.

    Args:
        boundary: the quality boundary, applied in its own space.
        reference: (mu, sigma) Inception statistics of the training photos.
        num: faces per FID (rows ``start ..`` of ``seed``); identity is measured on the first ``identity_num``.
    """
    space = boundary.space
    boundary.check_applies_to(generator, space)
    codes = generator.map(generator.sample_z(num, seed, start), space)
    rows, original_embeddings = [], None
    for alpha in alphas:
        images = generator.synthesize(shift(codes, boundary.normal, alpha), space)
        batches = (images[lo : lo + 64] for lo in range(0, num, 64))
        mu, sigma = feature_statistics(batches, num, desc=f"FID at alpha {alpha:g}", progress=progress)
        row: dict[str, Any] = {
            "alpha": float(alpha),
            "fid": frechet_distance(mu, sigma, *reference),
            "faces_found": float(np.mean(~np.isnan(teachers.score(images)[:, 0]))),
            "quality": float(np.mean(quality.score(images))),
        }
        embeddings = identity.score(images[:identity_num]).astype(np.float64)
        if original_embeddings is None:
            original_embeddings = embeddings
        else:
            distances = np.linalg.norm(embeddings - original_embeddings, axis=1)
            found = distances[~np.isnan(distances)]
            row |= {
                "identity_kept": float(np.mean(found < threshold)) if len(found) else float("nan"),
                "identity_distance": float(found.mean()) if len(found) else float("nan"),
                "identity_pairs": len(found),
            }
        rows.append(row)
    return rows
