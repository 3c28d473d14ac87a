"""The ``predictor`` scorer: facesteer's own multi-task CNN, distilled from the teachers, for 64x64 faces.

InterFaceGAN scores 500,000 faces; the teachers score about 43 faces a second per process, the predictor about
5,000 on 2 cores. It predicts the five teacher attributes and whether the teachers would find a face at all, from
the 64x64 image:

    input (N, 3, 64, 64) in [-1, 1]
    stem: 3x3 conv stride 2 -> BN -> ReLU, 16 channels (64 -> 32 px)
    3 stages of [3x3 conv stride 2 -> BN -> ReLU -> 3x3 conv -> BN -> ReLU], 32-64-128 channels (32 -> 4 px)
    global average pool -> linear -> 6 outputs:
        pose (degrees), smile (0-1, sigmoid), age (years), gender (logit), eyeglasses (logit), face (logit)

A row whose face probability is below 0.5 is reported as NaN, like a teacher that finds no face. The weights
ship inside the package (``facesteer/weights/predictor-dcgan64.safetensors``, fp16) with a model card beside
them; ``facesteer train-predictor`` rebuilds them from one command and a seed.

A predictor is for the generator whose faces it was distilled on, and for no other: the shipped one saw only
faces of ``dcgan-digiface64`` (on real photos downscaled to 64 px its smile agreement with human labels is at
chance). :attr:`PredictorScorer.generator` names that generator (from the weights file's metadata, else its
model card's ``"generator"``, else ``dcgan-digiface64``: the cards written before the field existed were all for
it), and :func:`check_scorer_fits` refuses to score another generator's faces with it unless forced.
``facesteer train-predictor --generator NAME`` distils a predictor for another generator.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facesteer import shipped
from facesteer.attributes.base import FACE_ATTRIBUTES, check_images
from facesteer.errors import FacesteerError
from facesteer.generators import registry
from facesteer.generators.base import Generator
from facesteer.generators.ops import uint8_to_unit

ATTRIBUTES = FACE_ATTRIBUTES
OUTPUTS = (*ATTRIBUTES, "face")
#: regression targets are standardised with these (mean, std) before the loss: pose in degrees, age in years
TARGET_SCALE = {"pose": (0.0, 15.0), "age": (35.0, 12.0)}
WEIGHTS_NAME = "predictor-dcgan64.safetensors"
#: the generator of a predictor whose weights and card do not name one (the shipped predictor, and every
#: predictor written before the card had a ``generator`` field, was distilled on this generator's faces)
DEFAULT_PREDICTOR_GENERATOR = "dcgan-digiface64"
#: key of the generator in the safetensors metadata and in the model card
GENERATOR_KEY = "generator"
STEM_CHANNELS = 16
CHANNELS = (32, 64, 128)  # about 11 M multiply-adds per image, 0.29 M parameters


def _conv(inputs: int, outputs: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU(True)]


def _stage(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(*_conv(inputs, outputs, 2), *_conv(outputs, outputs, 1))


class AttributeNet(nn.Module):
    """The multi-task CNN: (N, 3, 64, 64) in [-1, 1] -> (N, 6) raw outputs (see the module docstring)."""

    def __init__(self, channels: tuple[int, ...] = CHANNELS) -> None:
        super().__init__()
        stages, previous = [nn.Sequential(*_conv(3, STEM_CHANNELS, 2))], STEM_CHANNELS
        for width in channels:
            stages.append(_stage(previous, width))
            previous = width
        self.features = nn.Sequential(*stages)
        self.head = nn.Linear(previous, len(OUTPUTS))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images).mean(dim=(2, 3)))


def decode_outputs(raw: torch.Tensor) -> np.ndarray:
    """Raw network outputs (N, 6) -> scores (N, 5) [pose, smile, age, gender, eyeglasses], NaN where no face."""
    raw = raw.float()
    pose = raw[:, 0] * TARGET_SCALE["pose"][1] + TARGET_SCALE["pose"][0]
    smile = torch.sigmoid(raw[:, 1])
    age = raw[:, 2] * TARGET_SCALE["age"][1] + TARGET_SCALE["age"][0]
    gender, glasses, face = torch.sigmoid(raw[:, 3]), torch.sigmoid(raw[:, 4]), torch.sigmoid(raw[:, 5])
    scores = torch.stack([pose, smile, age.clamp(min=0), gender, glasses], dim=1).numpy().astype(np.float32)
    scores[face.numpy() < 0.5] = np.nan
    return scores


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 64, 64, 3) -> float32 (N, 3, 64, 64) in [-1, 1]."""
    return uint8_to_unit(images)


def packaged_weights() -> Path:
    """Path of the predictor weights shipped inside the package."""
    return shipped.scorer_file(WEIGHTS_NAME.removesuffix(".safetensors"))


