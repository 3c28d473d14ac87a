"""The small classifier CNN behind the ``quality`` and race scores: 64x64 faces in, class logits out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facesteer.errors import FacesteerError
from facesteer.generators.ops import uint8_to_unit

INPUT_SIZE = 64
STEM_CHANNELS = 16
CHANNELS = (32, 64, 128)


def _conv(inputs: int, outputs: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU(True)]


class ConvClassifier(nn.Module):
    """(N, 3, 64, 64) in [-1, 1] -> (N, outputs) logits.

    A stride-2 stem and three stages of two 3x3 convolutions (the first with stride 2), global average pooling
    and one linear output: 0.29 M parameters.
    """

    def __init__(self, outputs: int, channels: tuple[int, ...] = CHANNELS) -> None:
        super().__init__()
        layers, previous = _conv(3, STEM_CHANNELS, 2), STEM_CHANNELS
        for width in channels:
            layers += [*_conv(previous, width, 2), *_conv(width, width, 1)]
            previous = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(previous, outputs)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images).mean(dim=(2, 3)))


def images_to_input(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, 64, 64) in [-1, 1] (resized bilinearly, antialiased, if not 64)."""
    x = uint8_to_unit(images)
    if x.shape[-1] != INPUT_SIZE or x.shape[-2] != INPUT_SIZE:
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False)
    return x


@torch.inference_mode()
def network_logits(network: nn.Module, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """(N, H, W, 3) uint8 -> the float32 outputs of ``network`` in eval mode, ``batch_size`` images at a time."""
    network.eval()
    out = [network(images_to_input(images[i : i + batch_size])).numpy() for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.empty((0,), np.float32)


def load_classifier(path: Path, network: nn.Module, what: str) -> dict[str, Any]:
    """Load safetensors weights (nothing in the file can run code) into ``network``, frozen in eval mode, and
    return the model card from the file's metadata.

    Raises:
        FacesteerError: an unreadable file, a card that is not a JSON object, or weights of another network
            (``what`` names the expected one).
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as handle:
            card = json.loads((handle.metadata() or {}).get("card", "{}"))
        state = load_file(str(path))
    except Exception as error:  # safetensors raises its own error types for corrupt files
        raise FacesteerError(f"{path} is not a readable safetensors file: {error}") from None
    if not isinstance(card, dict):
        raise FacesteerError(f"{path} has a corrupt model card in its metadata")
    try:
        network.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError as error:
        raise FacesteerError(f"{path} does not hold {what}: {error}") from None
    network.eval().requires_grad_(False)
    return card
