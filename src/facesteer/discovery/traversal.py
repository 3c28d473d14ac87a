"""Naming directions by what they change: the traversal table of the two-stage paper.

For N sampled codes and each direction n_k, the traversal is code + t n_k for t = -T..T in steps of one
(21 images for T = 10), applied where the set belongs (its space, or its W+ layers). Every image is scored;
for one sample and one direction, Pearson's r between each attribute and t says how consistently the direction
moves it. The table is r averaged over the samples whose traversal is fully measured (a face found at every
step, the attribute not constant): a directions x attributes matrix.

Each attribute is assigned the direction with the largest |r| in its column, and a direction is named after the
strongest attribute assigned to it (signs flipped so that positive steps raise that attribute). The paper's
code divides the covariance by the steps' standard deviation only (r times the attribute's spread); this is the
true Pearson's r, bounded by 1 whatever the attribute's unit.

Identity, optionally: the dlib distance of each step's face to the walk's centre face (t = 0). It grows both
ways, so its r is taken with |t|: 1 means the person changes steadily away from the centre.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from facesteer.attributes.base import AttributeScorer
from facesteer.discovery.directions import Directions
from facesteer.editing import shift
from facesteer.engines import Engine, Faces, LocalEngine
from facesteer.errors import FacesteerError
from facesteer.generators.base import Generator

#: attributes measured against |t| (a distance from the walk's centre): they name no direction, count as no
#: direction's off-target change, and keep their sign when a direction is flipped
UNSIGNED = ("identity",)


#: pairs of attributes that are one measurement (AU12 is the smile blendshape): neither is the other's off-target
SAME_MEASURE = (frozenset({"au12", "smile"}),)


def direction_signs_matrix(signs: np.ndarray, attributes: Sequence[str]) -> np.ndarray:
    """(K, A) factors that flip each direction's r where its sign was flipped, except for :data:`UNSIGNED`."""
    factors = np.repeat(np.asarray(signs, dtype=np.float64)[:, None], len(attributes), axis=1)
    factors[:, [i for i, a in enumerate(attributes) if a in UNSIGNED]] = 1.0
    return factors


@dataclass(frozen=True)
class TraversalTable:
    """What :func:`traversal_table` measured.

    Attributes:
        correlation: (K, A) mean Pearson's r of each attribute with the step, per direction.
        samples: (K, A) how many samples' traversals entered each mean.
        attributes: the A attribute names.
        steps: the t values.
        assigned: attribute -> the direction (row) with the largest |r| for it (not for :data:`UNSIGNED`).
    """

    correlation: np.ndarray
    samples: np.ndarray
    attributes: tuple[str, ...]
    steps: np.ndarray
    assigned: dict[str, int]

    def names(self, count: int) -> list[str]:
        """A name per direction: its strongest assigned attribute, or "" when no attribute chose it."""
        names = [""] * count
        for direction in range(count):
            won = [a for a, k in self.assigned.items() if k == direction]
            if won:
                names[direction] = max(won, key=lambda a: abs(self.correlation[direction, self.attributes.index(a)]))
        return names

    def best(self, attribute: str) -> tuple[int, float, float]:
        """(direction, its r for ``attribute``, the largest |r| of another attribute along that direction: not
        counting :data:`UNSIGNED` ones, nor one that is the same measurement (:data:`SAME_MEASURE`))."""
        column = self.attributes.index(attribute)
        direction = self.assigned[attribute]
        others = [i for i, name in enumerate(self.attributes) if i != column and name not in UNSIGNED
                  and frozenset({name, attribute}) not in SAME_MEASURE]  # fmt: skip
        off_target = np.abs(self.correlation[direction, others])
        return direction, float(self.correlation[direction, column]), float(np.nanmax(off_target, initial=0.0))


