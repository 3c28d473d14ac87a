"""Which realism score gives a quality direction that lowers FID? Four scores, one generator, one run.

InterFaceGAN's artifact correction moves faces along the boundary of a quality score. `evaluate-fix` found that
the shipped score (a RealismNet logit that separates photos from samples perfectly) gives a direction along
which FID does not fall. This script asks whether another score would do better, and how much any single
direction could do at all, on stylegan2-utkface64 in W:

1. scores: the shipped quality model; the same network trained on low-passed images (the photos and samples
   averaged down to 16x16 or 8x8 and scaled back up, so it cannot use fine texture); and Kynkäänniemi et al.'s
   (2019) k-NN realism score in VGG16 features (relu5_3, averaged over positions, of the 64-px faces scaled to
   128 px; k = 3; the real photos whose radius is below the median), which is graded rather than saturated;
2. for each score, InterFaceGAN's boundary on 20,000 samples (seed 0; ratio 0.02) in W;
3. FID of N held-out faces (seed 1) against R training photos, with every face moved by +1 and +2 standard
   deviations of the codes' signed distance along the normal (in W one unit of alpha is about 2.7 of them), and
   the mean term |mu_1 - mu_2|^2 of each FID;
4. a bound, not a method: the shift that lowers FID's mean term fastest to first order, chosen with Inception
   itself (a least-squares linear map from W to Inception features of the held-out faces), at three lengths.

    python bench/quality_scores.py [--num 1000] [--reference-num 2000] [--pool 20000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from facesteer.attributes.quality import QualityScorer, RealismNet, realism_logits
from facesteer.boundaries import train_boundary
from facesteer.datasets import load_images
from facesteer.editing import fix_codes
from facesteer.fid import dataset_statistics, frechet_distance, inception_features
from facesteer.generators import load_generator
from facesteer.perceptual import load_lpips
from facesteer.stats import auroc
from facesteer.training.classifier import fit_classifier
from facesteer.training.quality import split_photos

GENERATOR = "stylegan2-utkface64"
DATA = "../shared/data/utkface-crop-part1"
STARTED = time.perf_counter()


def log(text: str) -> None:
    print(f"[{time.perf_counter() - STARTED:6.0f} s] {text}", flush=True)


def synthesize(generator, codes: np.ndarray, space: str) -> np.ndarray:
    return np.concatenate([generator.synthesize(codes[lo : lo + 500], space) for lo in range(0, len(codes), 500)])


def features(images: np.ndarray) -> np.ndarray:
    return np.concatenate([inception_features(images[lo : lo + 64]) for lo in range(0, len(images), 64)])


def fid_and_mean_term(feats: np.ndarray, reference: tuple[np.ndarray, np.ndarray]) -> tuple[float, float]:
    mu, sigma = feats.mean(axis=0), np.cov(feats, rowvar=False)
    return frechet_distance(mu, sigma, *reference), float(np.square(mu - reference[0]).sum())


def lowpass(images: np.ndarray, factor: int) -> np.ndarray:
    """uint8 (N, H, W, 3) averaged over factor x factor blocks and scaled back up (bilinear)."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    x = F.interpolate(F.avg_pool2d(x, factor), scale_factor=factor, mode="bilinear", align_corners=False)
    return x.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


def lowpass_scores(generator, pool: np.ndarray, factor: int, real: np.ndarray, real_held: np.ndarray) -> np.ndarray:
    """A RealismNet trained on low-passed photos vs samples (seed 1000, as the shipped model); its pool logits."""
    fake = synthesize(generator, generator.sample_z(len(real), 1000), "z")
    fake_held = synthesize(generator, generator.sample_z(len(real_held), 1000, len(real)), "z")
    torch.manual_seed(0)
    network = RealismNet()
    labels = torch.cat([torch.ones(len(real)), torch.zeros(len(fake))])
    images = lowpass(np.concatenate([real, fake]), factor)
    fit_classifier(network, images, labels, F.binary_cross_entropy_with_logits, 3, 128, 2e-3, 0, False, desc="")
    held = np.concatenate([realism_logits(network, lowpass(real_held, factor)),
                           realism_logits(network, lowpass(fake_held, factor))])  # fmt: skip
    truth = np.r_[np.ones(len(real_held), bool), np.zeros(len(fake_held), bool)]
    log(f"low-pass 1/{factor}: held-out AUROC {auroc(truth, held):.3f}, accuracy {np.mean((held > 0) == truth):.3f}")
    return realism_logits(network, lowpass(pool, factor))


