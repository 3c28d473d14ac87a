"""Request batching: codes from many sessions go through the generator together.

One worker thread owns the generator. :meth:`RenderQueue.render` puts a code on a queue and waits; the worker
takes the first waiting code, then keeps taking more until ``max_batch`` are in hand or ``max_wait`` seconds
have passed since the first, and synthesizes them in one forward pass. On 2 cores one pass of 32 codes costs
far less than 32 passes of one, so under load batching multiplies throughput (bench/serve.py measures it);
with ``max_batch=1`` every request is synthesized alone. A batch is padded to the next power of two (at most
``max_batch``): the backend keeps memory for every batch shape it has seen, so few shapes keep memory flat.

Given a :class:`~facesteer.generators.compiled.CompiledSynthesis` (:meth:`RenderQueue.use_compiled`), the worker
renders with it instead, padding each batch to one of the few shapes it was compiled for
(:func:`compiled_shapes`: every shape costs compile time at start-up).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import numpy as np

from facesteer.errors import FacesteerError
from facesteer.generators.base import Generator
from facesteer.generators.compiled import CompiledSynthesis, root_cause

logger = logging.getLogger(__name__)


def padded_size(count: int, max_batch: int) -> int:
    """The batch shape ``count`` codes are synthesized in: the next power of two, at most ``max_batch``."""
    return min(max_batch, 1 << (count - 1).bit_length())


def padded(codes: np.ndarray, size: int) -> np.ndarray:
    """``codes`` (N, ...) with the last code repeated up to ``size`` rows: a few batch shapes only, as each new one
    costs the backend memory for good (and a compiled synthesis exists for a few shapes only)."""
    return np.concatenate([codes, np.repeat(codes[-1:], size - len(codes), axis=0)]) if size > len(codes) else codes


def compiled_shapes(max_batch: int) -> tuple[int, ...]:
    """The batch shapes a compiled generator is compiled for: 1 (a lone request), 8 and ``max_batch``."""
    return tuple(sorted({1, min(8, max_batch), max_batch}))


class ServiceBusyError(FacesteerError):
    """Too much work queued (renders, uploads): the request is refused rather than left to wait without bound."""


class RenderQueue:
    """Synthesizes codes of one space of ``generator`` in batches, on one worker thread.

    Args:
        generator: the generator (used by the worker thread only).
        space: the latent space of every code rendered.
        max_batch: the most codes per forward pass (1 = no batching).
        max_wait: seconds the worker waits for more codes after the first one of a batch.
        max_queued: the most codes waiting; more are refused as busy.
        finish: applied to each image on the worker thread before it is handed back (the service encodes its
            PNGs there: one thread finishing a batch contends less for the GIL than a request thread per face).
    """

    def __init__(
        self,
        generator: Generator,
        space: str,
        max_batch: int = 32,
        max_wait: float = 0.004,
        max_queued: int = 512,
        finish: Callable[[np.ndarray], Any] | None = None,
    ) -> None:
        if max_batch < 1 or max_wait < 0 or max_queued < 1:
            raise FacesteerError(f"max_batch and max_queued must be >= 1 and max_wait >= 0, got {max_batch}, "
                                 f"{max_queued} and {max_wait}")  # fmt: skip
        self.generator, self.space, self.max_batch, self.max_wait = generator, space, max_batch, max_wait
        self.finish = finish
        self._queue: queue.Queue[tuple[np.ndarray, Future] | None] = queue.Queue(maxsize=max_queued)
        self.batches, self.rendered = 0, 0
        self._compiled: CompiledSynthesis | None = None
        self._worker = threading.Thread(target=self._run, name="facesteer-render", daemon=True)
        self._worker.start()

    def render(self, code: np.ndarray, timeout: float = 30.0) -> Any:
        """The image (R, R, 3) uint8 of one code (shape ``space_shape(space)``), synthesized in some batch (passed
        through ``finish`` when the queue has one).

        Raises:
            ServiceBusyError: the queue is full, or the face did not come within ``timeout`` seconds.
            RuntimeError: its batch failed to render, or ``finish`` failed on its image.
        """
        self.generator.check_codes(code[None], self.space)
        if not self._worker.is_alive():
            raise RuntimeError("the render thread has stopped")
        future: Future = Future()
        try:
            self._queue.put_nowait((np.asarray(code, dtype=np.float32), future))
        except queue.Full:
            raise ServiceBusyError("the server is busy (render queue full): try again") from None
        try:
            return future.result(timeout=timeout)
        except TimeoutError:
            future.cancel()  # the worker skips it
            raise ServiceBusyError(f"the server is busy (no face within {timeout:g} s): try again") from None

    def use_compiled(self, compiled: CompiledSynthesis) -> None:
        """Render every later batch with ``compiled`` (warmed up, of this queue's generator and space)."""
        if not compiled.ready or compiled.generator is not self.generator or compiled.space != self.space:
            raise ValueError("a compiled synthesis must be warmed up, for this queue's generator and space")
        if compiled.shapes[-1] < self.max_batch:
            raise ValueError(f"compiled for batches up to {compiled.shapes[-1]}, the queue makes {self.max_batch}")
        self._compiled = compiled

    @property
    def compiled(self) -> bool:
        """Whether batches are rendered by a compiled synthesis."""
        return self._compiled is not None

    def close(self) -> None:
        """Stop the worker (waiting requests are still served)."""
        self._queue.put(None)
        self._worker.join(timeout=10)

    def _take_batch(self) -> list[tuple[np.ndarray, Future]] | None:
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        deadline = time.monotonic() + self.max_wait
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # stop after this batch
                break
            batch.append(item)
        return batch

    def _run(self) -> None:
        while (batch := self._take_batch()) is not None:
            batch = [(code, future) for code, future in batch if future.set_running_or_notify_cancel()]
            if not batch:
                continue
            try:
                images = self._synthesize(np.stack([code for code, _ in batch]))
            except Exception as error:  # every waiting request hears of it (each its own exception); the loop lives
                for _, future in batch:
                    future.set_exception(RuntimeError(f"rendering failed: {type(error).__name__}: {error}"))
                continue
            self.batches, self.rendered = self.batches + 1, self.rendered + len(batch)
            for (_, future), image in zip(batch, images, strict=True):
                self._hand_back(future, image)

    def _hand_back(self, future: Future, image: np.ndarray) -> None:
        """Resolve one request with its image (through ``finish``): a ``finish`` that fails fails that request only."""
        if self.finish is None:
            future.set_result(image)
            return
        try:
            future.set_result(self.finish(image))
        except Exception as error:
            future.set_exception(RuntimeError(f"finishing the image failed: {type(error).__name__}: {error}"))

    def _synthesize(self, codes: np.ndarray) -> np.ndarray:
        """Images for ``codes``, synthesized in one of a few batch shapes: compiled when a compiled synthesis is
        set (one that fails is dropped for good, with a warning, and the batch is drawn eagerly), else eagerly."""
        count = len(codes)
        compiled = self._compiled  # read once: use_compiled may set it between batches
        if compiled is not None:
            try:
                return compiled(padded(codes, next(shape for shape in compiled.shapes if shape >= count)))[:count]
            except Exception as error:
                logger.warning("compiled rendering failed (%s); rendering without compiling from now on",
                               root_cause(error))  # fmt: skip
                self._compiled = None
        size = padded_size(count, self.max_batch)
        return self.generator.synthesize(padded(codes, size), self.space, batch_size=size)[:count]
