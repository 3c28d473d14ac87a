"""Apparent race from a face picture: a small CNN trained on UTKFace's race labels.

UTKFace labels each photo White, Black, Asian, Indian or Others. The network (:class:`ConvClassifier`, five
logits) is trained by ``facesteer train-race`` (:mod:`facesteer.training.race`) on the photos of
``../shared/data/utkface-crop-part1`` (9,780 aligned face crops), with a tenth held out; the held-out accuracy is
in its model card (``weights/race-utkface.md``). Scores are the softmax probabilities of the four named groups,
each 0 to 1 (the rest is "Others"); the traversal table correlates each with the steps of a direction, so a
direction that changes skin tone or facial features shows up in them. These are a dataset's labels of apparent
race, with its imbalance (part 1 holds 405 Black faces of 9,780): use them to measure directions, not people.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facesteer import shipped
from facesteer.attributes.convnet import ConvClassifier, load_classifier, network_logits
from facesteer.errors import FacesteerError

RACES = ("white", "black", "asian", "indian", "others")  #: UTKFace's codes 0..4
RACE_ATTRIBUTES = tuple(f"race_{race}" for race in RACES[:4])
WEIGHTS = shipped.scorer_file("race-utkface")


def load_race_network(path: str | os.PathLike[str] = WEIGHTS) -> tuple[ConvClassifier, dict[str, Any]]:
    """The race network and its model card, read from safetensors (nothing in the file can run code).

    Raises:
        FacesteerError: the file is missing, unreadable, or holds another network.
    """
    path = Path(path)
    if not path.is_file():
        raise FacesteerError(f"race weights {path} not found (train them with `facesteer train-race`)")
    network = ConvClassifier(len(RACES))
    return network, load_classifier(path, network, "the race network")


def race_probabilities(network: ConvClassifier, images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 faces -> (N, 5) float32 probabilities of :data:`RACES`."""
    return torch.softmax(torch.from_numpy(network_logits(network, images)), dim=1).numpy()
