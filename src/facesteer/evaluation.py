"""Evaluations: how well a scorer agrees with real labels."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from tqdm import tqdm

from facesteer.attributes.base import AttributeScorer
from facesteer.datasets import utkface_faces
from facesteer.errors import FacesteerError
from facesteer.images import load_image


def check_scorer_on_utkface(
    scorer: AttributeScorer,
    folder: str | os.PathLike[str],
    num: int = 500,
    seed: int = 0,
    min_age: int = 15,
    progress: bool = True,
) -> dict[str, Any]:
    """Gender accuracy and age MAE of ``scorer`` on a fixed random subset of UTKFace photos.

    The subset is ``num`` photos drawn without replacement by ``numpy.random.default_rng(seed)`` from the
    well-labelled files sorted by name. Faces the scorer cannot find are counted and left out.

    Returns:
        ``{"adults": {...}, "all": {...}}``, each with ``faces``, ``gender_accuracy`` and ``age_mae``
        (years), ``adults`` being the faces aged ``min_age`` or more; plus ``num``, ``no_face``.
    """
    for needed in ("age", "gender"):
        if needed not in scorer.attributes:
            raise FacesteerError(f"scorer {scorer.name} does not predict {needed}")
    faces = utkface_faces(folder)
    if num > len(faces):
        raise FacesteerError(f"asked for {num} photos but {folder} has only {len(faces)}")
    chosen = sorted(np.random.default_rng(seed).choice(len(faces), size=num, replace=False))
    age_col, gender_col = scorer.attributes.index("age"), scorer.attributes.index("gender")
    rows = []
    for index in tqdm(chosen, desc="scoring photos", unit="img", disable=not progress):
        face = faces[index]
        scores = scorer.score(load_image(face.path)[None])[0]
        rows.append((face.age, face.male, scores[age_col], scores[gender_col]))
    table = np.array(rows, dtype=np.float64)
    found = table[~np.isnan(table[:, 3])]

    def summary(subset: np.ndarray) -> dict[str, float | int]:
        return {
            "faces": len(subset),
            "gender_accuracy": float(np.mean((subset[:, 3] >= 0.5) == (subset[:, 1] == 1))),
            "age_mae": float(np.mean(np.abs(subset[:, 2] - subset[:, 0]))),
        }

    return {
        "num": num,
        "seed": seed,
        "no_face": int(len(table) - len(found)),
        "min_age": min_age,
        "adults": summary(found[found[:, 0] >= min_age]),
        "all": summary(found),
    }
