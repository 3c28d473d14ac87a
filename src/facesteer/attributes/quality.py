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

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facesteer import shipped
from facesteer.attributes.base import check_images
from facesteer.attributes.convnet import ConvClassifier, load_classifier, network_logits
from facesteer.errors import FacesteerError
from facesteer.generators import registry


class RealismNet(ConvClassifier):
    """(N, 3, 64, 64) in [-1, 1] -> (N,) logit; > 0 = real photo, < 0 = generated."""

    def __init__(self) -> None:
        super().__init__(outputs=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return super().forward(images)[:, 0]


def realism_logits(network: RealismNet, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N,) float32 logits of ``network`` in eval mode, ``batch_size`` images at a time."""
    return network_logits(network, images, batch_size)


def quality_weights(generator: str) -> Path:
    """Where the shipped quality model of ``generator`` lives (it may not exist)."""
    return shipped.quality_file(generator)


def default_quality_out(generator: str) -> Path:
    """Where ``train-quality`` writes by default: the package's weights for a registered generator (so the
    ``quality`` scorer finds them); a generator loaded from a file needs an explicit ``--out``."""
    if generator not in registry():
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
        self.network = RealismNet()
        self.card: dict[str, Any] = load_classifier(path, self.network, "a RealismNet")
        if not isinstance(self.card.get("generator", ""), str):
            raise FacesteerError(f"{path} has a corrupt model card in its metadata")
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
    return shipped.shipped_for("quality")
