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
from typing import Any

import numpy as np

from facesteer.alignment import Aligner, Framing
from facesteer.boundaries import Boundary
from facesteer.editing import shift
from facesteer.errors import FacesteerError
from facesteer.files import staged_folder, write_json
from facesteer.generators.base import Generator
from facesteer.generators.stylegan2 import StyleGAN2Generator, save_safetensors
from facesteer.images import image_grid, load_image, save_png
from facesteer.inversion import Inversion, InversionOptions, ResolvedInversion, invert


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


def boundary_edit_space(generator: Generator, boundary: Boundary, space: str) -> str:
    """The space codes of ``space`` are edited in along ``boundary``: their own, or W for z codes and a W
    boundary (z maps to w exactly); checked, so a mismatch is refused before any inversion."""
    chosen = "w" if space == "z" and boundary.space == "w" and "w" in generator.spaces else space
    boundary.check_applies_to(generator, chosen)
    return chosen


def edit_codes(
    generator: Generator, codes: np.ndarray, space: str, boundary: Boundary, alphas: Sequence[float]
) -> np.ndarray:
    """Images (N, A, R, R, 3) of ``codes`` (of ``space``) moved by each alpha along ``boundary``."""
    chosen = boundary_edit_space(generator, boundary, space)
    if chosen != space:
        codes = generator.map(codes, chosen)
    edited = [generator.synthesize(shift(codes, boundary.normal, float(alpha)), chosen) for alpha in alphas]
    return np.stack(edited, axis=1)


def check_outputs(paths: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str] | None = None) -> None:
    """Refuse pictures whose outputs would collide (one PNG per file stem) or, given the output folder ``out``,
    overwrite one of the pictures themselves (OUT/STEM.png)."""
    stems = [Path(path).stem for path in paths]
    repeated = sorted({stem for stem in stems if stems.count(stem) > 1})
    if repeated:
        raise FacesteerError(f"pictures share the name {repeated[0]!r}: their outputs would overwrite each other")
    if out is not None:
        for stem in stems:
            check_not_a_picture(Path(out) / f"{stem}.png", paths)


def check_not_a_picture(target: str | os.PathLike[str], paths: Sequence[str | os.PathLike[str]]) -> None:
    """Refuse an output file that is one of the input pictures (the user's photo would be replaced)."""
    pictures = {Path(path).resolve() for path in paths}
    if Path(target).resolve() in pictures:
        raise FacesteerError(f"writing {target} would replace that picture itself: choose another --out")


def save_inversion(
    out: str | os.PathLike[str],
    paths: Sequence[str | os.PathLike[str]],
    aligned: np.ndarray,
    result: Inversion,
    summary: dict[str, Any],
) -> Path:
    """Write OUT/codes.npy (rows in ``paths`` order), OUT/STEM.png (aligned | reconstruction) per picture and
    OUT/inversion.json (``summary`` plus the result's space and times), all or none (:func:`staged_folder`: a
    failure midway leaves a previous run's files as they were). A ``pti`` result
    also writes each picture's tuned generator, OUT/STEM.generator.safetensors (a facesteer StyleGAN2 file in
    fp32: ``load_generator(path).synthesize(codes[i:i+1], space)`` draws the reconstruction again, exactly)."""
    if result.generators is not None:
        check_tuned_saveable(result.generators[0])
    with staged_folder(out) as staging:
        for i, (path, original, rebuilt) in enumerate(zip(paths, aligned, result.reconstructions, strict=True)):
            save_png(staging / f"{Path(path).stem}.png", image_grid(np.stack([original, rebuilt]), columns=2))
            if result.generators is not None:
                tuned = result.generators[i]
                assert isinstance(tuned, StyleGAN2Generator)  # (checked above)
                save_safetensors(tuned.network, staging / f"{Path(path).stem}.generator.safetensors", half=False)
        np.save(staging / "codes.npy", result.codes)  # (the staging folder is what makes the set atomic)
        write_json(staging / "inversion.json", {**summary, "space": result.space, "pictures": [str(p) for p in paths],
                   "seconds": round(result.seconds, 3), "seconds_per_picture": round(result.seconds / len(paths), 3),
                   "final_loss": result.losses[-1] if result.losses else None,
                   "final_tuning_loss": result.tuning_losses[-1] if result.tuning_losses else None})  # fmt: skip
    return Path(out)


def check_tuned_saveable(generator: Generator) -> None:
    """Refuse to save pivotal tuning's generators for a generator facesteer cannot write (the command line refuses
    such a generator before any work, in :func:`facesteer.inversion.resolve_tuning`; this guards the library)."""
    if not isinstance(generator, StyleGAN2Generator):
        raise FacesteerError(f"invert --method pti writes tuned generators as StyleGAN2 files; {generator.name} is "
                             "not a StyleGAN2")  # fmt: skip


def align_pictures(
    paths: Sequence[str | os.PathLike[str]], framing: Framing, size: int, models: str | os.PathLike[str] | None
) -> np.ndarray:
    """Read and align every picture (all or none: the first without a face raises, naming it)."""
    with Aligner(framing, size, models) as aligner:
        return np.stack([aligner.align(load_image(path), str(path)) for path in paths])


def check_pictures_exist(paths: Sequence[str | os.PathLike[str]]) -> None:
    missing = [str(path) for path in paths if not Path(path).is_file()]
    if missing:
        raise FacesteerError(f"picture {missing[0]} not found")


def invert_photos(
    paths: Sequence[str | os.PathLike[str]],
    generator: Generator,
    framing: Framing,
    inversion: ResolvedInversion | None = None,
    models: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, Inversion]:
    """Align and invert the pictures at ``paths``: (aligned (N, R, R, 3) uint8, their inversion).

    ``inversion`` defaults to :class:`InversionOptions`' defaults on ``generator``."""
    check_pictures_exist(paths)
    how = inversion or InversionOptions().resolve(generator)
    aligned = align_pictures(paths, framing, generator.resolution, models)
    inverted = invert(aligned, generator, how.method, how.recipe, how.encoder, progress=progress, tuning=how.tuning)
    return aligned, inverted


def edit_photos(
    paths: Sequence[str | os.PathLike[str]],
    generator: Generator,
    framing: Framing,
    boundary: Boundary,
    alphas: Sequence[float],
    conditions: Sequence[Boundary] = (),
    inversion: ResolvedInversion | None = None,
    models: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> PhotoEdits:
    """Align, invert and edit the pictures at ``paths``; see :class:`PhotoEdits`. ``inversion`` defaults to
    :class:`InversionOptions`' defaults on ``generator``."""
    if not alphas:
        raise FacesteerError("give at least one alpha")
    check_pictures_exist(paths)
    how = inversion or InversionOptions().resolve(generator)
    used = conditioned_boundary(boundary, conditions)
    boundary_edit_space(generator, used, how.recipe.space)  # refused now, not after the inversion
    aligned, inverted = invert_photos(paths, generator, framing, how, models, progress)
    edits = np.concatenate([edit_codes(inverted.generator_for(i, generator), inverted.codes[i : i + 1],
                                       inverted.space, used, alphas) for i in range(len(aligned))])  # fmt: skip
    return PhotoEdits(aligned, inverted, np.asarray(alphas, np.float64), edits, used)
