"""Checks of facesteer's predictors on real, labelled photos (UTKFace ages and genders, CelebA identities)."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from facesteer.attributes.base import AttributeScorer
from facesteer.attributes.identity import IdentityEmbedder
from facesteer.datasets import utkface_faces
from facesteer.errors import FacesteerError
from facesteer.files import write_json
from facesteer.images import load_image, resize_shorter_side
from facesteer.stats import auroc


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


def celeba_identities(folder: str | os.PathLike[str]) -> list[tuple[Path, str]]:
    """(photo path, identity) for every photo listed in ``folder/identities.csv`` (columns file, celeba_identity).

    Raises:
        FacesteerError: the folder or its identities.csv is missing, malformed, or names a missing photo.
    """
    folder = Path(folder)
    table = folder / "identities.csv"
    if not table.is_file():
        raise FacesteerError(f"{table} not found: an identity folder needs identities.csv (file, celeba_identity)")
    try:
        with table.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (UnicodeDecodeError, csv.Error) as error:
        raise FacesteerError(f"{table} is not a readable CSV file: {error}") from None
    if not rows or not {"file", "celeba_identity"} <= set(rows[0]):
        raise FacesteerError(f"{table} must have the columns file and celeba_identity")
    photos = []
    for number, row in enumerate(rows, start=2):
        name, identity = row.get("file"), row.get("celeba_identity")
        if not name or not identity or Path(name).name != name:  # a bare file name inside the folder
            raise FacesteerError(f"{table}, line {number}: needs a file name (no folders) and an identity")
        photos.append((folder / name, identity))
    missing = [path.name for path, _ in photos if not path.is_file()]
    if missing:
        raise FacesteerError(f"{table} lists {len(missing)} photos that are not in {folder} (first: {missing[0]})")
    return photos


def calibrate_identity(
    folder: str | os.PathLike[str],
    size: int | None = None,
    embedder: IdentityEmbedder | None = None,
    keep: float = 0.95,
    progress: bool = True,
) -> dict[str, Any]:
    """How well the identity distance separates people, on a folder of photos with known identities.

    Every photo is embedded (at its own size, or downscaled so its shorter side is ``size`` px); every
    unordered pair of photos whose faces were both found is a same-identity or a different-identity pair.

    Returns:
        ``auroc`` (same-identity pairs ranked closer than different ones), ``threshold`` (the distance below
        which ``keep`` of the same-identity pairs fall: the ``keep`` quantile of their distances),
        ``different_accepted`` (share of different-identity pairs under that threshold), the pair counts and
        mean distances, ``photos`` and ``faces_found``.
    """
    photos = celeba_identities(folder)
    embedder = embedder or IdentityEmbedder()
    vectors = np.full((len(photos), 128), np.nan, dtype=np.float32)
    for i, (path, _) in enumerate(tqdm(photos, desc=f"embedding at {size or 'full'} px", disable=not progress)):
        image = load_image(path)
        vectors[i] = embedder.embed((resize_shorter_side(image, size) if size else image)[None])[0]
    found = np.flatnonzero(~np.isnan(vectors[:, 0]))
    identities = np.array([identity for _, identity in photos])[found]
    first, second = np.triu_indices(len(found), k=1)
    distances = np.linalg.norm(vectors[found][first] - vectors[found][second], axis=1).astype(np.float64)
    same = identities[first] == identities[second]
    if same.sum() < 2 or (~same).sum() < 2:
        raise FacesteerError(f"{folder}: too few pairs with faces found ({same.sum()} same, {(~same).sum()} different)")
    threshold = float(np.quantile(distances[same], keep))
    return {
        "data": str(folder),
        "size": size,
        "photos": len(photos),
        "faces_found": len(found),
        "identities": len(set(identities)),
        "same_pairs": int(same.sum()),
        "different_pairs": int((~same).sum()),
        "auroc": auroc(same, -distances),
        "keep": keep,
        "threshold": threshold,
        "different_accepted": float(np.mean(distances[~same] < threshold)),
        "same_mean_distance": float(distances[same].mean()),
        "different_mean_distance": float(distances[~same].mean()),
    }


def write_identity_calibration(
    folder: str | os.PathLike[str],
    sizes: list[int | None],
    out: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """:func:`calibrate_identity` at each size (None = the photos' own), written atomically to ``out`` as JSON
    when given: ``{"command": ..., "calibrations": [...]}`` (the file :func:`calibrated_threshold` reads)."""
    embedder = IdentityEmbedder()
    result = {
        "command": "facesteer check-identity --data "
        + " ".join([str(folder), *(f"--size {s}" for s in sizes if s is not None)]),
        "calibrations": [calibrate_identity(folder, size, embedder, progress=progress) for size in sizes],
    }
    if out is not None:
        write_json(out, result)
    return result