def pearson_with_steps(scores: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Pearson's r of each traversal's scores with the steps.

    Args:
        scores: (..., T) one attribute along T steps.
        steps: (T,) the step values.

    Returns:
        (...) r; NaN where a traversal has a NaN or does not vary.
    """
    centred_steps = steps - steps.mean()
    centred = scores - scores.mean(axis=-1, keepdims=True)
    spread = np.sqrt((centred**2).sum(axis=-1)) * np.sqrt((centred_steps**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (centred * centred_steps).sum(axis=-1) / spread
    return np.where(spread > 0, r, np.nan)


def check_identity_engine(identity: bool, engine: str) -> None:
    """Refuse the identity distance along walks on an engine other than the local one (its actors hold one scorer)."""
    if identity and engine != "local":
        raise FacesteerError("the identity distance along walks is measured on the local engine only")


def traverse_scores(
    generator: Generator,
    directions: Directions,
    scorer: AttributeScorer,
    num: int = 200,
    seed: int = 0,
    reach: int = 10,
    indices: Sequence[int] | None = None,
    identity: AttributeScorer | None = None,
    progress: bool = True,
    engine: Engine | None = None,
) -> np.ndarray:
    """Scores of every traversal image: (num, K, 2 reach + 1, A) float32 (NaN where no face was found).

    Samples are rows 0.. of ``seed``; ``indices`` picks directions of the set (default all). With ``identity``
    (the ``identity`` scorer's embeddings) a last column holds each face's distance to its walk's centre face.
    ``engine`` makes and scores the faces (:mod:`facesteer.engines`; default: here, with ``generator`` and
    ``scorer``); with ``identity``, only here.
    """
    check_identity_engine(identity is not None, engine.name if engine is not None else "local")
    indices = list(range(len(directions))) if indices is None else list(indices)
    space = "wp" if directions.layers is not None else directions.space
    directions.boundary(indices[0]).check_applies_to(generator, space)
    steps = np.arange(-reach, reach + 1, dtype=np.float64)
    codes = generator.map(generator.sample_z(num, seed), space)
    columns = len(scorer.attributes) + (identity is not None)
    out = np.empty((num, len(indices), len(steps), columns), np.float32)
    bar = tqdm(total=num * len(indices), desc="traversals", unit="walk", disable=not progress)

    def walks_of(code: np.ndarray) -> np.ndarray:  # (K * T, *space shape): the code's walk along each direction
        return np.concatenate([shift(np.repeat(code[None], len(steps), 0), directions.vectors[k], steps,
                                     directions.layers) for k in indices])  # fmt: skip

    if identity is None:  # one piece of work per sample: its walks along every direction
        engine = engine or LocalEngine(generator, scorer)
        pieces = (Faces(walks_of(code), space, batch_size=len(indices) * len(steps)) for code in codes)
        rows = (scores for _, scores in engine.score(pieces))
    else:
        rows = (_with_identity(generator, scorer, identity, walks_of(code), space, reach) for code in codes)
    for row, scores in enumerate(rows):
        out[row] = scores.reshape(len(indices), len(steps), -1)
        bar.update(len(indices))
    bar.close()
    return out


def _with_identity(
    generator: Generator, scorer: AttributeScorer, identity: AttributeScorer, walks: np.ndarray, space: str, reach: int
) -> np.ndarray:
    """(K * T, A + 1) scores of the faces of ``walks`` (K walks of T = 2 reach + 1 steps), the last column each
    face's identity distance to its walk's centre face (NaN where either has no face)."""
    faces = generator.synthesize(walks, space)
    embeddings = identity.score(faces).astype(np.float64)
    embeddings = embeddings.reshape(-1, 2 * reach + 1, embeddings.shape[-1])
    distance = np.linalg.norm(embeddings - embeddings[:, reach : reach + 1], axis=2)
    return np.concatenate([scorer.score(faces), distance.reshape(-1, 1)], axis=1)


def traversal_table(scores: np.ndarray, attributes: Sequence[str], reach: int = 10) -> TraversalTable:
    """The directions x attributes table from :func:`traverse_scores`' output (num, K, T, A).

    Raises:
        FacesteerError: shapes that do not fit, or no traversal measured for any attribute.
    """
    if scores.ndim != 4 or scores.shape[2] != 2 * reach + 1 or scores.shape[3] != len(attributes):
        raise FacesteerError(f"scores must be (N, K, {2 * reach + 1}, {len(attributes)}), got {scores.shape}")
    steps = np.arange(-reach, reach + 1, dtype=np.float64)
    r = pearson_with_steps(np.moveaxis(scores.astype(np.float64), 2, 3), steps)  # (N, K, A)
    if "identity" in attributes:  # a distance to the centre: correlated with |t|
        column = list(attributes).index("identity")
        r[..., column] = pearson_with_steps(scores[:, :, :, column].astype(np.float64), np.abs(steps))
    counted = (~np.isnan(r)).sum(axis=0)
    with np.errstate(invalid="ignore"):
        correlation = np.where(counted > 0, np.nansum(r, axis=0) / np.maximum(counted, 1), np.nan)
    if np.isnan(correlation).all():
        raise FacesteerError("no traversal was measured (no face found at every step of any walk)")
    assigned = {a: int(np.nanargmax(np.abs(correlation[:, i]))) for i, a in enumerate(attributes)
                if a not in UNSIGNED and not np.isnan(correlation[:, i]).all()}  # fmt: skip
    return TraversalTable(correlation, counted, tuple(attributes), steps, assigned)


def named_directions(directions: Directions, table: TraversalTable, indices: Sequence[int]) -> Directions:
    """The traversed directions (rows ``indices`` of the set), named by the table and signed so that positive
    steps raise the attribute each is named after; the table rides along in the sidecar."""
    names = table.names(len(indices))
    signs = np.array([-1.0 if name and table.correlation[row, table.attributes.index(name)] < 0 else 1.0
                      for row, name in enumerate(names)])  # fmt: skip
    vectors = directions.vectors[list(indices)].astype(np.float64) * signs[:, None]
    info = {**directions.info, "source_rows": list(indices), "signs": signs.tolist(), "traversal": {
        "attributes": list(table.attributes),
        "correlation": np.round(table.correlation * direction_signs_matrix(signs, table.attributes), 4).tolist(),
        "samples": table.samples.tolist(), "reach": int(table.steps[-1])}}  # fmt: skip
    values = None if directions.values is None else directions.values[list(indices)]
    return Directions(vectors, directions.method, directions.generator, directions.space, directions.layers,
                      values, names, info)  # fmt: skip
