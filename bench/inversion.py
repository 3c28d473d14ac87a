"""Inversion on held-out pictures no generator here was trained on, every method in one run (compare ratios).

Real photos: ../shared/data/celeba-sample with stylegan2-utkface64; anime: ../shared/data/selfie2anime-sample
with stylegan2-anime64. The first NUM pictures (sorted) in which a face is found are aligned and inverted by:

- ``nfe``: NFE's optimisation recipe (Z, 1000 Adam steps, lr 0.01, blurred summed MSE + 20 ||z||^2) from z = 0:
  the baseline. Its PSNR and LPIPS are traced along the way (time to reach each value);
- ``encoder``: the shipped encoder, one pass (W);
- ``hybrid``: the encoder, then facesteer's recipe (W, MSE + LPIPS + prior, 30 steps);
- ``hybrid-fast``: the encoder, then MSE + prior only (W+, 20 steps, lr 0.02): no VGG in the loop;
- ``hybrid-wp10``: the encoder, then facesteer's loss (MSE + LPIPS + prior) in W+ for 10 steps at lr 0.03
  (``BALANCED_RECIPE``, the editor's);
- ``pti``: pivotal tuning: the encoder's code as the pivot, then the generator's synthesis weights tuned to each
  picture (``DEFAULT_TUNING``: 20 Adam steps at lr 0.01 on MSE + LPIPS to relu3_3; ``--tuning-steps``,
  ``--tuning-lr``, ``--tuning-taps`` and ``--tuning-locality`` change it); its edits use each picture's copy.

Per method: PSNR, SSIM, LPIPS, identity distance to the aligned photo (real faces; dlib, threshold from the
shipped calibration), seconds per picture (the whole batch inverted at once, divided; and, but for the baseline,
the median time of one picture inverted alone, as the editor does), and, after an edit of
alpha 2 along BOUNDARY, the realism logit (the quality model) of the edited inversions next to that of edited
random codes, the attribute change the scorer measures for both, and the share of photos whose edit keeps
identity (distance to the photo under the threshold) at alpha 1 and 2, and of those whose edit keeps the person of
the reconstruction (what the edit itself changes).

    python bench/inversion.py --domain real --boundary runs/sg2-utk20k/boundaries-w/age_w.npy [--num 8]
    python bench/inversion.py --domain anime --boundary runs/anime10k/boundaries-w/hair_blonde_w.npy
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from facesteer.alignment import Aligner, load_framing
from facesteer.attributes import load_scorer
from facesteer.attributes.identity import calibrated_threshold, identity_distance
from facesteer.attributes.quality import QualityScorer
from facesteer.boundaries import Boundary
from facesteer.datasets import list_images
from facesteer.editing import shift
from facesteer.errors import FacesteerError
from facesteer.evaluation.inversion import psnr, realism, reconstruction_metrics
from facesteer.generators import load_generator
from facesteer.generators.base import to_uint8_images
from facesteer.images import image_grid, load_image, save_png
from facesteer.inversion import BALANCED_RECIPE, FACESTEER_RECIPE, FAST_RECIPE, NFE_RECIPE, invert, resolve_tuning
from facesteer.inversion.encoder import load_encoder
from facesteer.perceptual import load_lpips, lpips_distance

DOMAINS = {
    "real": ("stylegan2-utkface64", "../shared/data/celeba-sample", "teachers"),
    "anime": ("stylegan2-anime64", "../shared/data/selfie2anime-sample", "anime"),
}
METHODS = {
    "nfe": ("optim", NFE_RECIPE),
    "encoder": ("encoder", FACESTEER_RECIPE),
    "hybrid": ("hybrid", FACESTEER_RECIPE),
    "hybrid-fast": ("hybrid", FAST_RECIPE),
    "hybrid-wp10": ("hybrid", BALANCED_RECIPE),
    "pti": ("pti", FACESTEER_RECIPE),
}  # fmt: skip
TRACE_EVERY = 50


def aligned_pictures(folder: str, generator, num: int) -> tuple[np.ndarray, list[str]]:
    """The first ``num`` pictures of ``folder`` (sorted) in which a face is found, aligned."""
    pictures, names = [], []
    with Aligner(load_framing(generator.name), generator.resolution) as aligner:
        for path in list_images(folder):
            try:
                pictures.append(aligner.align(load_image(path), str(path)))
            except FacesteerError:
                continue
            names.append(path.name)
            if len(pictures) == num:
                break
    return np.stack(pictures), names


def trace_baseline(generator, pictures: np.ndarray, recipe) -> tuple[object, list[dict]]:
    """Run the baseline, recording PSNR and LPIPS every TRACE_EVERY steps against the time spent optimising."""
    trace, spent = [], {"seconds": 0.0, "since": time.perf_counter()}

    def after_step(step: int, codes: torch.Tensor) -> None:
        if step % TRACE_EVERY:
            return
        spent["seconds"] += time.perf_counter() - spent["since"]
        with torch.no_grad():
            images = to_uint8_images(generator.synthesize_tensor(codes, recipe.space))
        trace.append({"step": step, "seconds": spent["seconds"], "psnr": float(psnr(pictures, images).mean()),
                      "lpips": float(lpips_distance(pictures, images).mean())})  # fmt: skip
        spent["since"] = time.perf_counter()

    result = invert(pictures, generator, "optim", recipe, progress=True, after_step=after_step)
    result.seconds = trace[-1]["seconds"] if trace else result.seconds  # without the tracing's own time
    return result, trace


def change_intervals(inverted: np.ndarray, random: np.ndarray, level: float = 0.95) -> dict:
    """Bootstrap intervals (seeded, percentile) of the mean attribute change of the edited inversions, of the edited
    random codes, and of their difference: the scorers are noisy (the teachers' age is a whole number of years), so
    whether inversions move "as random samples do" is read from the difference's interval, not the two means."""
    inverted, random = inverted[np.isfinite(inverted)], random[np.isfinite(random)]

    def interval(samples: tuple[np.ndarray, ...], statistic) -> list[float]:
        if min(len(sample) for sample in samples) < 2:  # too few faces scored to resample
            return [float("nan"), float("nan")]
        result = stats.bootstrap(samples, statistic, confidence_level=level, n_resamples=4000, method="percentile",
                                 rng=np.random.default_rng(0))  # fmt: skip
        return [float(result.confidence_interval.low), float(result.confidence_interval.high)]

    def difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return a.mean(axis) - b.mean(axis)

    name = f"ci{round(level * 100)}"
    return {f"change_inverted_{name}": interval((inverted,), np.mean),
            f"change_random_{name}": interval((random,), np.mean),
            f"change_difference_{name}": interval((inverted, random), difference)}  # fmt: skip


def edit_measures(generator, result, pictures, boundary, scorer, quality, is_real: bool, random_codes) -> dict:
    """Realism, attribute change and identity kept after edits of the inverted codes, next to random codes."""
    out = {}
    column = scorer.attributes.index(boundary.attribute) if boundary.attribute in scorer.attributes else None
    base_scores = scorer.score(result.reconstructions)
    random_base = generator.synthesize(random_codes, "w")
    codes, space = result.codes, result.space
    if space == "z":  # the boundary is a W one: edit z codes (NFE's) as their w
        codes, space = generator.map(codes, "w"), "w"
    for alpha in (1.0, 2.0):
        moved = shift(codes, boundary.normal, alpha)  # each by its own generator (pti: the copy tuned to it)
        edited = np.concatenate([result.generator_for(i, generator).synthesize(moved[i : i + 1], space)
                                 for i in range(len(moved))])  # fmt: skip
        random_edited = generator.synthesize(shift(random_codes, boundary.normal, alpha), "w")
        row = {"realism_inverted": float(realism(quality, edited).mean()),
               "realism_random": float(realism(quality, random_edited).mean())}  # fmt: skip
        if column is not None:
            inverted = scorer.score(edited)[:, column] - base_scores[:, column]
            random = scorer.score(random_edited)[:, column] - scorer.score(random_base)[:, column]
            row["change_inverted"], row["change_random"] = float(np.nanmean(inverted)), float(np.nanmean(random))
            row.update(change_intervals(inverted, random))
        if is_real:  # the edit keeps the person of the photo; of the reconstruction (what the edit itself changes)
            distance = identity_distance(pictures, edited)
            row["identity_kept"] = float(np.mean(distance < calibrated_threshold(64)))
            distance = identity_distance(result.reconstructions, edited)
            row["identity_kept_vs_reconstruction"] = float(np.mean(distance < calibrated_threshold(64)))
        out[f"alpha_{alpha:g}"] = row
    if is_real:
        distance = identity_distance(pictures, result.reconstructions)
        out["reconstruction_same_person"] = float(np.mean(distance < calibrated_threshold(64)))
    out["realism_random_unedited"] = float(realism(quality, random_base).mean())
    out["realism_inverted_unedited"] = float(realism(quality, result.reconstructions).mean())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domain", choices=sorted(DOMAINS), required=True)
    parser.add_argument("--boundary", type=Path, required=True, help="a W boundary of the domain's generator")
    parser.add_argument("--num", type=int, default=8)
    parser.add_argument("--random", type=int, default=256, help="random codes edited for comparison")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--out", type=Path, default=Path("runs/bench-inversion"))
    parser.add_argument("--tuning-steps", type=int, default=None, help="pti's tuning steps (default: DEFAULT_TUNING's)")
    parser.add_argument("--tuning-lr", type=float, default=None, help="pti's tuning rate (default: DEFAULT_TUNING's)")
    parser.add_argument("--tuning-taps", type=int, default=None, help="pti's LPIPS taps (default: DEFAULT_TUNING's)")
    parser.add_argument(
        "--tuning-locality",
        type=float,
        default=None,
        help="pti's locality regulariser weight (default: DEFAULT_TUNING's)",
    )
    args = parser.parse_args()
    name, folder, scorer_name = DOMAINS[args.domain]
    generator = load_generator(name)
    pictures, names = aligned_pictures(folder, generator, args.num)
    boundary = Boundary.load(args.boundary)
    encoder = load_encoder(generator)
    quality = QualityScorer(generator.name).network
    load_lpips()  # loaded (and cached) before any timing
    random_codes = generator.map(generator.sample_z(args.random, seed=123), "w")
    report = {"domain": args.domain, "generator": name, "pictures": names, "boundary": str(args.boundary),
              "methods": {}}  # fmt: skip
    grids = [pictures]
    with load_scorer(scorer_name, workers=1) as scorer:
        for method_name in args.methods:
            method, recipe = METHODS[method_name]
            tuning = None
            if method_name == "nfe":
                result, trace = trace_baseline(generator, pictures, recipe)
            else:
                tuning = resolve_tuning(
                    generator, method, args.tuning_steps, args.tuning_lr, args.tuning_taps, args.tuning_locality
                )
                result, trace = invert(pictures, generator, method, recipe, encoder, progress=True, tuning=tuning), []
                # what one user waits for one picture (the editor and the bot invert one at a time)
                alone = [invert(pictures[i : i + 1], generator, method, recipe, encoder, tuning=tuning).seconds
                         for i in range(min(3, len(pictures)))]  # fmt: skip
            metrics = reconstruction_metrics(pictures, result.reconstructions, identity=args.domain == "real")
            entry = {name_: float(np.nanmean(values)) for name_, values in metrics.items()}
            entry["seconds_per_picture"] = result.seconds / len(pictures)
            entry["seconds_one_picture_alone"] = None if method_name == "nfe" else float(np.median(alone))
            entry["trace"] = trace
            entry["tuning"] = asdict(tuning) if tuning is not None else None
            entry["edits"] = edit_measures(generator, result, pictures, boundary, scorer, quality,
                                           args.domain == "real", random_codes)  # fmt: skip
            report["methods"][method_name] = entry
            grids.append(result.reconstructions)
            print(method_name, json.dumps({k: v for k, v in entry.items() if k != "trace"}), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.domain}.json").write_text(json.dumps(report, indent=2))
    save_png(args.out / f"{args.domain}.png", image_grid(np.concatenate(grids), columns=len(pictures)))
    baseline = report["methods"].get("nfe")
    if baseline:
        final = baseline["trace"][-1]
        print(f"baseline final: PSNR {final['psnr']:.2f}, LPIPS {final['lpips']:.4f} after {final['seconds']:.1f} s")
        for method_name, entry in report["methods"].items():
            reached = entry["psnr"] >= final["psnr"] and entry["lpips"] <= final["lpips"]
            ratio = baseline["seconds_per_picture"] / entry["seconds_per_picture"]
            print(f"  {method_name}: PSNR {entry['psnr']:.2f}, LPIPS {entry['lpips']:.4f}, "
                  f"{entry['seconds_per_picture']:.2f} s/picture ({ratio:.1f}x faster than the baseline); "
                  f"matches the baseline's final PSNR and LPIPS: {reached}")  # fmt: skip


if __name__ == "__main__":
    main()
