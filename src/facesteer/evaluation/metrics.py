"""The numbers InterFaceGAN reports about boundaries: cosines, score correlations, edit effects."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from facesteer.attributes.base import AttributeScorer
from facesteer.attributes.identity import embedding_distance
from facesteer.boundaries import Boundary, as_unit_row
from facesteer.editing import shift
from facesteer.engines import Engine, Faces, LocalEngine
from facesteer.errors import FacesteerError
from facesteer.generators import Generator


def cosine_matrix(normals: Sequence[np.ndarray]) -> np.ndarray:
    """(k, k) cosines between directions, each (1, d) or (d,)."""
    stacked = np.concatenate([as_unit_row(n) for n in normals])
    return stacked @ stacked.T


def boundary_cosines(boundaries: Sequence[Boundary]) -> np.ndarray:
    """(k, k) cosines between boundaries of one latent space of one generator.

    Raises:
        FacesteerError: the boundaries differ in dimension, in space, or in the generator they were trained on
            (unknown generators, as in InterFaceGAN's published files, are not compared).
    """
    for what, values in (
        ("dimensions", {b.dim for b in boundaries}),
        ("spaces", {b.space for b in boundaries}),
        ("generators", {b.generator for b in boundaries} - {None}),
    ):
        if len(values) > 1:
            raise FacesteerError(f"boundaries have different {what}: {sorted(map(str, values))}")
    return cosine_matrix([b.normal for b in boundaries])


def score_correlation(scores: np.ndarray) -> np.ndarray:
    """(k, k) Pearson correlation of score columns (N, k), each pair over the rows where both are known."""
    scores = np.asarray(scores, dtype=np.float64)
    count = scores.shape[1]
    matrix = np.eye(count)
    for i in range(count):
        for j in range(i + 1, count):
            both = ~np.isnan(scores[:, i]) & ~np.isnan(scores[:, j])
            a, b = scores[both, i], scores[both, j]
            value = np.corrcoef(a, b)[0, 1] if both.sum() > 2 and a.std() > 0 and b.std() > 0 else np.nan
            matrix[i, j] = matrix[j, i] = value
    return matrix


def edit_effects(
    generator: Generator,
    scorer: AttributeScorer,
    codes: np.ndarray,
    directions: dict[str, np.ndarray],
    alpha: float = 2.0,
    space: str = "z",
    progress: bool = True,
    engine: Engine | None = None,
) -> np.ndarray:
    """Mean change of every attribute per unit step along each direction, by central differences.

    Each code moves to z + alpha*n and z - alpha*n; both faces are scored and the effect is the mean over codes
    (with a face found both times) of (score(z + alpha*n) - score(z - alpha*n)) / (2 alpha).

    Args:
        codes: (M, d) held-out codes.
        directions: name -> (1, d) direction.
        engine: where the faces are made and scored (:mod:`facesteer.engines`; default: here, with ``generator``
            and ``scorer``); the same numbers on any engine.

    Returns:
        (len(directions), len(scorer.attributes)) float64, in each attribute's own units per unit step.
    """
    engine = engine or LocalEngine(generator, scorer)
    bar = tqdm(total=len(directions) * 2 * len(codes), desc="edit effects", unit="img", disable=not progress)
    # one piece per direction and sign, its codes scored in one call (as a scorer batching by size sees them)
    pieces = (Faces(shift(codes, direction, sign * alpha), space, batch_size=len(codes))
              for direction in directions.values() for sign in (1.0, -1.0))  # fmt: skip
    scores = []
    for _, piece_scores in engine.score(pieces):
        scores.append(piece_scores)
        bar.update(len(codes))
    bar.close()
    scores = np.stack(scores).reshape(len(directions), 2, len(codes), -1)
    difference = (scores[:, 0] - scores[:, 1]) / (2 * alpha)
    with np.errstate(invalid="ignore"):
        return np.nanmean(difference, axis=1).astype(np.float64)


def diagonal_dominance(effects: np.ndarray) -> dict[str, float]:
    """Summaries of a square standardized effect matrix: is each edit mostly about its own attribute?"""
    diagonal = np.abs(np.diag(effects))
    off = np.abs(effects - np.diag(np.diag(effects)))
    return {
        "mean_abs_diagonal": float(diagonal.mean()),
        "mean_abs_off_diagonal": float(off.sum() / (off.size - len(diagonal))),
        "rows_where_diagonal_is_largest": int(np.sum(diagonal >= off.max(axis=1))),
    }


def identity_summary(original: np.ndarray, edited: np.ndarray, threshold: float) -> dict[str, float]:
    """Did the edited faces keep their identity? Over the faces whose original has a face found:

    - ``kept``: share whose edited face is found and within ``threshold`` of the original (a face lost by the
      edit counts as not kept);
    - ``lost``: share whose edited face is not found at all;
    - ``mean_distance``: mean embedding distance over the pairs found in both;
    - ``faces``: how many originals had a face found.

    Args:
        original, edited: (N, 128) identity embeddings, NaN rows where no face was found.
    """
    have_original = ~np.isnan(original[:, 0])
    lost = have_original & np.isnan(edited[:, 0])
    distances = embedding_distance(original, edited)[have_original & ~lost]
    faces = int(have_original.sum())
    return {
        "kept": float(np.sum(distances < threshold) / faces) if faces else float("nan"),
        "lost": float(lost.sum() / faces) if faces else float("nan"),
        "mean_distance": float(distances.mean()) if len(distances) else float("nan"),
        "faces": faces,
    }


def identity_kept(
    generator: Generator,
    embedder: AttributeScorer,
    codes: np.ndarray,
    directions: dict[str, np.ndarray],
    threshold: float,
    alphas: Sequence[float] = (1.0, 2.0, 3.0),
    space: str = "z",
    progress: bool = True,
) -> dict[str, list[dict[str, float]]]:
    """Does an edit keep the person? Identity of each edited face against its original.

    Each code moves to z + a*n and z - a*n for every a in ``alphas``; both faces are compared with the
    original (:func:`identity_summary` over the 2 M edits, with ``embedder``: the ``identity`` scorer).

    Args:
        codes: (M, d) held-out codes.
        directions: name -> (1, d) direction.
        threshold: distance under which two faces count as the same person (the calibrated one).

    Returns:
        name -> one :func:`identity_summary` per alpha, with ``alpha`` added.
    """
    original = embedder.score(generator.synthesize(codes, space))
    both_signs = np.concatenate([original, original])
    bar = tqdm(total=len(directions) * 2 * len(alphas) * len(codes), desc="identity", unit="img", disable=not progress)
    result = {}
    for name, direction in directions.items():
        rows = []
        for alpha in alphas:
            edited = []
            for sign in (1.0, -1.0):
                edited.append(embedder.score(generator.synthesize(shift(codes, direction, sign * alpha), space)))
                bar.update(len(codes))
            rows.append({"alpha": float(alpha), **identity_summary(both_signs, np.concatenate(edited), threshold)})
        result[name] = rows
    bar.close()
    return result
