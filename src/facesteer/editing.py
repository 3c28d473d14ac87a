"""Editing latent codes along a direction: z' = z + alpha * n, with InterFaceGAN's semantics.

Codes are either single vectors (N, d) (Z or W space) or per-layer (N, k, d) (W+). A direction is (1, d) or
(d,). For W+ codes an optional ``layers`` selection (indices, a slice or a range) limits the edit to those
layers, as in style mixing; by default every layer moves.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facesteer.boundaries import as_unit_row
from facesteer.errors import FacesteerError
from facesteer.generators.base import Generator

Layers = Sequence[int] | range | slice | None


def _direction_for(codes: np.ndarray, direction: np.ndarray) -> np.ndarray:
    if codes.ndim not in (2, 3):
        raise FacesteerError(f"codes must have shape (N, d) or (N, layers, d), got {codes.shape}")
    n = as_unit_row(direction)[0]
    if codes.ndim == 3 and n.shape[0] == codes.shape[1] * codes.shape[2]:
        return n.reshape(codes.shape[1:])  # a boundary trained in W+ itself (flattened layers x d)
    if n.shape[0] != codes.shape[-1]:
        raise FacesteerError(f"direction has dimension {n.shape[0]} but the codes have dimension {codes.shape[-1]}")
    return n


def _layer_mask(codes: np.ndarray, layers: Layers) -> np.ndarray:
    """(k,) float mask of the W+ layers to edit."""
    count = codes.shape[1]
    mask = np.zeros(count)
    if layers is None:
        mask[:] = 1
    else:
        try:
            mask[layers if isinstance(layers, slice) else list(layers)] = 1
        except IndexError:
            raise FacesteerError(f"layers {layers} out of range for codes with {count} layers") from None
    return mask


def shift(codes: np.ndarray, direction: np.ndarray, alpha: float | np.ndarray, layers: Layers = None) -> np.ndarray:
    """Move codes by ``alpha`` along the unit direction: z + alpha * n.

    Args:
        codes: (N, d) or (N, k, d).
        direction: (1, d) or (d,); normalised here.
        alpha: step, a scalar or one per code (N,).
        layers: W+ only: the layers to move (default all).

    Returns:
        float32 array shaped like ``codes``.
    """
    codes = np.asarray(codes, dtype=np.float64)
    n = _direction_for(codes, direction)
    alpha = np.asarray(alpha, dtype=np.float64)
    if alpha.ndim == 1 and len(alpha) != len(codes):
        raise FacesteerError(f"alpha has {len(alpha)} values for {len(codes)} codes")
    alpha = alpha.reshape((-1,) + (1,) * (codes.ndim - 1)) if alpha.ndim == 1 else alpha
    if codes.ndim == 2:
        if layers is not None:
            raise FacesteerError("layers apply to W+ codes (N, layers, d) only")
        return (codes + alpha * n).astype(np.float32)
    return (codes + alpha * _layer_mask(codes, layers)[None, :, None] * n).astype(np.float32)


def interpolate(
    codes: np.ndarray,
    direction: np.ndarray,
    start: float = -3.0,
    end: float = 3.0,
    steps: int = 7,
    layers: Layers = None,
) -> np.ndarray:
    """Walk codes across the hyperplane n . z = 0, InterFaceGAN's ``linear_interpolate``.

    For single-vector codes, step i is z + (s_i - z . n) n with s = linspace(start, end, steps): it lands at
    signed distance exactly s_i from the hyperplane whatever z's own distance was. For W+ codes (N, k, d)
    step i is z + s_i n on the chosen layers, without projection (as InterFaceGAN does).

    Returns:
        float32 (N, steps, d) or (N, steps, k, d).
    """
    if steps < 1:
        raise FacesteerError(f"steps must be >= 1, got {steps}")
    codes = np.asarray(codes, dtype=np.float64)
    n = _direction_for(codes, direction)
    distances = np.linspace(start, end, steps)
    if codes.ndim == 2:
        if layers is not None:
            raise FacesteerError("layers apply to W+ codes (N, layers, d) only")
        offsets = distances[None, :] - (codes @ n)[:, None]  # (N, steps)
        return (codes[:, None, :] + offsets[:, :, None] * n).astype(np.float32)
    mask = _layer_mask(codes, layers)[None, None, :, None]
    return (codes[:, None] + distances[None, :, None, None] * mask * n).astype(np.float32)


def wp_layers(generator: Generator, space: str, layers: tuple[int, int] | None) -> range | None:
    """The W+ layers ``FIRST..LAST`` (inclusive) of ``generator`` to edit, as a range; None = every layer.

    Raises:
        FacesteerError: layers given for a space other than ``wp``, or out of the generator's range.
    """
    if layers is None:
        return None
    if space != "wp":
        raise FacesteerError("a layer range applies to W+ codes (space wp) only")
    first, last = layers
    count = generator.space_shape("wp")[0]
    if not 0 <= first <= last < count:
        raise FacesteerError(f"layers {first} {last} out of range 0..{count - 1} for {generator.name}")
    return range(first, last + 1)


def fix_codes(
    codes: np.ndarray, direction: np.ndarray, alpha: float, below: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Artifact correction (InterFaceGAN): move codes by +alpha along a quality boundary's normal.

    Args:
        codes: (N, d) single-vector codes.
        direction: (1, d) or (d,) normal of the quality boundary (positive side = realistic).
        alpha: step toward the realistic side, >= 0.
        below: move only the codes whose signed distance n . x is below this (the low-quality ones);
            None moves every code.

    Returns:
        (moved codes (N, d) float32, moved (N,) bool: which codes were moved).
    """
    if alpha < 0:
        raise FacesteerError(f"alpha moves toward the realistic side and must be >= 0, got {alpha}")
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2:
        raise FacesteerError(f"fix moves single-vector codes (N, d), got {codes.shape}")
    n = _direction_for(codes, direction)
    moved = np.ones(len(codes), bool) if below is None else codes @ n < below
    return shift(codes, n, np.where(moved, alpha, 0.0)), moved


def parse_layer_range(text: str) -> list[int]:
    """``"A-B"`` (inclusive) or ``"A"`` -> the W+ rows [A, ..., B].

    Raises:
        FacesteerError: not of that form, or B < A.
    """
    first, _, last = text.partition("-")
    try:
        start, end = int(first), int(last or first)
    except ValueError:
        raise FacesteerError(f"layers must be FIRST-LAST (for example 0-3) or one index, got {text!r}") from None
    if not 0 <= start <= end:
        raise FacesteerError(f"layers {text!r}: need 0 <= FIRST <= LAST")
    return list(range(start, end + 1))
