"""Boundary training: facesteer's Newton solver vs scikit-learn's SVC(kernel="linear"), same protocol, one run.

Both take 500,000 codes of dimension d with noisy linear attribute scores (validation accuracy near 0.9,
like InterFaceGAN's age and gender boundaries), keep the 2 % most confident at each end (10,000 per side,
7,000 of them to train), fit, and score the validation and remaining samples. The baseline is InterFaceGAN's
estimator, ``sklearn.svm.SVC(kernel="linear")`` with C = 1, on the very same split.

    python bench/boundary.py [--num 500000] [--dim 100] [--noise 1.5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.svm import SVC

from facesteer.boundaries import confident_split, train_boundary


def sklearn_boundary(codes: np.ndarray, scores: np.ndarray, ratio: float, seed: int) -> tuple[np.ndarray, float]:
    """InterFaceGAN's protocol with its own estimator; returns (unit normal (d,), validation accuracy)."""
    chosen = confident_split(scores, ratio, 0.7, seed)
    train = np.concatenate([chosen.train_positive, chosen.train_negative])
    labels = np.r_[np.ones(len(chosen.train_positive)), np.zeros(len(chosen.train_negative))]
    classifier = SVC(kernel="linear").fit(codes[train], labels)
    validation = np.concatenate([chosen.validation_positive, chosen.validation_negative])
    truth = np.r_[np.ones(len(chosen.validation_positive)), np.zeros(len(chosen.validation_negative))]
    accuracy = float(np.mean(classifier.predict(codes[validation]) == truth))
    classifier.predict(codes[chosen.remaining])  # InterFaceGAN also scores the remaining samples
    return classifier.coef_[0] / np.linalg.norm(classifier.coef_[0]), accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num", type=int, default=500_000)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--noise", type=float, default=1.5, help="score noise (std) around the true hyperplane")
    parser.add_argument("--ratio", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    codes = rng.standard_normal((args.num, args.dim), dtype=np.float32)
    truth = rng.standard_normal(args.dim)
    truth /= np.linalg.norm(truth)
    scores = codes @ truth + args.noise * rng.standard_normal(args.num)

    start = time.perf_counter()
    fit = train_boundary(codes, scores, ratio=args.ratio, seed=args.seed)
    ours_seconds = time.perf_counter() - start
    start = time.perf_counter()
    reference_normal, reference_accuracy = sklearn_boundary(codes, scores, args.ratio, args.seed)
    sklearn_seconds = time.perf_counter() - start

    print(
        f"data: {args.num} x {args.dim} codes, noise {args.noise}, ratio {args.ratio}: "
        f"{fit.counts['train_per_side']} train + {fit.counts['validation_per_side']} validation per side"
    )
    print(f"sklearn SVC(kernel='linear'): {sklearn_seconds:8.2f} s  validation accuracy {reference_accuracy:.4f}")
    print(
        f"facesteer train_boundary:    {ours_seconds:8.2f} s  validation accuracy {fit.validation_accuracy:.4f}"
        f"  all-set accuracy {fit.all_accuracy:.4f}"
    )
    print(
        f"cosine(ours, sklearn) = {float(fit.normal[0] @ reference_normal):.6f}; "
        f"cosine(ours, truth) = {float(fit.normal[0] @ truth):.4f}"
    )
    print(f"speed-up: {sklearn_seconds / ours_seconds:.1f}x")


if __name__ == "__main__":
    main()
