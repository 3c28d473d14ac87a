"""InterFaceGAN boundaries of a sampled run: one linear SVM per attribute on the run's codes and scores."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facesteer.boundaries import Boundary, train_boundary
from facesteer.errors import FacesteerError
from facesteer.generators.base import weights_identity
from facesteer.latents import LatentDataset


def run_boundary_dir(run: str | os.PathLike[str]) -> Path:
    """Where a run's boundaries go unless told otherwise: ``RUN/boundaries``."""
    return Path(run) / "boundaries"


def boundary_path(folder: str | os.PathLike[str], attribute: str, space: str = "z") -> Path:
    """Where a run's boundary lives: ``FOLDER/ATTRIBUTE.npy`` for z, ``FOLDER/ATTRIBUTE_SPACE.npy`` otherwise
    (InterFaceGAN's naming: ``age_w.npy``). The file's sidecar still states its space, which is what is checked."""
    return Path(folder) / (f"{attribute}.npy" if space == "z" else f"{attribute}_{space}.npy")


def train_run_boundary(
    dataset: LatentDataset,
    attribute: str,
    scores: np.ndarray | None = None,
    space: str = "z",
    ratio: float = 0.02,
    split: float = 0.7,
    seed: int = 0,
    info: dict[str, Any] | None = None,
) -> Boundary:
    """Train one boundary on a run's codes: on its scores for ``attribute``, or on the given ``scores``
    (N,) or (N, 1) for a custom attribute. The returned Boundary carries counts and accuracies.

    W+ codes (N, num_ws, w_dim) are flattened: a W+ boundary has num_ws * w_dim entries, one direction per layer.
    """
    codes = dataset.codes(space)
    fit = train_boundary(
        codes.reshape(len(codes), -1),
        dataset.scores(attribute) if scores is None else scores,
        ratio=ratio,
        split=split,
        seed=seed,
    )
    return Boundary(
        normal=fit.normal,
        attribute=attribute,
        space=space,
        generator=dataset.manifest["generator"]["name"],
        info={
            "train_accuracy": fit.train_accuracy,
            "validation_accuracy": fit.validation_accuracy,
            "all_accuracy": fit.all_accuracy,
            "counts": fit.counts,
            "ratio": ratio,
            "split": split,
            "seed": seed,
            "run": str(dataset.root),
            "generator_weights": weights_identity(dataset.manifest["generator"]),
            **(info or {}),
        },
    )


def train_all_boundaries(
    dataset: LatentDataset,
    out_dir: str | os.PathLike[str],
    attributes: Sequence[str] | None = None,
    space: str = "z",
    ratio: float = 0.02,
    split: float = 0.7,
    seed: int = 0,
) -> dict[str, Boundary]:
    """Train one boundary per attribute of ``dataset``, then save each at :func:`boundary_path` in ``out_dir``: all
    or none (an attribute that cannot be trained, constant say, is named and nothing is written)."""
    boundaries = {}
    for attribute in attributes or dataset.attributes:
        try:
            boundary = train_run_boundary(dataset, attribute, space=space, ratio=ratio, split=split, seed=seed)
            boundaries[attribute] = boundary
        except FacesteerError as error:
            raise FacesteerError(f"{attribute}: {error} (no boundary was written)") from None
    for attribute, boundary in boundaries.items():
        boundary.save(boundary_path(out_dir, attribute, space))
    return boundaries
