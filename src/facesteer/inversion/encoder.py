"""The inversion encoder: one forward pass from a picture to a code, the start that optimisation refines.

    input (N, 3, R, R) in [-1, 1], R = 64
    4 stages of [3x3 conv stride 2 -> LeakyReLU -> 3x3 conv -> LeakyReLU], 32-64-128-256 channels (64 -> 4 px)
    flatten (256 x 4 x 4) -> linear 512 -> LeakyReLU -> linear d
    output: the code in the latent prior's whitened coordinates; code = prior.unwhiten(output)

It encodes into W for style-based generators and into Z for the DCGAN (``Encoder.space``). Trained by
:func:`facesteer.training.encoder.train_encoder`: on generated pairs (the code is known: latent loss) and on the
generator's training photos (only image losses), with the pixel, LPIPS, realism and prior terms NFE and
in-domain inversion use. Saved as safetensors (weights and the prior's mean and Cholesky factor; the card as
JSON metadata): nothing in the file can run code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facesteer import shipped
from facesteer.errors import FacesteerError
from facesteer.generators.base import Generator
from facesteer.inversion.prior import LatentPrior
from facesteer.resumable import read_checkpoint, write_checkpoint

CHANNELS = (32, 64, 128, 256)
HIDDEN = 512


class Encoder(nn.Module):
    """(N, 3, resolution, resolution) in [-1, 1] -> (N, code_dim) whitened codes.

    Args:
        resolution: input side (a power of two >= 16).
        code_dim: size of the code.
    """

    def __init__(self, resolution: int, code_dim: int) -> None:
        super().__init__()
        if resolution < 16 or resolution & (resolution - 1):
            raise FacesteerError(f"the encoder needs a power-of-two resolution >= 16, got {resolution}")
        layers: list[nn.Module] = []
        previous = 3
        for width in CHANNELS:
            layers += [nn.Conv2d(previous, width, 3, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True),
                       nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)]  # fmt: skip
            previous = width
        self.features = nn.Sequential(*layers)
        side = resolution // 2 ** len(CHANNELS)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(previous * side * side, HIDDEN), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(HIDDEN, code_dim),
        )  # fmt: skip
        self.resolution, self.code_dim = resolution, code_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, self.resolution, self.resolution):
            raise FacesteerError(
                f"encoder input must have shape (N, 3, {self.resolution}, {self.resolution}), got {tuple(images.shape)}"
            )
        return self.head(self.features(images))


class InversionEncoder:
    """An :class:`Encoder` with the prior whose coordinates it predicts: pictures in, codes out.

    Attributes:
        network: the Encoder (eval mode).
        prior: the :class:`LatentPrior` of ``space``.
        space: ``w`` or ``z``.
        card: what the file says about its training.
    """

    def __init__(self, network: Encoder, prior: LatentPrior, space: str, card: dict[str, Any]) -> None:
        self.network, self.prior, self.space, self.card = network, prior, space, card

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, R, R) in [-1, 1] -> codes (N, code_dim) of ``space``."""
        self.network.eval()
        return self.prior.unwhiten(self.network(images))


def encoder_weights(generator: str) -> Path:
    """Where the shipped encoder of ``generator`` lives (it may not exist)."""
    return shipped.encoder_file(generator)


def save_encoder(path: str | os.PathLike[str], network: Encoder, prior: LatentPrior, card: dict[str, Any]) -> Path:
    """Write the encoder's weights (fp32), the prior's mean and Cholesky factor, and ``card`` as metadata."""
    tensors = {f"network.{k}": v.detach().contiguous() for k, v in network.state_dict().items()}
    tensors |= {"prior.mean": prior.mean.contiguous(), "prior.cholesky": prior.cholesky.contiguous()}
    write_checkpoint(path, tensors, {"card": json.dumps(card)})
    return Path(path)


def load_encoder(generator: Generator, path: str | os.PathLike[str] | None = None) -> InversionEncoder:
    """The encoder of ``generator``: the file at ``path``, else the shipped one.

    Raises:
        FacesteerError: no such file, not a readable one, or an encoder of another generator or shape.
    """
    path = Path(path) if path is not None else encoder_weights(generator.name)
    if not path.is_file():
        raise FacesteerError(
            f"no encoder at {path}: train one with `facesteer train-encoder --generator {generator.name}`"
        )
    tensors, metadata = read_checkpoint(path)
    try:
        card = json.loads(metadata.get("card", "{}"))
    except json.JSONDecodeError:
        card = None
    if not isinstance(card, dict):
        raise FacesteerError(f"{path} has a corrupt model card in its metadata")
    if card.get("generator") != generator.name:
        raise FacesteerError(f"{path} encodes pictures for {card.get('generator')}, not for {generator.name}")
    space = generator.edit_space
    code_dim = generator.space_shape(space)[0]
    network = Encoder(generator.resolution, code_dim)
    try:
        network.load_state_dict({k.removeprefix("network."): v.float() for k, v in tensors.items()
                                 if k.startswith("network.")})  # fmt: skip
        prior = LatentPrior(space, tensors["prior.mean"], tensors["prior.cholesky"])
    except (RuntimeError, KeyError, IndexError, FacesteerError) as error:
        raise FacesteerError(f"{path} does not hold an encoder for {generator.name}: {error}") from None
    if prior.mean.shape != (code_dim,):
        raise FacesteerError(f"{path} holds a prior of size {prior.mean.shape[0]}, not {code_dim}")
    network.eval().requires_grad_(False)
    return InversionEncoder(network, prior, space, card)
