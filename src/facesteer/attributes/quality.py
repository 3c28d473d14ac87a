"""The ``quality`` score: how real a generated face looks, from a classifier of real photos vs samples.

InterFaceGAN corrects a GAN's artifacts by moving samples along a "quality" boundary. facesteer's quality score
is the logit of a small CNN (:class:`RealismNet`) trained to tell the generator's own training photos (label
1) from its samples (label 0): positive = looks like a training photo, negative = looks generated. It exists
for a generator whose training photos are at hand (``stylegan2-utkface64``: UTKFace;
``stylegan2-anime64``: anime-faces-64); the default DCGAN's training set (DigiFace-1M) is not, so it has none.

Weights: ``weights/quality-GENERATOR.safetensors``, with the model card (data, held-out accuracy and AUROC,
the command) as JSON in its metadata and beside it (``.json``, ``.md``); trained by
``facesteer train-quality`` (:mod:`facesteer.training.quality`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facesteer.attributes.base import check_images
from facesteer.errors import FacesteerError
from facesteer.generators import GENERATORS, WEIGHTS_DIR
from facesteer.generators.ops import uint8_to_unit

INPUT_SIZE = 64
STEM_CHANNELS = 16
CHANNELS = (32, 64, 128)


def _conv(inputs: int, outputs: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU(True)]


class RealismNet(nn.Module):
    """(N, 3, 64, 64) in [-1, 1] -> (N,) logit; > 0 = real photo, < 0 = generated.

    A stride-2 stem and three stages of two 3x3 convolutions (the first with stride 2), global average pooling
    and one linear output: 0.29 M parameters.
    """

    def __init__(self, channels: tuple[int, ...] = CHANNELS) -> None:
        super().__init__()
        layers, previous = _conv(3, STEM_CHANNELS, 2), STEM_CHANNELS
        for width in channels:
            layers += [*_conv(previous, width, 2), *_conv(width, width, 1)]
            previous = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(previous, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images).mean(dim=(2, 3)))[:, 0]


def images_to_input(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, 64, 64) in [-1, 1] (resized bilinearly, antialiased, if not 64)."""
    x = uint8_to_unit(images)
    if x.shape[-1] != INPUT_SIZE or x.shape[-2] != INPUT_SIZE:
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False)
    return x


@torch.inference_mode()
def realism_logits(network: RealismNet, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N,) float32 logits of ``network`` in eval mode, ``batch_size`` images at a time."""
    network.eval()
    out = [network(images_to_input(images[i : i + batch_size])).numpy() for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.empty(0, np.float32)


def quality_weights(generator: str) -> Path:
    """Where the shipped quality model of ``generator`` lives (it may not exist)."""
    return WEIGHTS_DIR / f"quality-{generator}.safetensors"


def default_quality_out(generator: str) -> Path:
    """Where ``train-quality`` writes by default: the package's weights for a registered generator (so the
    ``quality`` scorer finds them); a generator loaded from a file needs an explicit ``--out``."""
    if generator not in GENERATORS:
        raise FacesteerError(f"{generator} is not a registered generator: give --out FILE.safetensors")
    return quality_weights(generator)


class QualityScorer:
    """The ``quality`` scorer: one column, the realism logit of each face.

    Args:
        generator: the generator whose samples it judges (its shipped weights are loaded); or
        weights: a quality safetensors file (its card names the generator).
    """

    name = "quality"
    attributes = ("quality",)

    def __init__(
        self, generator: str | None = None, weights: str | os.PathLike[str] | None = None, batch_size: int = 256
    ) -> None:
        from safetensors import safe_open
        from safetensors.torch import load_file

        if weights is None:
            if generator is None:
                raise FacesteerError("the quality scorer needs a generator (or a weights file)")
            weights = quality_weights(generator)
            if not weights.is_file():
                raise FacesteerError(
                    f"no quality model for {generator}: train one with `facesteer train-quality --generator "
                    f"{generator} --data FOLDER_OF_ITS_TRAINING_PHOTOS` (shipped: {', '.join(shipped_quality())})"
                )
        path = Path(weights)
        if not path.is_file():
            raise FacesteerError(f"quality weights {path} not found")
        try:
            with safe_open(str(path), framework="pt") as handle:
                self.card: dict[str, Any] = json.loads((handle.metadata() or {}).get("card", "{}"))
            state = load_file(str(path))
        except Exception as error:  # safetensors raises its own error types for corrupt files
            raise FacesteerError(f"{path} is not a readable safetensors file: {error}") from None
        if not isinstance(self.card, dict) or not isinstance(self.card.get("generator", ""), str):
            raise FacesteerError(f"{path} has a corrupt model card in its metadata")
        self.network = RealismNet()
        try:
            self.network.load_state_dict({k: v.float() for k, v in state.items()})
        except RuntimeError as error:
            raise FacesteerError(f"{path} does not hold a RealismNet: {error}") from None
        self.network.eval().requires_grad_(False)
        self.generator = self.card.get("generator")
        if generator is not None and self.generator not in (None, generator):
            raise FacesteerError(f"{path} judges samples of {self.generator}, not of {generator}")
        self.weights_path, self.batch_size = path, batch_size

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "attributes": list(self.attributes), "weights": self.weights_path.name,
                "generator": self.generator}  # fmt: skip

    def score(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 -> (N, 1) float32 realism logits."""
        return realism_logits(self.network, check_images(images), self.batch_size).reshape(-1, 1).astype(np.float32)

    def close(self) -> None:
        """Nothing to release; present for the scorer protocol."""

    def __enter__(self) -> QualityScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def shipped_quality() -> list[str]:
    """Generators with a shipped quality model."""
    return sorted(p.stem.removeprefix("quality-") for p in WEIGHTS_DIR.glob("quality-*.safetensors"))
