"""Artifact correction for the default DCGAN, whose training photos (DigiFace-1M) are not at hand.

Without its training set there is no realism classifier and no FID for `dcgan-digiface64`. What exists is the
teachers' verdict "a face is found" (MediaPipe), and the predictor's estimate of it (its face logit, distilled
from the teachers). This script:

1. scores N samples (seed 0) with the predictor's face logit (synthesized again; no teachers needed);
2. trains InterFaceGAN's boundary on that logit (ratio 0.02, split 0.7);
3. moves M held-out codes (seed 1) by +alpha, alpha = 0..3, and measures the share of faces the teachers find
   and identity (dlib, the calibrated 64-px threshold, a face lost counting as not kept).

Run: python bench/dcgan_facefound.py [--num 60000] [--held-out 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from facesteer.attributes import load_scorer
from facesteer.attributes.identity import calibrated_threshold
from facesteer.attributes.predictor import PredictorScorer, images_to_tensor
from facesteer.boundaries import train_boundary
from facesteer.editing import shift
from facesteer.evaluation.metrics import identity_summary
from facesteer.generators import load_generator


@torch.inference_mode()
def face_logits(scorer: PredictorScorer, images: np.ndarray) -> np.ndarray:
    """The predictor's raw face output (N,): > 0 = the teachers would find a face."""
    return scorer.network(images_to_tensor(images))[:, 5].float().numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=60000)
    parser.add_argument("--held-out", type=int, default=1000)
    parser.add_argument("--identity-num", type=int, default=300)
    args = parser.parse_args()

    started = time.perf_counter()
    generator, predictor = load_generator("dcgan-digiface64"), PredictorScorer()
    codes = generator.sample_z(args.num, seed=0)
    logits = np.concatenate(
        [face_logits(predictor, generator.synthesize(codes[i : i + 1024])) for i in range(0, args.num, 1024)]
    )
    fit = train_boundary(codes, logits, ratio=0.02, split=0.7, seed=0)
    print(
        f"{args.num} samples, face logit > 0 for {np.mean(logits > 0):.3f}; boundary validation accuracy "
        f"{fit.validation_accuracy:.3f}, all {fit.all_accuracy:.3f} ({time.perf_counter() - started:.0f} s)"
    )

    held = generator.sample_z(args.held_out, seed=1)
    threshold = calibrated_threshold(64)
    with load_scorer("teachers", workers=2) as teachers, load_scorer("identity", workers=2) as identity:
        originals = identity.score(generator.synthesize(held[: args.identity_num]))
        print("alpha  teachers find a face  predicted face logit  identity kept (lost)")
        for alpha in (0.0, 1.0, 2.0, 3.0):
            images = generator.synthesize(shift(held, fit.normal, alpha))
            found = float(np.mean(~np.isnan(teachers.score(images)[:, 0])))
            line = f"{alpha:5g}  {found:20.3f}  {float(np.mean(face_logits(predictor, images))):20.2f}"
            if alpha:
                kept = identity_summary(originals, identity.score(images[: args.identity_num]), threshold)
                line += f"  {kept['kept']:.3f} ({kept['lost']:.3f})"
            print(line)
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
