"""Pictures: edit grids (faces x steps along a direction) and labelled heatmaps of matrices."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from facesteer.boundaries import Boundary
from facesteer.discovery.directions import Directions
from facesteer.editing import Layers, fix_codes, interpolate, shift
from facesteer.files import atomic_path
from facesteer.generators.base import Generator
from facesteer.images import image_grid, save_png

ORIGINAL_FRAME = (220, 30, 30)


def _save_figure(figure: Any, path: str | os.PathLike[str]) -> Path:
    """Lay out a matplotlib figure, write it to ``path`` as PNG atomically, and close it."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    path = Path(path)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100, format="png")
    plt.close(figure)
    return path


def _label_strip(width: int, cells: Sequence[tuple[int, str]], height: int = 14) -> np.ndarray:
    strip = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(strip)
    font = ImageFont.load_default()
    for center, text in cells:
        left = center - draw.textlength(text, font=font) / 2
        draw.text((left, 1), text, fill=(0, 0, 0), font=font)
    return np.asarray(strip)


def edit_grid(
    generator: Generator,
    codes: np.ndarray,
    direction: np.ndarray,
    start: float = -3.0,
    end: float = 3.0,
    steps: int = 7,
    space: str = "z",
    padding: int = 2,
    layers: Layers = None,
    relative: bool = False,
) -> np.ndarray:
    """A picture of faces walked along ``direction``: one row per code, one column per step.

    The first column is each original face, framed in red; the next ``steps`` columns are the faces at signed
    distances linspace(start, end, steps) from the boundary (:func:`facesteer.editing.interpolate`), or, with
    ``relative``, moved by those amounts from where they are (code + d n: for directions without a hyperplane,
    such as SeFa's). A strip on top gives each column's distance.

    Args:
        codes: (N, d) codes of ``space``, or (N, num_ws, d) W+ codes.
        direction: (1, d) or (d,) boundary normal.
        layers: W+ only: the layers to move (default all).

    Returns:
        uint8 (H, W, 3) picture.
    """
    if relative:
        moves = [shift(codes, direction, d, layers) for d in np.linspace(start, end, steps)]
        walks = np.stack(moves, axis=1)
    else:
        walks = interpolate(codes, direction, start, end, steps, layers)  # (N, steps, *code shape)
    size = generator.resolution
    originals = generator.synthesize(np.asarray(codes, np.float32), space)
    edited = generator.synthesize(walks.reshape(-1, *walks.shape[2:]), space)
    edited = edited.reshape(len(codes), steps, size, size, 3)
    cell = size + padding
    gap = cell // 3  # extra space separating the originals from the walk
    width = padding + cell * (steps + 1) + gap
    grid = np.full((padding + cell * len(codes), width, 3), 255, np.uint8)
    for row in range(len(codes)):
        top = padding + row * cell
        frame = originals[row].copy()
        frame[:2], frame[-2:], frame[:, :2], frame[:, -2:] = (
            ORIGINAL_FRAME,
            ORIGINAL_FRAME,
            ORIGINAL_FRAME,
            ORIGINAL_FRAME,
        )
        grid[top : top + size, padding : padding + size] = frame
        for column in range(steps):
            left = padding + gap + (column + 1) * cell
            grid[top : top + size, left : left + size] = edited[row, column]
    distances = np.linspace(start, end, steps)
    labels = [(padding + size // 2, "orig")] + [
        (padding + gap + (i + 1) * cell + size // 2, f"{d:+.1f}") for i, d in enumerate(distances)
    ]
    return np.concatenate([_label_strip(width, labels), grid])


def save_heatmap(
    path: str | os.PathLike[str],
    matrix: np.ndarray,
    rows: Sequence[str],
    columns: Sequence[str],
    title: str,
    symmetric: bool = True,
    fmt: str = "{:.2f}",
) -> Path:
    """Save a labelled heatmap of ``matrix`` (len(rows), len(columns)) as PNG, each cell annotated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix, dtype=float)
    limit = float(np.nanmax(np.abs(matrix))) or 1.0
    figure, axes = plt.subplots(figsize=(1.1 * len(columns) + 2, 0.8 * len(rows) + 1.5))
    image = axes.imshow(matrix, cmap="RdBu_r", vmin=-limit if symmetric else None, vmax=limit if symmetric else None)
    axes.set_xticks(range(len(columns)), columns, rotation=30, ha="right")
    axes.set_yticks(range(len(rows)), rows)
    for (i, j), value in np.ndenumerate(matrix):
        text = "-" if np.isnan(value) else fmt.format(value)
        color = "white" if abs(value) > 0.6 * limit else "black"
        axes.text(j, i, text, ha="center", va="center", fontsize=9, color=color)
    axes.set_title(title, fontsize=10)
    figure.colorbar(image, ax=axes, shrink=0.8)
    return _save_figure(figure, path)


def save_edit_grid(path: str | os.PathLike[str], *args, **kwargs) -> Path:
    """:func:`edit_grid` written to ``path`` as PNG."""
    return save_png(path, edit_grid(*args, **kwargs))


def save_identity_plot(
    path: str | os.PathLike[str], kept: dict[str, dict[str, list[dict[str, float]]]], threshold: float, title: str
) -> Path:
    """Share of faces whose identity is kept against |alpha|, one line per boundary, per kind.

    Args:
        kept: kind (``"plain"``, ``"conditioned"``) -> :func:`facesteer.evaluation.metrics.identity_kept` result.
        threshold: the same-identity distance used, for the caption.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.0))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = {"plain": "-", "conditioned": "--"}
    for kind, by_name in kept.items():
        for index, (name, rows) in enumerate(by_name.items()):
            alphas = [0.0] + [row["alpha"] for row in rows]
            shares = [1.0] + [row["kept"] for row in rows]
            axes.plot(alphas, shares, styles.get(kind, ":"), marker="o", color=colors[index % len(colors)],
                      label=f"{name} ({kind})")  # fmt: skip
    axes.set_xlabel("|alpha| (step along the boundary)")
    axes.set_ylabel(f"identity kept (distance < {threshold:.3f})")
    axes.set_ylim(0, 1.02)
    axes.grid(alpha=0.3)
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=7, ncol=2)
    return _save_figure(figure, path)


