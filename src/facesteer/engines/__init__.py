"""Engines: where faces are synthesized and scored.

Two kinds of work go to an engine, both cut into small pieces that a pure function computes from the
generator, the scorer and the piece alone, so an engine only decides *where* each piece runs, and gives the
results back in the order of the pieces (the same bytes whichever engine computed them):

- the rows of a sampling run (:class:`Chunk`, :func:`compute_rows`): one latent code each and what is made
  from it: z, w (and W+) and the scores of its face; the caller writes the chunks in row order;
- the scores of faces made from given codes (:class:`Faces`, :func:`compute_scores`): the edited codes of an
  evaluation, the walks of a traversal.

The engines:

- :class:`LocalEngine`: in this process (a scorer may still use worker processes: ``load_scorer(workers=N)``);
- :class:`facesteer.engines.ray_cluster.RayEngine`: on the actors of a Ray cluster, each holding one generator
  and one scorer built once (``--engine ray``; Ray is an optional dependency, ``pip install facesteer[ray]``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from facesteer.attributes import AttributeScorer, load_scorer
from facesteer.errors import FacesteerError
from facesteer.generators.base import Generator

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class Chunk:
    """Rows ``start`` to ``stop - 1`` of a run of ``seed``: their codes are ``generator.sample_z(stop - start,
    seed, start)``; ``spaces`` are the code spaces stored besides z (``w``, ``wp``); the faces are synthesized
    and scored ``batch_size`` at a time."""

    seed: int
    start: int
    stop: int
    spaces: tuple[str, ...] = ()
    batch_size: int = 64


@dataclass(frozen=True)
class ScorerSpec:
    """What builds a scorer anywhere: :func:`facesteer.attributes.load_scorer`'s arguments, so each worker of a
    cluster builds its own from its own install."""

    name: str
    models: str | None = None
    predictor_weights: str | None = None
    generator: str | None = None

    def build(self) -> AttributeScorer:
        return load_scorer(self.name, self.models, 1, self.predictor_weights, generator=self.generator)


def compute_rows(generator: Generator, scorer: AttributeScorer | None, chunk: Chunk) -> dict[str, np.ndarray]:
    """The arrays of ``chunk``'s rows: ``z`` (n, z_dim), each of ``chunk.spaces``, and ``scores`` (n, k) when
    there is a scorer (NaN rows where it found no face). The same bytes wherever it runs."""
    z = generator.sample_z(chunk.stop - chunk.start, chunk.seed, start=chunk.start)
    rows = {"z": z, **{space: generator.map(z, space) for space in chunk.spaces}}
    if scorer is not None:
        rows["scores"] = np.concatenate(
            [scorer.score(generator.synthesize(z[lo : lo + chunk.batch_size], "z"))
             for lo in range(0, len(z), chunk.batch_size)]
        )  # fmt: skip
    return rows


@dataclass(frozen=True, eq=False)
class Faces:
    """Faces to synthesize from ``codes`` (n, *space shape) in ``space`` and score, ``batch_size`` at a time."""

    codes: np.ndarray
    space: str
    batch_size: int = 64


def compute_scores(generator: Generator, scorer: AttributeScorer, faces: Faces) -> np.ndarray:
    """(n, k) scores of ``faces`` (NaN rows where no face was found). The same bytes wherever it runs."""
    codes, size = faces.codes, faces.batch_size
    return np.concatenate(
        [scorer.score(generator.synthesize(codes[lo : lo + size], faces.space)) for lo in range(0, len(codes), size)]
    )


class Engine(Protocol):
    """Computes pieces of work and gives their results back in the order of the pieces (lazily: a piece is
    taken from the iterable only when a worker is free for it)."""

    name: str

    def map(self, chunks: Iterable[Chunk]) -> Iterator[tuple[Chunk, dict[str, np.ndarray]]]: ...

    def score(self, faces: Iterable[Faces]) -> Iterator[tuple[Faces, np.ndarray]]: ...

    def close(self) -> None: ...


class LocalEngine:
    """Every chunk in this process, one after another."""

    name = "local"

    def __init__(self, generator: Generator, scorer: AttributeScorer | None) -> None:
        self.generator, self.scorer = generator, scorer

    def map(self, chunks: Iterable[Chunk]) -> Iterator[tuple[Chunk, dict[str, np.ndarray]]]:
        for chunk in chunks:
            yield chunk, compute_rows(self.generator, self.scorer, chunk)

    def score(self, faces: Iterable[Faces]) -> Iterator[tuple[Faces, np.ndarray]]:
        if self.scorer is None:
            raise FacesteerError("this engine was built without a scorer")
        for piece in faces:
            yield piece, compute_scores(self.generator, self.scorer, piece)

    def close(self) -> None:
        pass


#: what a function that loads its own generator takes to run its work elsewhere: it calls this with the
#: generator and closes the engine it gets (None: the local engine, with the function's own scorer)
EngineFactory = Callable[[Generator], Engine]


def engine_factory(
    name: str, scorer: ScorerSpec | None, workers: int = 1, address: str | None = None
) -> EngineFactory | None:
    """The engine ``name`` (one of :data:`ENGINES`) as an :data:`EngineFactory`; None for ``"local"``."""
    if name not in ENGINES:
        raise FacesteerError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
    if name == "local":
        return None
    return lambda generator: ray_engine(generator, scorer, workers, address)


def ray_engine(
    generator: Generator, scorer: ScorerSpec | None, workers: int, address: str | None = None, **options: Any
) -> Engine:
    """A :class:`~facesteer.engines.ray_cluster.RayEngine` of ``workers`` actors on the Ray cluster at
    ``address`` (None or ``"local"``: a Ray instance started in this process; ``"auto"``: the running cluster).

    Raises:
        FacesteerError: Ray is not installed (and how to install it), or the cluster cannot be reached.
    """
    try:
        from facesteer.engines.ray_cluster import RayEngine
    except ImportError as error:
        if error.name != "ray" and not str(error.name or "").startswith("ray."):
            raise
        raise FacesteerError("the ray engine needs Ray: pip install 'facesteer[ray]' (or pip install ray)") from None
    return RayEngine(generator, scorer, workers, address, **options)