@torch.inference_mode()
def vgg_features(images: np.ndarray) -> torch.Tensor:
    vgg = load_lpips()
    out = []
    for lo in range(0, len(images), 100):
        x = torch.from_numpy(images[lo : lo + 100]).permute(0, 3, 1, 2).float() / 127.5 - 1
        x = F.interpolate(x, size=128, mode="bilinear", align_corners=False)
        out.append(vgg.features((x - vgg.shift) / vgg.scale).mean(dim=(2, 3)))
    return torch.cat(out)


def knn_realism(real: np.ndarray, pool: np.ndarray, k: int = 3) -> np.ndarray:
    """Kynkäänniemi et al.'s realism score: max over real i of radius_i / |phi_i - phi(sample)|."""
    real_features, pool_features = vgg_features(real), vgg_features(pool)
    radii = torch.cdist(real_features, real_features).kthvalue(k + 1, dim=1).values  # (the first is itself)
    keep = radii < radii.median()
    anchors, anchor_radii = real_features[keep], radii[keep]
    scores = [(anchor_radii[None] / torch.cdist(pool_features[lo : lo + 1000], anchors)).max(dim=1).values
              for lo in range(0, len(pool_features), 1000)]  # fmt: skip
    return torch.cat(scores).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=1000, help="held-out faces per FID")
    parser.add_argument("--reference-num", type=int, default=2000, help="training photos for the reference")
    parser.add_argument("--pool", type=int, default=20000, help="samples scored for each boundary")
    args = parser.parse_args()
    torch.set_num_threads(2)

    generator = load_generator(GENERATOR)
    reference = dataset_statistics(DATA, 64, max_images=args.reference_num, progress=False)
    held_w = generator.map(generator.sample_z(args.num, 1), "w")
    held_features = features(synthesize(generator, held_w, "w"))
    fid0, mean0 = fid_and_mean_term(held_features, reference)
    log(f"{args.num} held-out faces vs {args.reference_num} photos: FID {fid0:.2f}, mean term {mean0:.2f}")

    pool_w = generator.map(generator.sample_z(args.pool, 0), "w")
    pool = synthesize(generator, pool_w, "w")
    train_paths, held_paths = split_photos(DATA)
    real, real_held = load_images(train_paths, 64, False), load_images(held_paths, 64, False)
    scores = {"shipped": QualityScorer(GENERATOR).score(pool)[:, 0]}
    for factor in (4, 8):
        scores[f"low-pass 1/{factor}"] = lowpass_scores(generator, pool, factor, real, real_held)
    scores["k-NN realism"] = knn_realism(real, pool)
    log(f"k-NN realism of the samples: mean {scores['k-NN realism'].mean():.3f}, >= 1 for "
        f"{np.mean(scores['k-NN realism'] >= 1):.3f}")  # fmt: skip

    print("\nscore           boundary val.  sd along n  FID at +1 sd (mean term)  FID at +2 sd (mean term)")
    for name, score in scores.items():
        fit = train_boundary(pool_w, score, ratio=0.02)
        normal = fit.normal[0]
        sd = float((pool_w @ normal).std())
        row = []
        for steps in (1.0, 2.0):
            moved, _ = fix_codes(held_w, normal, steps * sd)
            row.append(fid_and_mean_term(features(synthesize(generator, moved.astype(np.float32), "w")), reference))
        cells = "  ".join(f"{fid:8.2f} ({mean:5.2f})          " for fid, mean in row)
        print(f"{name:15s} {fit.validation_accuracy:13.3f}  {sd:10.3f}  {cells}", flush=True)

    # the bound: Inception's own first-order best shift (not a method: it optimises the metric it is judged by)
    x = held_w.astype(np.float64) - held_w.mean(axis=0)
    y = held_features - held_features.mean(axis=0)
    jacobian = np.linalg.solve(x.T @ x + 1e-3 * np.eye(x.shape[1]), x.T @ y)  # (d, 2048)
    direction = -jacobian @ (held_features.mean(axis=0) - reference[0])
    direction /= np.linalg.norm(direction)
    r2 = 1 - np.square(y - x @ jacobian).sum() / np.square(y).sum()
    print(f"\nbound (the shift chosen with Inception; linear map R^2 {r2:.2f}):")
    for length in (0.35, 0.7, 1.4):
        moved = (held_w + length * direction).astype(np.float32)
        fid, mean = fid_and_mean_term(features(synthesize(generator, moved, "w")), reference)
        print(
            f"  |shift| {length:4.2f} (about {length / 0.35:.0f} sd): FID {fid:.2f} (mean term {mean:.2f})", flush=True
        )
    log("done")


if __name__ == "__main__":
    main()
