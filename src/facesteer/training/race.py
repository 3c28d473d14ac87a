"""Training the race network (:mod:`facesteer.attributes.race`) on UTKFace's race labels.

Photos: the UTKFace-named files of a folder (``AGE_GENDER_RACE_DATE.jpg.chip.jpg``), resized to 64 px; every
tenth, spread evenly over the sorted names, is held out. Training: Adam with a one-cycle schedule, cross-entropy,
random horizontal flips, ``epochs`` passes, seeded. The card records held-out accuracy, balanced accuracy (the
mean of the per-group recalls: the groups are far from equal in size) and the per-group recall.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from facesteer.attributes.convnet import ConvClassifier
from facesteer.attributes.race import RACES, race_probabilities
from facesteer.datasets import evenly_spaced, load_images, utkface_faces
from facesteer.errors import FacesteerError
from facesteer.training.classifier import fit_classifier, half_state, save_classifier

HELD_OUT = 0.1


def train_race(
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    epochs: int = 12,
    batch_size: int = 128,
    learning_rate: float = 2e-3,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Train the race network on the UTKFace photos in ``data``; write ``out`` (.safetensors, the card in its
    metadata) and the card beside it (.json, .md).

    Returns:
        The card: data, counts, loss per epoch, held-out accuracy, balanced accuracy, recall per group.
    """
    out = Path(out)
    if out.suffix != ".safetensors":
        raise FacesteerError(f"`out` must end in .safetensors, got {out}")
    started = time.perf_counter()
    faces = utkface_faces(data)
    if len(faces) < 50:
        raise FacesteerError(f"{data} holds {len(faces)} UTKFace photos; the race network needs at least 50")
    held_paths = set(evenly_spaced([f.path for f in faces], max(5, round(len(faces) * HELD_OUT))))
    train = [f for f in faces if f.path not in held_paths]
    held = [f for f in faces if f.path in held_paths]
    images = load_images([f.path for f in train], 64, progress, desc=f"reading {Path(data).name}")
    held_images = load_images([f.path for f in held], 64, progress, desc="reading held-out photos")
    labels = torch.tensor([f.race for f in train])
    held_labels = np.array([f.race for f in held])

    torch.manual_seed(seed)
    network = ConvClassifier(len(RACES))
    losses = fit_classifier(network, images, labels, F.cross_entropy, epochs, batch_size, learning_rate, seed,
                            progress, desc="training race network")  # fmt: skip

    state = half_state(network)
    network.load_state_dict({k: v.float() if v.dtype.is_floating_point else v for k, v in state.items()})
    predicted = race_probabilities(network, held_images).argmax(axis=1)  # the shipped (fp16) weights
    recall = {race: float(np.mean(predicted[held_labels == code] == code)) if np.any(held_labels == code) else None
              for code, race in enumerate(RACES)}  # fmt: skip
    card = {
        "data": str(data),
        "photos": {"train": len(train), "held_out": len(held)},
        "held_out_per_group": {race: int(np.sum(held_labels == code)) for code, race in enumerate(RACES)},
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        "loss_per_epoch": [round(v, 4) for v in losses],
        "held_out_accuracy": float(np.mean(predicted == held_labels)),
        "held_out_balanced_accuracy": float(np.mean([v for v in recall.values() if v is not None])),
        "held_out_recall": recall,
        "seconds": round(time.perf_counter() - started, 1),
        "hardware": f"{platform.machine()} CPU, torch {torch.__version__}",
        "command": f"facesteer train-race --data {data} --epochs {epochs} --seed {seed} --out {os.path.relpath(out)}",
    }
    save_classifier(out, state, card, race_card_markdown(card))
    return card


def race_card_markdown(card: dict[str, Any]) -> str:
    recall = ", ".join(f"{race} {value:.3f}" for race, value in card["held_out_recall"].items() if value is not None)
    groups = ", ".join(f"{race} {count}" for race, count in card["held_out_per_group"].items())
    return f"""# race-utkface: apparent race from a 64-px face

- **What**: a 0.29 M-parameter CNN (`facesteer.attributes.convnet.ConvClassifier`, 5 logits: White, Black,
  Asian, Indian, Others), the race columns of the `extended` scorer (probabilities of the four named groups).
- **Data**: UTKFace's race labels, `{card["data"]}`: {card["photos"]["train"]:,} photos to train, every tenth
  ({card["photos"]["held_out"]:,}: {groups}) held out.
- **Held out**: accuracy {card["held_out_accuracy"]:.3f}, balanced accuracy {card["held_out_balanced_accuracy"]:.3f};
  recall per group: {recall}.
- **Training**: {card["epochs"]} epochs, batch {card["batch_size"]}, Adam one-cycle lr {card["learning_rate"]},
  seed {card["seed"]}; {card["seconds"]:.0f} s on {card["hardware"]}.
- **Reproduce**: `{card["command"]}`
- **Limits**: a dataset's labels of apparent race on aligned crops, imbalanced; meant to measure what a latent
  direction changes, not to classify people.
"""
