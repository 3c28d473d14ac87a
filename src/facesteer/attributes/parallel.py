"""Run a scorer in several worker processes: the teachers are single-threaded Python loops, so two cores
score about twice as fast. Every image is scored on its own, so results are identical to a serial run
whatever the number of workers."""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import multiprocessing.context
import multiprocessing.process
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np

from facesteer.attributes.base import AttributeScorer, check_images
from facesteer.errors import FacesteerError

_worker_scorer: AttributeScorer | None = None
_worker_error: Exception | None = None


def _exit_with_parent() -> None:
    """Wait for the parent process to end, then end this worker: ProcessPoolExecutor's workers would otherwise
    outlive a parent killed outright (SIGKILL, the out-of-memory killer), holding their memory for ever."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)


def _start_worker(build: Callable[..., AttributeScorer], name: str, models: str | None) -> None:
    global _worker_scorer, _worker_error  # one scorer per worker process, built once
    threading.Thread(target=_exit_with_parent, name="exit-with-parent", daemon=True).start()
    try:
        _worker_scorer = build(name, models, workers=1)
    except Exception as error:  # raised by the first task, in the parent: a failing initializer would only be
        _worker_error = error  # retried (multiprocessing.Pool respawns such workers forever)


def _scorer() -> AttributeScorer:
    if _worker_error is not None:
        raise _worker_error
    assert _worker_scorer is not None
    return _worker_scorer


def _describe() -> tuple[tuple[str, ...], dict[str, Any]]:
    scorer = _scorer()
    return tuple(scorer.attributes), scorer.config()


def _score(images: np.ndarray) -> np.ndarray:
    return _scorer().score(images)


class _RecordingContext(multiprocessing.context.SpawnContext):
    """The ``spawn`` context, keeping every process it makes: the executor records a worker only after
    ``start()`` returns, so a Ctrl-C inside ``start()`` would leave a live worker nobody could stop, and Python's
    exit would wait on it for ever."""

    def __init__(self) -> None:
        super().__init__()
        self.processes: list[multiprocessing.process.BaseProcess] = []

    def Process(self, *args: Any, **kwargs: Any) -> multiprocessing.process.BaseProcess:  # noqa: N802 (the API's name)
        process = super().Process(*args, **kwargs)
        self.processes.append(process)
        return process


class ParallelScorer:
    """A registered scorer replicated in ``workers`` processes (started with ``spawn``: safe beside torch).

    A scorer that cannot be built in the workers raises its own error here; a worker that dies (a crash in native
    code, the kernel's out-of-memory killer) raises a FacesteerError instead of leaving the caller waiting. An
    exception while scoring (Ctrl-C) stops the workers at once rather than after the chunks already handed out, and
    the workers end with their parent, however it ends.

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
        self._context = _RecordingContext()
        self._pool: ProcessPoolExecutor | None = ProcessPoolExecutor(
            workers, self._context, _start_worker, (build, name, models and str(models))
        )
        try:
            self.attributes, self._config = self._wait(self._pool.submit(_describe))
        except BaseException:
            self.close(terminate=True)
            raise

    def config(self) -> dict[str, Any]:
        return self._config

    def score(self, images: np.ndarray) -> np.ndarray:
        """Like the wrapped scorer's ``score``: (N, H, W, 3) uint8 -> (N, k) float32."""
        images = check_images(images)
        if len(images) == 0:
            return np.empty((0, len(self.attributes)), np.float32)
        if self._pool is None:
            raise FacesteerError(f"the {self.name} scorer's worker processes are closed")
        pieces = np.array_split(images, min(len(images), self.workers * 4))
        try:
            futures = [self._pool.submit(_score, piece) for piece in pieces]
            return np.concatenate([self._wait(future) for future in futures])
        except BaseException:
            self.close(terminate=True)
            raise

    def _wait(self, future: Future) -> Any:
        try:
            return future.result()
        except BrokenProcessPool:
            self.close(terminate=True)
            raise FacesteerError(f"a worker process of the {self.name} scorer died (a crash in native code, or out "
                                 "of memory): try --workers 1 to see its error") from None  # fmt: skip

    def close(self, terminate: bool = False) -> None:
        """Shut the workers down; with ``terminate``, kill them first (work in flight is dropped, not awaited)."""
        if self._pool is None:
            return
        if terminate:  # (the executor has no public way to stop running tasks before Python 3.14)
            for process in self._context.processes:
                if process.pid is not None and process.is_alive():
                    process.terminate()
            for process in self._context.processes:
                if process.pid is not None:
                    process.join(5)
                    if process.is_alive():
                        process.kill()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None

    def __enter__(self) -> ParallelScorer:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        self.close(terminate=kind is not None)
