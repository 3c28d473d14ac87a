"""What ``facesteer label`` writes beside a named set: the traversal table's heatmap, strips of the named
directions, and their cosines to InterFaceGAN boundaries of the same attributes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from facesteer.boundaries import Boundary
from facesteer.discovery.directions import Directions
from facesteer.discovery.traversal import TraversalTable, direction_signs_matrix
from facesteer.errors import FacesteerError
from facesteer.generators.base import Generator
from facesteer.images import save_png
from facesteer.training.run_boundaries import boundary_path
from facesteer.visualize import directions_picture, save_heatmap

STRIP_STEPS = (-9, -6, -3, 0, 3, 6, 9)


def check_boundary_folder(folder: str | os.PathLike[str], directions: Directions) -> None:
    """Refuse a ``--boundaries`` folder that is missing or holds no boundary of the directions' space: its cosines
    would silently all be absent."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FacesteerError(f"boundary folder {folder} not found")
    pattern = "*_w.npy" if directions.space == "w" else "*.npy"
    found = [p for p in folder.glob(pattern) if directions.space == "w" or not p.stem.endswith(("_w", "_wp"))]
    if not found:
        named = boundary_path(folder, "ATTR", directions.space).name
        raise FacesteerError(f"{folder} holds no {directions.space} boundaries ({named}, as train-boundary names them)")


def direction_boundary_cosines(named: Directions, folder: str | os.PathLike[str]) -> dict[str, float]:
    """attribute -> cosine of the direction named after it with the boundary of that attribute in ``folder``
    (``ATTR.npy`` for Z, ``ATTR_w.npy`` for W, as ``train-boundary`` names them), where one exists for the same
    generator and space."""
    cosines = {}
    for index in range(len(named)):
        name = named.names[index] if named.names else ""
        path = boundary_path(Path(folder), name, named.space) if name else None
        if path is None or not path.is_file():
            continue
        boundary = Boundary.load(path)
        if boundary.space == named.space and boundary.generator in (None, named.generator):
            cosines[name] = float(np.dot(named.vectors[index], boundary.normal[0]))
    return cosines


def label_figures(generator: Generator, named: Directions, table: TraversalTable, out: Path, seed: int = 0) -> None:
    """``out/table.png`` (directions x attributes r) and ``out/strips.png`` (one face along each named direction)."""
    labels = [named.label(k) for k in range(len(named))]
    signed = table.correlation * direction_signs_matrix(named.info.get("signs", [1.0] * len(named)), table.attributes)
    title = f"{named.method} on {named.generator}: mean Pearson r with the step"
    save_heatmap(out / "table.png", signed, labels, list(table.attributes), title)
    chosen = [k for k in range(len(named)) if named.names and named.names[k]]
    if chosen:
        save_png(out / "strips.png", directions_picture(generator, named, chosen, seed=seed, distances=STRIP_STEPS))
