"""SeFa: closed-form factorisation of the weights a latent code enters (Shen & Zhou, CVPR 2021).

A code w drives the first thing it touches linearly: y = A^T w (the style channels of a StyleGAN layer, or the
first layer's units for a GAN without a mapping). The directions n that change y the most, max |A^T n| over
unit n, are the eigenvectors of A A^T with the largest eigenvalues. As genforce/sefa does it:

1. take the weight of each chosen layer as (d, C) and concatenate them along C;
2. normalise every column to unit length;
3. eigenvectors of A A^T (a symmetric solver), sorted by eigenvalue, largest first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facesteer.discovery.directions import Directions, canonical_signs
from facesteer.errors import FacesteerError
from facesteer.generators.base import Generator, weights_identity


def unit_columns(weight: np.ndarray) -> np.ndarray:
    """(d, C) -> the same columns at unit length; all-zero columns (dead channels) are dropped.

    Raises:
        FacesteerError: no non-zero column, or non-finite weights.
    """
    weight = np.asarray(weight, dtype=np.float64)
    if weight.ndim != 2:
        raise FacesteerError(f"SeFa factorises a (d, C) weight, got shape {weight.shape}")
    if not np.isfinite(weight).all():
        raise FacesteerError("the weights hold NaN or infinite values")
    norms = np.linalg.norm(weight, axis=0)
    if not (norms > 0).any():
        raise FacesteerError("every weight column is zero: nothing to factorise")
    return weight[:, norms > 0] / norms[norms > 0]


def factorize_weight(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Steps 2 and 3 on a (d, C) weight.

    Returns:
        (directions (d, d) float64, one unit vector per row, largest eigenvalue first; eigenvalues (d,)).
    """
    columns = unit_columns(weight)
    values, vectors = np.linalg.eigh(columns @ columns.T)
    order = np.argsort(values, kind="stable")[::-1]
    return canonical_signs(vectors[:, order].T), values[order]


def sefa(generator: Generator, layers: Sequence[int] | None = None) -> Directions:
    """SeFa's directions of ``generator``: in W for style-based generators (from the style weights of the W+
    ``layers``, default all), in Z for the others (from the first layer's weight).

    Returns:
        :class:`Directions`, ``values`` = eigenvalues of A A^T, ``layers`` = the W+ rows they are meant for.
    """
    weight = generator.code_weights(layers)
    directions, values = factorize_weight(weight)
    space = generator.edit_space
    chosen = None if layers is None or space == "z" else sorted(set(layers))
    info = {"columns": int(weight.shape[1]), "generator_weights": weights_identity(generator.config())}
    return Directions(directions, "sefa", generator.name, space, layers=chosen, values=values, info=info)
