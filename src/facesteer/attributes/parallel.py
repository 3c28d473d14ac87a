"""Run a scorer in several worker processes: the teachers are single-threaded Python loops, so two cores
score about twice as fast. Every image is scored on its own, so results are identical to a serial run
whatever the number of workers."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from facesteer.attributes.base import AttributeScorer, check_images

_worker_scorer: AttributeScorer | None = None


def _start_worker(build: Callable[..., AttributeScorer], name: str, models: str | None) -> None:
    global _worker_scorer  # one scorer per worker process, built once
    _worker_scorer = build(name, models, workers=1)


def _describe() -> tuple[tuple[str, ...], dict[str, Any]]:
    assert _worker_scorer is not None
    return tuple(_worker_scorer.attributes), _worker_scorer.config()


def _score(images: np.ndarray) -> np.ndarray:
    assert _worker_scorer is not None
    return _worker_scorer.score(images)


class ParallelScorer:
    """A registered scorer replicated in ``workers`` processes (started with ``spawn``: safe beside torch).

    Args:
        build: ``load_scorer`` (passed in, so this module needs no registry): build(name, models, workers=1).
        name: registered scorer name.
        models: models folder passed to each worker's scorer.
        workers: number of processes, >= 2.
    """

    def __init__(
        self, build: Callable[..., AttributeScorer], name: str, models: str | os.PathLike[str] | None, workers: int
    ) -> None:
        self.name = name
        self.workers = workers
        context = multiprocessing.get_context("spawn")
        self._pool = context.Pool(workers, initializer=_start_worker, initargs=(build, name, models and str(models)))
        try:
            self.attributes, self._config = self._pool.apply(_describe)
        except BaseException:
            self.close()
            raise

    def config(self) -> dict[str, Any]:
        return self._config

    def score(self, images: np.ndarray) -> np.ndarray:
        """Like the wrapped scorer's ``score``: (N, H, W, 3) uint8 -> (N, k) float32."""
        images = check_images(images)
        if len(images) == 0:
            return np.empty((0, len(self.attributes)), np.float32)
        pieces = np.array_split(images, min(len(images), self.workers * 4))
        return np.concatenate(self._pool.map(_score, pieces))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def __enter__(self) -> ParallelScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
