"""Inference synthesis compiled with ``torch.compile``, for servers that render the same batch shapes all day.

A StyleGAN2 at 64 px spends most of its time in element-wise passes over small feature maps (style and
demodulation scales, noise, bias, leaky ReLU), one trip through memory each; TorchInductor fuses them into a
few C++ loops (bench/serve.py measures what that does to the editor's throughput; bench/RESULTS.md). The graph is
compiled with Inductor's C++ wrapper, so one batch is one call that releases the GIL once (the default Python
wrapper holds it through every kernel, and a server's request threads then stall while a batch runs). The price
is compile time, paid once per batch shape: about 25-45 s per shape the first time on 2 cores, a few seconds per
shape when TorchInductor's cache on disk already holds it. So a :class:`CompiledSynthesis` is compiled for a
fixed, short list of batch shapes at start-up (:meth:`CompiledSynthesis.warm_up`), and callers pad every batch
to one of them.

Compiled images equal eager ones to float rounding: a few pixels in 100,000 differ by one level.
Compilation needs a C++ compiler; where there is none, :meth:`warm_up` raises and callers render eagerly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from tqdm import tqdm

from facesteer.errors import FacesteerError
from facesteer.generators.base import Generator, to_uint8_tensor


def root_cause(error: BaseException) -> str:
    """``Type: first line`` of the innermost exception: Dynamo wraps compiler failures in exceptions whose own
    message is only ``backend='inductor' raised:``."""
    while True:
        inner = getattr(error, "inner_exception", None) or error.__cause__
        if not isinstance(inner, BaseException) or inner is error:
            break
        error = inner
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0][:200] if text else '(no message)'}"


class CompiledSynthesis:
    """``generator.synthesize_tensor`` for codes of ``space``, compiled for the batch shapes ``shapes``.

    Args:
        generator: the generator.
        space: the latent space of every code.
        shapes: the batch sizes to compile for, ascending; batches of other sizes must be padded to one of them.
    """

    def __init__(self, generator: Generator, space: str, shapes: Sequence[int]) -> None:
        if not shapes or list(shapes) != sorted(set(shapes)) or shapes[0] < 1:
            raise FacesteerError(f"batch shapes must be distinct positive sizes in ascending order, got {shapes}")
        generator.space_shape(space)  # refuses a space the generator does not have
        self.generator, self.space, self.shapes = generator, space, tuple(shapes)
        # fullgraph: a graph break would leave part of the network eager, outside the one GIL-free call
        self._compiled = torch.compile(self._draw, dynamic=False, fullgraph=True, options={"cpp_wrapper": True})
        self.ready = False

    def warm_up(self, progress: bool = False) -> None:
        """Compile every batch shape (one synthesis each), with a progress bar if ``progress``.

        Raises:
            FacesteerError: compilation failed (no C++ compiler, an unsupported operator); render eagerly then.
        """
        description = f"compiling {self.generator.name} for batches of {', '.join(map(str, self.shapes))}"
        for shape in tqdm(self.shapes, desc=description, unit="shape", disable=not progress):
            codes = np.zeros((shape, *self.generator.space_shape(self.space)), np.float32)
            try:
                self._synthesize(codes)
            except Exception as error:  # Inductor's errors have no common base class worth naming
                raise FacesteerError(f"torch.compile failed for {self.generator.name}: {root_cause(error)}") from error
        self.ready = True

    def __call__(self, codes: np.ndarray) -> np.ndarray:
        """Images (N, R, R, 3) uint8 for codes (N, *space_shape) with N one of ``shapes``."""
        if not self.ready:
            raise RuntimeError("CompiledSynthesis used before warm_up()")
        if len(codes) not in self.shapes:
            raise ValueError(f"batch of {len(codes)} codes; compiled for {self.shapes} only (pad the batch)")
        return self._synthesize(codes)

    @torch.inference_mode()
    def _synthesize(self, codes: np.ndarray) -> np.ndarray:
        self.generator.check_codes(codes, self.space)
        return self._compiled(torch.from_numpy(np.array(codes, dtype=np.float32))).numpy()

    def _draw(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes -> uint8 images (N, R, R, 3), as one graph: the conversion is fused with the last layer."""
        return to_uint8_tensor(self.generator.synthesize_tensor(codes, self.space))
