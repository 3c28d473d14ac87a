"""Ranking samples by their signed distance to a boundary (InterFaceGAN's "samples sorted by distance" figure).

A boundary n . x = 0 splits the latent space; the signed distance of a code x to it is n . x (n is a unit
vector; InterFaceGAN drops the SVM's intercept, so the hyperplane goes through the origin). Sorting a run's
samples by it orders them from the most negative side (least of the attribute) to the most positive.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facesteer.boundaries import Boundary
from facesteer.errors import FacesteerError
from facesteer.generators.base import Generator
from facesteer.latents import LatentDataset


@dataclass(frozen=True)
class Ranking:
    """Chosen samples of a run, ordered by signed distance to a boundary.

    Attributes:
        indices: (k,) row indices into the run, most negative distance first.
        distances: (k,) their signed distances n . x.
        codes: (k, *code shape) their codes in the boundary's space.
        space: that space.
    """

    indices: np.ndarray
    distances: np.ndarray
    codes: np.ndarray
    space: str


def signed_distances(codes: np.ndarray, boundary: Boundary, chunk: int = 65536) -> np.ndarray:
    """n . x for every code (N, d) or W+ code (N, layers, d) of a W+ boundary, read ``chunk`` rows at a time
    (codes may be memory-mapped). Returns (N,) float64."""
    normal = boundary.normal[0].astype(np.float64)
    out = np.empty(len(codes))
    for lo in range(0, len(codes), chunk):
        rows = np.asarray(codes[lo : lo + chunk], dtype=np.float64).reshape(min(chunk, len(codes) - lo), -1)
        if rows.shape[1] != normal.shape[0]:
            raise FacesteerError(
                f"boundary {boundary.attribute!r} has dimension {len(normal)}, the codes {rows.shape[1]}"
            )
        out[lo : lo + chunk] = rows @ normal
    return out


def rank_run(dataset: LatentDataset, boundary: Boundary, generator: Generator, num: int = 8) -> Ranking:
    """``num`` samples of a run spread evenly over its ranking by signed distance to ``boundary``: the most
    negative, the most positive and evenly spaced ranks between them.

    Raises:
        FacesteerError: the boundary does not fit the run's codes (space or dimension), the run does not store
            the boundary's space, or ``num`` is not in 2..(samples in the run).
    """
    space = boundary.space
    if space not in dataset.spaces:
        raise FacesteerError(f"{dataset.root} stores codes in {', '.join(dataset.spaces)}, not in {space!r}")
    boundary.check_applies_to(generator, space)
    if not 2 <= num <= dataset.num:
        raise FacesteerError(f"--num must be between 2 and the run's {dataset.num} samples, got {num}")
    codes = dataset.codes(space)
    distances = signed_distances(codes, boundary)
    order = np.argsort(distances, kind="stable")
    chosen = order[np.round(np.linspace(0, len(order) - 1, num)).astype(int)]
    return Ranking(
        indices=chosen,
        distances=distances[chosen],
        codes=np.asarray(codes[np.sort(chosen)])[np.argsort(np.argsort(chosen))],
        space=space,
    )


def rank_strip_path(run: str | os.PathLike[str], boundary: Boundary) -> Path:
    """Where ``facesteer rank`` puts its strip unless told: ``RUN/figures/rank_ATTRIBUTE[_SPACE].png``."""
    suffix = "" if boundary.space == "z" else f"_{boundary.space}"
    return Path(run) / "figures" / f"rank_{boundary.attribute}{suffix}.png"
