"""Training the small 64-px classifiers (the quality and race networks): one loop, one way to ship them.

The loop: Adam with a one-cycle schedule, ``epochs`` shuffled passes (``numpy.random.default_rng(seed)``: the
order, then a random horizontal flip per image), mean loss per epoch. Shipping: fp16 weights in safetensors
with the model card as JSON in its metadata, and the card beside it as ``.json`` and ``.md``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from facesteer.attributes.convnet import images_to_input
from facesteer.files import atomic_path, write_json, write_safetensors


def fit_classifier(
    network: nn.Module,
    images: np.ndarray,
    targets: torch.Tensor,
    loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    progress: bool = True,
    desc: str = "training",
) -> list[float]:
    """Train ``network`` on uint8 ``images`` (N, H, W, 3) and ``targets`` (N, ...) with ``loss_of(outputs,
    targets)``; returns the mean loss of each epoch."""
    optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate)
    rng = np.random.default_rng(seed)
    steps = epochs * ((len(images) + batch_size - 1) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, learning_rate, total_steps=steps)
    losses = []
    bar = tqdm(total=steps, desc=desc, unit="step", disable=not progress)
    for _ in range(epochs):
        network.train()
        order, total = rng.permutation(len(images)), 0.0
        for lo in range(0, len(order), batch_size):
            batch = np.sort(order[lo : lo + batch_size])
            x = images_to_input(images[batch])
            flip = torch.from_numpy(rng.random(len(batch)) < 0.5)
            x[flip] = x[flip].flip(-1)
            loss = loss_of(network(x), targets[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(batch)
            bar.update(1)
        losses.append(total / len(images))
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    bar.close()
    return losses


def half_state(network: nn.Module) -> dict[str, torch.Tensor]:
    """The network's state dict as shipped: floating-point tensors in fp16, contiguous."""
    return {k: v.detach().to(torch.float16 if v.dtype.is_floating_point else v.dtype).contiguous()
            for k, v in network.state_dict().items()}  # fmt: skip


def save_classifier(
    out: str | os.PathLike[str], state: dict[str, torch.Tensor], card: dict[str, Any], markdown: str
) -> None:
    """Write ``out`` (.safetensors, the card in its metadata), ``out.json`` and ``out.md``, each atomically."""
    out = Path(out)
    write_safetensors(out, state, {"card": json.dumps(card)})
    write_json(out.with_suffix(".json"), card)
    with atomic_path(out.with_suffix(".md")) as temporary:
        temporary.write_text(markdown)