def generator_id(generator: Generator | dict[str, Any] | str) -> str:
    """How a predictor names a generator: its registered name (``dcgan-digiface64``), or, for a generator loaded
    from a checkpoint file, the file's absolute path (either is what ``--generator`` takes).

    Args:
        generator: a generator, its ``config()`` (as a dataset manifest stores it), or a ``--generator`` value.
    """
    if isinstance(generator, str):
        return generator if generator in registry() else str(Path(generator).resolve())
    config = generator if isinstance(generator, dict) else generator.config()
    name, path = config.get("name"), config.get("path")
    # a registered generator records no path (the default DCGAN) or its file in the package (shipped StyleGAN2s)
    if name in registry() and (path is None or Path(path).resolve() == shipped.generator_file(name).resolve()):
        return str(name)
    return str(Path(path).resolve()) if path else str(name)


def _weights_generator(path: Path) -> str:
    """The generator a predictor weights file is for: its metadata, else its card's, else the default."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as weights:
        named = (weights.metadata() or {}).get(GENERATOR_KEY)
    card = path.with_suffix(".json")
    if not named and card.is_file():
        try:
            named = json.loads(card.read_text()).get(GENERATOR_KEY)
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as error:
            raise FacesteerError(f"the model card {card} is corrupt: {error}") from None
    return str(named or DEFAULT_PREDICTOR_GENERATOR)


def check_scorer_fits(
    generator: Generator | dict[str, Any] | str, scorer: object | None, force: bool = False
) -> str | None:
    """Refuse to score faces of ``generator`` with a predictor distilled on another generator's faces.

    Args:
        generator: the generator whose faces would be scored, its ``config()`` (a dataset manifest's
            ``"generator"``, e.g. for ``evaluate``) or a ``--generator`` value.
        scorer: the scorer (or None); only a :class:`PredictorScorer` is checked, every other scorer fits.
        force: score anyway.

    Returns:
        None when the scorer fits; with ``force``, the warning to show (why the scores may be meaningless).

    Raises:
        FacesteerError: the scorer is for another generator and ``force`` is False.
    """
    if not isinstance(scorer, PredictorScorer):
        return None
    made_for, wanted, name = scorer.generator, generator_id(generator), scorer.name
    if wanted == made_for:
        return None
    if force:
        return (
            f"the {name} scorer was distilled on faces of {made_for}, not of {wanted}: its scores of these faces "
            "may be meaningless (it is not validated on any other faces)"
        )
    raise FacesteerError(
        f"the {name} scorer is for faces of generator {made_for} only, not {wanted} (on other faces its scores "
        f"may be meaningless); use `scorer` teachers, or distil a predictor for it with `facesteer train-predictor "
        f"--generator {wanted}` on teacher-scored runs of it, or pass `force` to score anyway"
    )


class PredictorScorer:
    """Scores 64x64 faces with the distilled :class:`AttributeNet`.

    Args:
        weights: safetensors file; default the packaged one.
        batch_size: images per forward pass.

    Attributes:
        generator: the generator whose faces it was distilled on (see :func:`generator_id`), from the weights'
            metadata or model card; ``dcgan-digiface64`` where neither names one. :func:`check_scorer_fits`
            refuses other generators.
    """

    name = "predictor"
    attributes = ATTRIBUTES

    def __init__(self, weights: str | os.PathLike[str] | None = None, batch_size: int = 64) -> None:
        from safetensors.torch import load_file

        path = Path(weights) if weights is not None else packaged_weights()
        if not path.is_file():
            raise FacesteerError(
                f"predictor weights {path} not found; build them with `facesteer train-predictor` or reinstall"
            )
        try:
            state = load_file(str(path))
        except Exception as error:  # safetensors raises its own error types for corrupt files
            raise FacesteerError(f"{path} is not a readable safetensors file: {error}") from None
        self.network = AttributeNet()
        try:
            self.network.load_state_dict({k: v.float() for k, v in state.items()})
        except RuntimeError as error:
            raise FacesteerError(f"{path} does not hold an AttributeNet: {error}") from None
        self.network.eval().requires_grad_(False)
        self.weights_path = path
        self.generator = _weights_generator(path)
        self.batch_size = batch_size

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "attributes": list(self.attributes), "weights": self.weights_path.name}

    @torch.inference_mode()
    def score(self, images: np.ndarray) -> np.ndarray:
        """Score images (N, 64, 64, 3) uint8 -> (N, 5) float32; NaN rows where no face is predicted."""
        images = check_images(images)
        if images.shape[1:3] != (64, 64):
            raise FacesteerError(f"the predictor takes 64x64 faces, got {images.shape[1]}x{images.shape[2]}")
        out = [
            decode_outputs(self.network(images_to_tensor(images[i : i + self.batch_size])))
            for i in range(0, len(images), self.batch_size)
        ]
        return np.concatenate(out) if out else np.empty((0, len(self.attributes)), np.float32)

    def close(self) -> None:
        """Nothing to release; present for the AttributeScorer protocol."""

    def __enter__(self) -> PredictorScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