def labelled_strip(images: np.ndarray, labels: Sequence[str], padding: int = 2, scale: int = 1) -> np.ndarray:
    """Faces side by side (N, H, W, 3) uint8, each with its label in a strip underneath.

    ``scale`` enlarges the faces (nearest neighbour) so small faces stay readable beside their labels.
    """
    images = np.asarray(images)
    if scale > 1:
        images = images.repeat(scale, axis=1).repeat(scale, axis=2)
    count, height, width, _ = images.shape
    cell = width + padding
    row = np.full((height + 2 * padding, padding + cell * count, 3), 255, np.uint8)
    for index, image in enumerate(images):
        row[padding : padding + height, padding + index * cell : padding + index * cell + width] = image
    centres = [(padding + index * cell + width // 2, label) for index, label in enumerate(labels)]
    return np.concatenate([row, _label_strip(row.shape[1], centres)])


def fix_grid(
    generator: Generator,
    boundary: Boundary,
    alpha: float,
    below: float | None = None,
    num: int = 8,
    seed: int = 0,
    columns: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Artifact correction, pictured: ``num`` faces of ``seed`` (top) and the same faces moved by ``alpha``
    along the quality ``boundary`` (below; :func:`facesteer.editing.fix_codes`, only those under ``below``
    when given).

    Returns:
        (uint8 picture (H, W, 3), moved (num,) bool).
    """
    boundary.check_applies_to(generator, boundary.space)
    codes = generator.map(generator.sample_z(num, seed), boundary.space)
    fixed, moved = fix_codes(codes, boundary.normal, alpha, below)
    rows = [image_grid(generator.synthesize(c, boundary.space), columns or num) for c in (codes, fixed)]
    gap = np.full((6, rows[0].shape[1], 3), 255, np.uint8)
    return np.concatenate([rows[0], gap, rows[1]]), moved


def traversal_grid(
    generator: Generator,
    code: np.ndarray,
    vectors: np.ndarray,
    labels: Sequence[str],
    distances: Sequence[float],
    space: str,
    layers: Layers = None,
    padding: int = 2,
) -> np.ndarray:
    """One face walked along several directions: one row per direction, one column per step code + d * n
    (no projection: unsupervised directions have no hyperplane to measure from), the direction's label on the
    left and the steps on top.

    Args:
        code: (d,) a code of ``space``, or (num_ws, d) a W+ code.
        vectors: (K, d) unit directions.
        labels: K row labels.
        distances: the steps d.
        layers: W+ only: the rows to move (default all).

    Returns:
        uint8 (H, W, 3) picture.
    """
    code = np.asarray(code, dtype=np.float32)
    steps = [shift(code[None], vector, d, layers)[0] for vector in vectors for d in distances]
    faces = generator.synthesize(np.stack(steps), space)
    size, columns = generator.resolution, len(distances)
    label_width = 8 + max(int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(t)) for t in labels)
    cell = size + padding
    grid = np.full((padding + cell * len(vectors), label_width + padding + cell * columns, 3), 255, np.uint8)
    for row, label in enumerate(labels):
        top = padding + row * cell
        text = Image.new("RGB", (label_width, size), "white")
        ImageDraw.Draw(text).text((2, size // 2 - 6), label, fill=(0, 0, 0), font=ImageFont.load_default())
        grid[top : top + size, :label_width] = np.asarray(text)
        for column in range(columns):
            left = label_width + padding + column * cell
            grid[top : top + size, left : left + size] = faces[row * columns + column]
    header = [(label_width + padding + i * cell + size // 2, f"{d:+g}") for i, d in enumerate(distances)]
    return np.concatenate([_label_strip(grid.shape[1], header), grid])


def directions_picture(
    generator: Generator,
    directions: Directions,
    indices: Sequence[int],
    seed: int = 0,
    distances: Sequence[float] = (-3, -2, -1, 0, 1, 2, 3),
) -> np.ndarray:
    """:func:`traversal_grid` of face 0 of ``seed`` along the chosen directions of a set, each applied where it
    belongs: in its space, or on its W+ layers when the set names some."""
    space = "wp" if directions.layers is not None else directions.space
    directions.boundary(indices[0]).check_applies_to(generator, space)
    code = generator.map(generator.sample_z(1, seed), space)[0]
    labels = [directions.label(i) for i in indices]
    return traversal_grid(generator, code, directions.vectors[list(indices)], labels, distances, space,
                          directions.layers)  # fmt: skip
