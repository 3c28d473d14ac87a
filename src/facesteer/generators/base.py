"""The Generator template every face GAN in facesteer follows.

A generator maps latent codes to images. Codes live in named spaces: ``"z"`` (the Gaussian input) for every
generator; style-based ones add ``"w"`` and ``"wp"`` (W+). Images leave a generator as uint8 RGB arrays of
shape (N, H, W, 3); inside the networks they are float tensors in [-1, 1], NCHW.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from facesteer.errors import FacesteerError

#: ``sample_z`` draws rows in blocks of this many, each block seeded by (seed, block index), so row i
#: depends only on (seed, i) while the seeding cost is paid once per block instead of once per row.
ROWS_PER_BLOCK = 64


def gaussian_rows(num: int, dim: int, seed: int, start: int = 0) -> np.ndarray:
    """Rows ``start .. start+num-1`` of an endless seeded stream of N(0, I) vectors.

    Row i depends only on ``(seed, i)``: asking for rows 10..19 gives exactly rows 10..19 of a request for
    rows 0..99, whatever the batch size or resume point.

    Returns:
        float32 array of shape (num, dim).
    """
    if num < 0 or start < 0:
        raise FacesteerError(f"num and start must be >= 0, got num={num}, start={start}")
    if seed < 0:
        raise FacesteerError(f"seed must be >= 0, got {seed}")
    out = np.empty((num, dim), dtype=np.float32)
    first_block, last_block = start // ROWS_PER_BLOCK, (start + num - 1) // ROWS_PER_BLOCK
    for block in range(first_block, last_block + 1) if num else ():
        rows = np.random.default_rng([seed, block]).standard_normal((ROWS_PER_BLOCK, dim), dtype=np.float32)
        lo = max(start, block * ROWS_PER_BLOCK)
        hi = min(start + num, (block + 1) * ROWS_PER_BLOCK)
        out[lo - start : hi - start] = rows[lo - block * ROWS_PER_BLOCK : hi - block * ROWS_PER_BLOCK]
    return out


def to_uint8_tensor(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) float in [-1, 1] -> (N, H, W, 3) uint8 RGB tensor, rounding to the nearest level."""
    scaled = ((images.float() + 1.0) * 127.5).round().clamp(0, 255)
    return scaled.to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def to_uint8_images(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) float in [-1, 1] -> (N, H, W, 3) uint8 RGB array, rounding to the nearest level."""
    return to_uint8_tensor(images).cpu().numpy()


def weights_identity(config: dict) -> str | None:
    """What says which weights a generator holds, from its ``config()``: the layout and sha256 of its ``source``
    file (``"facesteer, sha256 af65a26eb87cabe5"``, not the file's name: a copy elsewhere holds the same weights)
    for checkpoint-based generators, ``weights`` for the DCGAN (the package pin, or a file's sha256). What is
    made from a generator records it (``generator_weights``), so what was made from other weights can be told."""
    source = config.get("source")
    if source:
        name, opening, described = source.rpartition(
            " ("
        )  # checkpoints.describe_checkpoint's "NAME (LAYOUT, sha256 X)"
        return described.removesuffix(")") if opening and name else source
    return config.get("weights")


def check_made_from(recorded: str | None, generator: Generator, what: str) -> None:
    """Refuse ``what`` (a boundary, a set of directions) made from other weights than ``generator``'s; what records
    none (made before facesteer recorded it, or published elsewhere) passes."""
    if recorded is not None and recorded != weights_identity(generator.config()):
        raise FacesteerError(
            f"{what} was made from other weights of {generator.name} ({recorded}) than these "
            f"({weights_identity(generator.config())}): make it again from this generator"
        )


class Generator(ABC):
    """A pretrained face generator.

    Subclasses set the attributes below and implement :meth:`synthesize_tensor`.

    Attributes:
        name: registry name, e.g. ``"dcgan-digiface64"``.
        z_dim: size of the Gaussian input z.
        resolution: output images are ``resolution x resolution``.
        spaces: latent spaces ``synthesize`` accepts; ``"z"`` always.
    """

    name: str
    z_dim: int
    resolution: int
    spaces: tuple[str, ...] = ("z",)
    #: codes per forward pass when the caller does not say (the fastest measured by bench/generator.py)
    preferred_batch_size: int = 32
    #: torch.compile speeds this generator's inference synthesis enough to pay for its compile time, so a server
    #: compiles it (:mod:`facesteer.generators.compiled`; measured by bench/serve.py)
    compiles_faster: bool = False

    @property
    def edit_space(self) -> str:
        """The space edits live in: W for style-based generators (their boundaries, directions and encoders are
        trained there: W is better disentangled), else Z."""
        return "w" if "w" in self.spaces else "z"

    def space_shape(self, space: str) -> tuple[int, ...]:
        """Shape of one code in ``space`` (without the batch dimension)."""
        if space == "z":
            return (self.z_dim,)
        raise FacesteerError(f"generator {self.name} has no latent space {space!r}; it has {self.spaces}")

    def config(self) -> dict[str, Any]:
        """What identifies this generator in a dataset manifest (name, dimensions, weights)."""
        return {"name": self.name, "z_dim": self.z_dim, "resolution": self.resolution}

    def sample_z(self, num: int, seed: int, start: int = 0) -> np.ndarray:
        """Latent codes z ~ N(0, I); row i depends only on (seed, start + i).

        Returns:
            float32 array of shape (num, z_dim).
        """
        return gaussian_rows(num, self.z_dim, seed, start)

    def map(self, z: np.ndarray, space: str = "w") -> np.ndarray:
        """Codes of ``space`` for the Gaussian codes z (N, z_dim): z itself for ``"z"``; style-based
        generators also map to ``"w"`` (N, w_dim) and ``"wp"`` (N, num_ws, w_dim).

        Raises:
            FacesteerError: this generator has no such space.
        """
        if space == "z":
            self.check_codes(z, "z")
            return np.array(z, dtype=np.float32)
        raise FacesteerError(f"generator {self.name} has no latent space {space!r}; it has {', '.join(self.spaces)}")

    def set_truncation(self, psi: float = 1.0, cutoff: int | None = None) -> None:
        """The truncation trick (style-based generators): psi = 1 (none) is the only value others accept.

        Raises:
            FacesteerError: psi != 1 on a generator without truncation.
        """
        if psi != 1.0 or cutoff is not None:
            raise FacesteerError(f"{self.name} has no truncation trick (it is not a style-based generator)")

    def check_codes(self, codes: np.ndarray | torch.Tensor, space: str = "z") -> None:
        """Raise a clear error unless ``codes`` is a batch of codes of ``space``."""
        expected = self.space_shape(space)
        shape = tuple(codes.shape)
        if shape[1:] != expected:
            wanted = ", ".join(map(str, expected))
            raise FacesteerError(f"codes for space {space!r} of {self.name} must have shape (N, {wanted}), got {shape}")

    def to(self, device: str | torch.device) -> Generator:
        """Move every network this generator holds to ``device`` (``synthesize_tensor`` then wants codes there;
        ``synthesize`` moves them itself)."""
        for value in vars(self).values():
            if isinstance(value, torch.nn.Module):
                value.to(device)
        return self

    @property
    def device(self) -> torch.device:
        """Where this generator's networks are (the CPU unless :meth:`to` moved them)."""
        for value in vars(self).values():
            if isinstance(value, torch.nn.Module):
                for parameter in value.parameters():
                    return parameter.device
        return torch.device("cpu")

    def tunable_parameters(self) -> list[torch.nn.Parameter]:
        """The weights pivotal tuning adjusts (:mod:`facesteer.inversion.tuning`), those ``synthesize_tensor``
        draws with.

        Raises:
            FacesteerError: the generator cannot be tuned (implemented for StyleGAN2 only).
        """
        raise FacesteerError(f"pivotal tuning (`method` pti) is implemented for StyleGAN2 generators, not {self.name}")

    def code_weights(self, layers: Sequence[int] | None = None) -> np.ndarray:
        """The weights through which a code enters the network linearly, for SeFa's closed-form factorisation.

        Style-based generators: the style (affine) weights of the W+ layers ``layers`` (default: all), one
        column per style channel; generators with a Z space only: the first layer's weight, one column per
        output unit (channel x position), and ``layers`` must be None or ``[0]``.

        Returns:
            float64 array (d, C): d = w_dim (style-based) or z_dim.

        Raises:
            FacesteerError: the generator does not expose such weights, or ``layers`` is out of range.
        """
        raise FacesteerError(f"{self.name} does not expose the weights SeFa factorises")

    def first_layer_features(self, z: torch.Tensor) -> torch.Tensor:
        """The first layer's activations, flattened: what GANSpace analyses for a generator without a mapping.

        Args:
            z: float32 tensor (N, z_dim).

        Returns:
            float32 tensor (N, F).
        """
        raise FacesteerError(f"{self.name} does not expose its first layer's activations")

    @abstractmethod
    def synthesize_tensor(self, codes: torch.Tensor, space: str = "z") -> torch.Tensor:
        """Differentiable synthesis.

        Args:
            codes: float32 tensor (N, *space_shape(space)).
            space: latent space of ``codes``.

        Returns:
            float32 tensor (N, 3, resolution, resolution), values in about [-1, 1].
        """

    @torch.inference_mode()
    def synthesize(self, codes: np.ndarray, space: str = "z", batch_size: int | None = None) -> np.ndarray:
        """Images for a batch of codes, synthesized ``batch_size`` at a time.

        Args:
            codes: float array (N, *space_shape(space)).
            space: latent space of ``codes``.
            batch_size: codes per forward pass, default ``preferred_batch_size`` (memory vs speed; results
                do not depend on it beyond floating-point rounding).

        Returns:
            uint8 array (N, resolution, resolution, 3), RGB.
        """
        self.check_codes(codes, space)
        codes = np.asarray(codes, dtype=np.float32)
        batch_size = batch_size or self.preferred_batch_size
        out = np.empty((len(codes), self.resolution, self.resolution, 3), dtype=np.uint8)
        for lo in range(0, len(codes), batch_size):
            batch = torch.from_numpy(np.array(codes[lo : lo + batch_size])).to(self.device)  # a copy: may be read-only
            out[lo : lo + batch_size] = to_uint8_images(self.synthesize_tensor(batch, space))
        return out
