"""What one training step costs per recipe: images per second of `train-gan`'s step, in one run, with the ratio
to StyleGAN2's discriminator in float32 (the baseline).

Each recipe trains a few warm-up steps, then --steps timed steps, on random images (the cost does not depend on
them), with the bench recipes' generator (channel_base 2048, channel_max 256, z and w 128, batch 32). Run it
on an idle machine (no training beside it): `python bench/gan_step.py [--threads 2] [--steps 6]`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facesteer.training.stylegan2 import Trainer, TrainingOptions

RECIPES = {
    "stylegan2 fp32": {},
    "stylegan2 bf16": {"precision": "bf16"},
    "projected-vgg16 fp32": {"discriminator": "projected", "features": "vgg16"},
    "projected-vgg16 bf16": {"discriminator": "projected", "features": "vgg16", "precision": "bf16"},
    "projected-alexnet@128 bf16": {
        "discriminator": "projected",
        "features": "alexnet",
        "feature_resolution": 128,
        "precision": "bf16",
    },
    "both-vgg16 bf16": {"discriminator": "both", "features": "vgg16", "precision": "bf16"},
    "both-alexnet@128 bf16": {
        "discriminator": "both",
        "features": "alexnet",
        "feature_resolution": 128,
        "precision": "bf16",
    },
}
BASE = dict(resolution=64, batch_size=32, channel_base=2048, channel_max=256, z_dim=128, w_dim=128, fid_num=0)


def images_per_second(data: Path, out: Path, recipe: dict, steps: int, warmup: int = 2) -> float:
    trainer = Trainer(TrainingOptions(data=str(data), **BASE, **recipe), out, progress=False)
    for _ in range(warmup):
        trainer.train_step()
    started = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    return steps * trainer.options.batch_size / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "data"
        data.mkdir()
        rng = np.random.default_rng(0)
        for i in range(64):
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(data / f"{i:03d}.png")
        print(f"# {args.threads} thread(s), batch {BASE['batch_size']}, {args.steps} timed steps per recipe")
        baseline = None
        for name, recipe in RECIPES.items():
            rate = images_per_second(data, Path(folder) / name.replace(" ", "-"), recipe, args.steps)
            baseline = baseline or rate
            print(f"{name:28s} {rate:6.1f} images/s   x{rate / baseline:.2f} vs stylegan2 fp32", flush=True)


if __name__ == "__main__":
    main()
