"""Edit a real photo (or an anime picture): align it, invert it, move its code along a boundary, synthesize.

This is the Neural Face Editor's pipeline, with facesteer's pieces: :mod:`facesteer.alignment` puts the
picture in the generator's framing, :func:`facesteer.inversion.invert` finds its code, and the code moves along
an InterFaceGAN boundary (optionally projected off condition boundaries, so those attributes stay) as random
codes do: code + alpha * n.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facesteer.alignment import Aligner, Framing
from facesteer.boundaries import Boundary
from facesteer.editing import shift
from facesteer.errors import FacesteerError
from facesteer.generators.base import Generator
from facesteer.images import image_grid, load_image
from facesteer.inversion import Inversion, Recipe, invert
from facesteer.inversion.encoder import InversionEncoder


@dataclass
class PhotoEdits:
    """What :func:`edit_photos` returns.

    Attributes:
        aligned: uint8 (N, R, R, 3), the pictures in the generator's framing.
        inversion: their :class:`~facesteer.inversion.Inversion` (codes, reconstructions, time).
        alphas: the edit steps, (A,).
        edits: uint8 (N, A, R, R, 3), the edited faces.
        boundary: the boundary actually used (conditioned if conditions were given).
    """

    aligned: np.ndarray
    inversion: Inversion
    alphas: np.ndarray
    edits: np.ndarray
    boundary: Boundary

    def grid(self) -> np.ndarray:
        """One row per picture: aligned original | reconstruction | one edit per alpha."""
        rows = [np.concatenate([self.aligned[i : i + 1], self.inversion.reconstructions[i : i + 1], self.edits[i]])
                for i in range(len(self.aligned))]  # fmt: skip
        return image_grid(np.concatenate(rows), columns=2 + len(self.alphas))


def conditioned_boundary(boundary: Boundary, conditions: Sequence[Boundary]) -> Boundary:
    """``boundary`` projected off ``conditions`` (as is if there are none)."""
    return boundary.conditioned_on(*conditions) if conditions else boundary


def edit_codes(
    generator: Generator, codes: np.ndarray, space: str, boundary: Boundary, alphas: Sequence[float]
) -> np.ndarray:
    """Images (N, A, R, R, 3) of ``codes`` moved by each alpha along ``boundary``."""
    boundary.check_applies_to(generator, space)
    edited = [generator.synthesize(shift(codes, boundary.normal, float(alpha)), space) for alpha in alphas]
    return np.stack(edited, axis=1)


def align_pictures(
    paths: Sequence[str | os.PathLike[str]], framing: Framing, size: int, models: str | os.PathLike[str] | None
) -> np.ndarray:
    """Read and align every picture (all or none: the first without a face raises, naming it)."""
    with Aligner(framing, size, models) as aligner:
        return np.stack([aligner.align(load_image(path), str(path)) for path in paths])


def edit_photos(
    paths: Sequence[str | os.PathLike[str]],
    generator: Generator,
    framing: Framing,
    boundary: Boundary,
    alphas: Sequence[float],
    conditions: Sequence[Boundary] = (),
    method: str = "hybrid",
    recipe: Recipe | None = None,
    encoder: InversionEncoder | None = None,
    models: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> PhotoEdits:
    """Align, invert and edit the pictures at ``paths``; see :class:`PhotoEdits`."""
    if not alphas:
        raise FacesteerError("give at least one --alpha")
    missing = [str(path) for path in paths if not Path(path).is_file()]
    if missing:
        raise FacesteerError(f"picture {missing[0]} not found")
    used = conditioned_boundary(boundary, conditions)
    aligned = align_pictures(paths, framing, generator.resolution, models)
    inversion = invert(aligned, generator, method, recipe, encoder, progress=progress)
    edits = edit_codes(generator, inversion.codes, inversion.space, used, alphas)
    return PhotoEdits(aligned, inversion, np.asarray(alphas, np.float64), edits, used)
