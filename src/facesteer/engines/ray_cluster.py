"""The Ray engine: the pieces of a run (chunks of a sampling run, faces to score) computed by actors on a Ray
cluster.

Each actor (:class:`SampleWorker`) builds one generator and one scorer once, from the generator's config and a
:class:`~facesteer.engines.ScorerSpec`, out of its own node's install; the driver hands out pieces (a chunk is
only (seed, start, stop); faces to score carry their codes), a few per actor, and gives the results back in
the order of the pieces, so what the caller writes is byte-identical to the local engine's. An actor that dies
(a node lost, ``kill -9``) is restarted by Ray, which runs its pieces again: nothing is lost or computed twice
into the files. A node that cannot build the generator or the scorer (a missing model file) is one error naming
the node, raised before any piece is handed out.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import ray
import torch

from facesteer.engines import Chunk, Faces, ScorerSpec, compute_rows, compute_scores
from facesteer.errors import FacesteerError
from facesteer.generators import load_generator_for
from facesteer.generators.base import Generator

#: chunks handed to each actor ahead of the one it is computing (so no actor waits for the driver)
CHUNKS_AHEAD = 2
#: seconds the actors may take to start (import torch, build the generator and the scorer)
START_TIMEOUT_S = 600.0


class SampleWorker:
    """One actor: a generator and a scorer, built once; computes the chunks it is given."""

    def __init__(self, generator: dict[str, Any], scorer: ScorerSpec | None, threads: int, gpu: bool) -> None:
        torch.set_num_threads(threads)
        self.node, self.error = ray.util.get_node_ip_address(), None
        self.node_id = ray.get_runtime_context().get_node_id()
        try:
            self.generator = load_generator_for(generator)
            if gpu:  # Ray gave this actor a GPU (CUDA_VISIBLE_DEVICES): the faces are synthesized there
                self.generator.to("cuda")
            self.scorer = scorer.build() if scorer is not None else None
        except FacesteerError as error:  # reported by ready(): an actor whose constructor raised is only "dead"
            self.error = str(error)

    def ready(self) -> tuple[str, str, int, str | None]:
        """(node address, node id, process id, the error that stopped this actor from starting or None)."""
        return self.node, self.node_id, os.getpid(), self.error

    def rows(self, chunk: Chunk) -> dict[str, np.ndarray]:
        return compute_rows(self.generator, self.scorer, chunk)

    def scores(self, faces: Faces) -> np.ndarray:
        if self.scorer is None:
            raise FacesteerError("this engine's workers were built without a scorer")
        return compute_scores(self.generator, self.scorer, faces)


class RayEngine:
    """``workers`` actors of ``cpus`` CPUs (and ``gpus`` GPUs) each on the cluster at ``address``.

    Args:
        generator: the generator the actors rebuild (from ``generator.config()``: a registered name, or a file
            every node can read at the same path; its truncation too).
        scorer: the scorer the actors build, or None to store codes only.
        workers: number of actors.
        address: ``None`` or ``"local"`` starts a Ray of its own on this machine (ended by :meth:`close`), even
            where another runs; ``"auto"`` joins
            the cluster this machine belongs to; ``"HOST:PORT"`` (or ``ray://HOST:PORT``) joins that one.
        cpus, gpus: resources each actor asks for (its torch threads = ``cpus``; with ``gpus`` > 0 it synthesizes
            on CUDA; the scorers stay on the CPU).
    """

    name = "ray"

    def __init__(
        self,
        generator: Generator,
        scorer: ScorerSpec | None,
        workers: int,
        address: str | None = None,
        cpus: int = 1,
        gpus: float = 0,
    ) -> None:
        if workers < 1:
            raise FacesteerError(f"workers must be at least 1, got {workers}")
        self._started_here = not ray.is_initialized()
        if self._started_here:
            try:
                ray.init(address=address or "local", include_dashboard=False,
                         logging_level="warning", log_to_driver=False)  # fmt: skip
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise FacesteerError(f"cannot reach the Ray cluster at {address}: {error}") from None
        try:
            available = ray.cluster_resources()
            if available.get("CPU", 0) < workers * cpus or available.get("GPU", 0) < workers * gpus:
                raise FacesteerError(
                    f"{workers} workers of {cpus} CPU and {gpus:g} GPU each do not fit the cluster "
                    f"({available.get('CPU', 0):g} CPUs, {available.get('GPU', 0):g} GPUs)"
                )
            remote = ray.remote(SampleWorker).options(
                num_cpus=cpus, num_gpus=gpus, max_restarts=-1, max_task_retries=-1
            )
            self.actors = [remote.remote(generator.config(), scorer, cpus, gpus > 0) for _ in range(workers)]
            self.workers = self._wait_until_ready()
        except BaseException:
            self.close()
            raise

    def _wait_until_ready(self) -> list[tuple[str, str, int]]:
        """(node address, node id, process id) of each actor, once all have built their models."""
        try:
            ready = ray.get([actor.ready.remote() for actor in self.actors], timeout=START_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            raise FacesteerError(f"the Ray workers did not start within {START_TIMEOUT_S:.0f} s") from None
        for node, node_id, _, error in ready:
            if error is not None:
                raise FacesteerError(f"a Ray worker on node {node} ({node_id[:12]}) cannot start: {error}")
        return [(node, node_id, pid) for node, node_id, pid, _ in ready]

    def map(self, chunks: Iterable[Chunk]) -> Iterator[tuple[Chunk, dict[str, np.ndarray]]]:
        """Each chunk's rows, in the order of ``chunks``."""
        return self._in_order("rows", chunks)

    def score(self, faces: Iterable[Faces]) -> Iterator[tuple[Faces, np.ndarray]]:
        """Each piece's scores, in the order of ``faces``."""
        return self._in_order("scores", faces)

    def _in_order(self, method: str, pieces: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        """(piece, the actors' ``method`` of it), in the order of ``pieces``; up to CHUNKS_AHEAD + 1 pieces per
        actor in flight, the next piece taken from ``pieces`` only when one is done."""
        todo = iter(enumerate(pieces))
        in_flight: dict[ray.ObjectRef, tuple[int, Any, int]] = {}  # ref -> (position, piece, actor)
        load = [0] * len(self.actors)
        done: dict[int, tuple[Any, Any]] = {}
        position = 0
        exhausted = False
        window = len(self.actors) * (CHUNKS_AHEAD + 1)
        while True:
            # bounded: the pieces in flight, and the results held back behind a slow one
            while not exhausted and len(in_flight) < window and len(done) < 4 * window:
                item = next(todo, None)
                if item is None:
                    exhausted = True
                    break
                actor = min(range(len(self.actors)), key=load.__getitem__)
                in_flight[getattr(self.actors[actor], method).remote(item[1])] = (item[0], item[1], actor)
                load[actor] += 1
            if not in_flight:
                return
            (ready, *_), _ = ray.wait(list(in_flight), num_returns=1)
            index, piece, actor = in_flight.pop(ready)
            load[actor] -= 1
            done[index] = (piece, ray.get(ready))
            while position in done:
                yield done.pop(position)
                position += 1

    def close(self) -> None:
        for actor in getattr(self, "actors", []):
            ray.kill(actor)
        self.actors = []
        if self._started_here and ray.is_initialized():
            ray.shutdown()
