"""Engines: where the rows of a sampling run are computed.

A row is one latent code and what is made from it: z, w (and W+) and the scores of its face. A run is cut into
chunks of rows (``start``, ``stop``); every chunk is computed by the one pure function :func:`compute_rows`
from the generator, the scorer and the seed alone, so an engine only decides *where* each chunk runs. The
caller writes the chunks in row order, so the files are the same bytes whichever engine computed them:

- :class:`LocalEngine`: in this process (a scorer may still use worker processes: ``load_scorer(workers=N)``);
- :class:`facesteer.engines.ray_cluster.RayEngine`: on the actors of a Ray cluster, each holding one generator
  and one scorer built once (``--engine ray``; Ray is an optional dependency, ``pip install facesteer[ray]``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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


class Engine(Protocol):
    """Computes chunks and gives their rows back in the order of the chunks."""

    name: str

    def map(self, chunks: Iterable[Chunk]) -> Iterator[tuple[Chunk, dict[str, np.ndarray]]]: ...

    def close(self) -> None: ...


class LocalEngine:
    """Every chunk in this process, one after another."""

    name = "local"

    def __init__(self, generator: Generator, scorer: AttributeScorer | None) -> None:
        self.generator, self.scorer = generator, scorer

    def map(self, chunks: Iterable[Chunk]) -> Iterator[tuple[Chunk, dict[str, np.ndarray]]]:
        for chunk in chunks:
            yield chunk, compute_rows(self.generator, self.scorer, chunk)

    def close(self) -> None:
        pass


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
