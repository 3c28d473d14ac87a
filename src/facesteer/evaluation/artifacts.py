"""Does moving along the quality boundary correct artifacts? FID, faces found, identity kept, per step.

For held-out codes (rows of a seed never sampled into the boundary's run) moved by +alpha along the quality
boundary, alpha = 0 (the originals), 1, 2, 3, this measures:

- FID of the moved faces against the generator's training photos (as in its model card);
- the share of faces the teachers find (MediaPipe);
- the mean quality score (the realism logit) of the moved faces;
- identity: the share of moved faces whose dlib embedding stays within the calibrated same-person distance of
  the original's (a face the move loses counts as not kept), the share lost, and the mean distance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from facesteer.attributes.base import AttributeScorer
from facesteer.boundaries import Boundary
from facesteer.editing import fix_codes
from facesteer.evaluation.metrics import identity_summary
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
    below: float | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """One row per alpha: ``alpha``, ``fid``, ``faces_found`` (share), ``quality`` (mean logit), and, for
    alpha != 0, :func:`identity_summary` of the first ``identity_num`` faces against the unmoved ones, its keys
    prefixed ``identity_`` (``identity_kept``: share within ``threshold``, a lost face counting as not kept;
    ``identity_lost``, ``identity_mean_distance``, ``identity_faces``).

    Args:
        boundary: the quality boundary, applied in its own space.
        reference: (mu, sigma) Inception statistics of the training photos.
        num: faces per FID (rows ``start ..`` of ``seed``); identity is measured on the first ``identity_num``.
        below: move only the codes whose signed distance to the boundary is below this (InterFaceGAN moves the
            low-quality samples and leaves the rest); None moves every code. Each row then also gives
            ``moved``, the share of codes moved.
    """
    space = boundary.space
    boundary.check_applies_to(generator, space)
    codes = generator.map(generator.sample_z(num, seed, start), space)
    originals = identity.score(generator.synthesize(codes[:identity_num], space))
    rows = []
    for alpha in alphas:
        moved_codes, moved = fix_codes(codes, boundary.normal, alpha, below)
        images = generator.synthesize(moved_codes.astype(np.float32), space)
        batches = (images[lo : lo + 64] for lo in range(0, num, 64))
        mu, sigma = feature_statistics(batches, num, desc=f"FID at alpha {alpha:g}", progress=progress)
        row: dict[str, Any] = {
            "alpha": float(alpha),
            "fid": frechet_distance(mu, sigma, *reference),
            "faces_found": float(np.mean(~np.isnan(teachers.score(images)[:, 0]))),
            "quality": float(np.mean(quality.score(images))),
            "moved": float(np.mean(moved)) if alpha != 0 else 0.0,
        }
        if alpha != 0:
            kept = identity_summary(originals, identity.score(images[:identity_num]), threshold)
            row |= {f"identity_{key}": value for key, value in kept.items()}
        rows.append(row)
    return rows
