"""Training the realism classifier behind the ``quality`` score (:mod:`facesteer.attributes.quality`).

Data: the generator's training photos (label 1), resized to its resolution, and as many of its samples (label 0), rows
0.. of ``seed``. A tenth of each, spread evenly, is held out: the photos by file, the samples as rows after
the training ones. Training: Adam, binary cross-entropy, random horizontal flips, ``epochs`` passes, seeded.
The card records held-out accuracy and ROC AUC; the score is the logit (positive = real-looking).
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
from tqdm import tqdm

from facesteer.attributes.quality import RealismNet, realism_logits
from facesteer.datasets import evenly_spaced, list_images, load_images
from facesteer.errors import FacesteerError
from facesteer.generators.base import Generator, weights_identity
from facesteer.stats import auroc
from facesteer.training.classifier import fit_classifier, half_state, save_classifier

HELD_OUT = 0.1


def split_photos(folder: str | os.PathLike[str]) -> tuple[list[Path], list[Path]]:
    """(training, held-out) photo paths: every tenth file, spread evenly over the sorted folder, is held out."""
    paths = list_images(folder)
    if len(paths) < 20:
        raise FacesteerError(f"{folder} holds {len(paths)} images; a realism classifier needs at least 20")
    held = set(evenly_spaced(paths, max(2, round(len(paths) * HELD_OUT))))
    return [p for p in paths if p not in held], sorted(held)


def train_quality(
    generator: Generator,
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    epochs: int = 6,
    batch_size: int = 128,
    learning_rate: float = 2e-3,
    seed: int = 1000,
    progress: bool = True,
) -> dict[str, Any]:
    """Train a realism classifier for ``generator`` on the photos in ``data``; write ``out`` (.safetensors,
    the card in its metadata) and the card beside it (.json, .md).

    ``seed`` seeds the samples (rows 0.. of it) and the training; keep it apart from the seeds whose samples
    the classifier will judge (a run sampled with the same seed would be scored by a classifier that saw it).

    Returns:
        The card: generator, data, counts, epochs, loss per epoch, held-out accuracy and AUROC, seconds.
    """
    out = Path(out)
    if out.suffix != ".safetensors":
        raise FacesteerError(f"`out` must end in .safetensors, got {out}")
    started = time.perf_counter()
    train_paths, held_paths = split_photos(data)
    real = load_images(train_paths, generator.resolution, progress, desc=f"reading {Path(data).name}")
    real_held = load_images(held_paths, generator.resolution, progress, desc="reading held-out photos")
    fake = _synthesize(generator, len(real), seed, 0, progress)
    fake_held = _synthesize(generator, len(real_held), seed, len(real), progress)

    torch.manual_seed(seed)
    network = RealismNet()
    images = np.concatenate([real, fake])
    labels = torch.cat([torch.ones(len(real)), torch.zeros(len(fake))])
    losses = fit_classifier(network, images, labels, F.binary_cross_entropy_with_logits, epochs, batch_size,
                            learning_rate, seed, progress, desc="training realism classifier")  # fmt: skip

    held_logits = np.concatenate([realism_logits(network, real_held), realism_logits(network, fake_held)])
    held_labels = np.r_[np.ones(len(real_held), bool), np.zeros(len(fake_held), bool)]
    card = {
        "generator": generator.name,
        "generator_weights": weights_identity(generator.config()),
        "data": str(data),
        "photos": {"train": len(real), "held_out": len(real_held)},
        "samples": {"train": len(fake), "held_out": len(fake_held), "seed": seed},
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "loss_per_epoch": [round(v, 4) for v in losses],
        "held_out_accuracy": float(np.mean((held_logits > 0) == held_labels)),
        "held_out_auroc": auroc(held_labels, held_logits),
        "seconds": round(time.perf_counter() - started, 1),
        "hardware": f"{platform.machine()} CPU, torch {torch.__version__}",
        "command": f"facesteer train-quality --generator {generator.name} --data {data} --epochs {epochs} "
        f"--seed {seed} --out {os.path.relpath(out)}",
    }
    state = half_state(network)
    save_classifier(out, state, card, quality_card_markdown(card))
    return card


def _synthesize(generator: Generator, num: int, seed: int, start: int, progress: bool) -> np.ndarray:
    out = np.empty((num, generator.resolution, generator.resolution, 3), np.uint8)
    for lo in tqdm(range(0, num, 256), desc=f"sampling {generator.name}", unit="batch", disable=not progress):
        count = min(256, num - lo)
        out[lo : lo + count] = generator.synthesize(generator.sample_z(count, seed, start + lo))
    return out


def quality_card_markdown(card: dict[str, Any]) -> str:
    return f"""# Quality model for `{card["generator"]}`

A realism classifier (RealismNet, 0.29 M parameters, fp16): its logit is facesteer's `quality` score for
samples of `{card["generator"]}`; positive = looks like one of its training photos, negative = looks generated.

- Data: {card["photos"]["train"]:,} photos of `{card["data"]}` (label 1) and {card["samples"]["train"]:,} samples
  (seed {card["samples"]["seed"]}, label 0); held out: {card["photos"]["held_out"]:,} photos (every tenth file,
  spread evenly) and {card["samples"]["held_out"]:,} later samples.
- Training: {card["epochs"]} epochs, batch {card["batch_size"]}, Adam with a one-cycle schedule (peak learning
  rate {card["learning_rate"]}), random horizontal flips; loss per epoch {card["loss_per_epoch"]};
  {card["seconds"] / 60:.1f} min on {card["hardware"]}.
- Held out: accuracy **{card["held_out_accuracy"]:.3f}**, ROC AUC **{card["held_out_auroc"]:.3f}**.
- Command: `{card["command"]}`
"""
