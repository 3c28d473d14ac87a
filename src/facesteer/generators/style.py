"""What every style-based generator (StyleGAN, StyleGAN2) shares: the z, w and wp spaces and truncation.

- ``z`` (z_dim,): the Gaussian input;
- ``w`` (w_dim,): the mapping network's output, before truncation (what ``sample`` stores as ``w.npy``);
- ``wp`` (num_ws, w_dim): W+, one w per synthesis layer, after truncation (the synthesis input).

Truncation (psi < 1) moves the first ``cutoff`` rows of W+ toward ``w_avg`` when codes are mapped from z or
w to W+; codes given in W+ are used as they are.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facesteer.errors import FacesteerError
from facesteer.generators.base import Generator


def broadcast_truncated(
    w: torch.Tensor, num_ws: int, w_avg: torch.Tensor, psi: float = 1.0, cutoff: int | None = None
) -> torch.Tensor:
    """w (N, w_dim) -> W+ (N, num_ws, w_dim), the first ``cutoff`` rows (all if None) moved toward ``w_avg``:
    w_avg + psi (w - w_avg)."""
    wp = w.unsqueeze(1).repeat(1, num_ws, 1)
    if psi != 1.0:
        cutoff = num_ws if cutoff is None else cutoff
        wp[:, :cutoff] = w_avg.lerp(wp[:, :cutoff], psi)
    return wp


class StyleBasedGenerator(Generator):
    """A Generator with a mapping network; subclasses provide :meth:`mapping`, :meth:`synthesis` and
    :attr:`w_avg`, and set ``z_dim``, ``w_dim``, ``num_ws`` and ``resolution``."""

    spaces = ("z", "w", "wp")
    preferred_batch_size = 16
    w_dim: int
    num_ws: int

    def __init__(self, name: str, source: str, path: str | os.PathLike[str] | None = None) -> None:
        self.name, self.source = name, source
        self.path = str(Path(path).resolve()) if path is not None else None
        self.truncation_psi, self.truncation_cutoff = 1.0, None

    @property
    @abstractmethod
    def w_avg(self) -> torch.Tensor:
        """(w_dim,) the mean of w, the centre of truncation."""

    @abstractmethod
    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, z_dim) -> w (N, w_dim), untruncated."""

    @abstractmethod
    def synthesis(self, wp: torch.Tensor) -> torch.Tensor:
        """W+ (N, num_ws, w_dim) -> images (N, 3, R, R) in about [-1, 1]."""

    @abstractmethod
    def style_weight(self, layer: int) -> torch.Tensor:
        """The style (affine) weight that W+ row ``layer`` drives: (channels, w_dim)."""

    def code_weights(self, layers: Sequence[int] | None = None) -> np.ndarray:
        """The style weights of the W+ ``layers`` (default all), transposed and concatenated: (w_dim, C)."""
        layers = range(self.num_ws) if layers is None else list(layers)
        if not layers or not all(0 <= layer < self.num_ws for layer in layers):
            raise FacesteerError(f"layers {list(layers)} out of range 0..{self.num_ws - 1} for {self.name}")
        return np.concatenate([self.style_weight(layer).detach().double().numpy().T for layer in layers], axis=1)

    def set_truncation(self, psi: float = 1.0, cutoff: int | None = None) -> None:
        """Set the truncation trick used when mapping to W+ (psi in [0, 1]; cutoff in 1..num_ws or None = all)."""
        if not 0.0 <= psi <= 1.0:
            raise FacesteerError(f"truncation psi must be in [0, 1], got {psi}")
        if cutoff is not None and not 1 <= cutoff <= self.num_ws:
            raise FacesteerError(f"truncation cutoff must be in 1..{self.num_ws} for {self.name}, got {cutoff}")
        self.truncation_psi, self.truncation_cutoff = float(psi), cutoff

    def space_shape(self, space: str) -> tuple[int, ...]:
        shapes = {"z": (self.z_dim,), "w": (self.w_dim,), "wp": (self.num_ws, self.w_dim)}
        if space not in shapes:
            raise FacesteerError(f"generator {self.name} has no latent space {space!r}; it has {self.spaces}")
        return shapes[space]

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "w_dim": self.w_dim,
            "num_ws": self.num_ws,
            "source": self.source,
            "truncation_psi": self.truncation_psi,
            "truncation_cutoff": self.truncation_cutoff,
            **({"path": self.path} if self.path else {}),
        }

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """w (N, w_dim) -> W+ (N, num_ws, w_dim), truncated."""
        return broadcast_truncated(w, self.num_ws, self.w_avg, self.truncation_psi, self.truncation_cutoff)

    def to_wp_tensor(self, codes: torch.Tensor, space: str) -> torch.Tensor:
        """Codes of ``space`` -> W+ (N, num_ws, w_dim), truncated unless already in W+."""
        self.check_codes(codes, space)
        if space == "wp":
            return codes
        return self.broadcast(self.mapping(codes) if space == "z" else codes)

    @torch.inference_mode()
    def map(self, z: np.ndarray, space: str = "w", batch_size: int = 1024) -> np.ndarray:
        """Map z (N, z_dim) to ``w`` (N, w_dim, untruncated) or ``wp`` (N, num_ws, w_dim, truncated)."""
        if space not in ("w", "wp"):
            return super().map(z, space)
        self.check_codes(z, "z")
        out = []
        for lo in range(0, len(z), batch_size):
            batch = torch.from_numpy(np.array(z[lo : lo + batch_size], dtype=np.float32)).to(self.w_avg.device)
            w = self.mapping(batch)
            out.append((w if space == "w" else self.broadcast(w)).cpu().numpy())
        return np.concatenate(out) if out else np.empty((0, *self.space_shape(space)), np.float32)

    def synthesize_tensor(self, codes: torch.Tensor, space: str = "z") -> torch.Tensor:
        return self.synthesis(self.to_wp_tensor(codes, space))
