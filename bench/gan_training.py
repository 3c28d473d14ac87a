"""GAN training recipes side by side: FID and the dlib face-space distance against CPU-hours, same seed.

Each recipe is a `train-gan` run in RUNS/NAME, trained in steps of --snapshot-kimg until its training steps
have used --cpu-hours of CPU time (all threads; snapshots and FID left out), then every snapshot's generator is
measured the same way:

- FID: --num faces (seed 0) against --reference-num photos spread evenly over the training folders;
- dlib: the Fréchet distance of the same faces' dlib descriptors to --real-num photos', precision and recall
  (k = 3) in dlib's and Inception's spaces, and the share of faces dlib finds against the photos' own.

Everything resumes: running the command again continues the runs and measures only new snapshots (kept in
RUNS/NAME/quality.jsonl). It prints one line per snapshot and a table of each recipe's last one, and plots the
curves to --plot.

    python bench/gan_training.py --recipes stylegan2,projected-vgg16 --cpu-hours 1
    python bench/gan_training.py --recipes stylegan2,projected-vgg16 --measure-only   # no more training
    python bench/gan_training.py --recipes stylegan2,projected-vgg16 --plot-only      # the figures only
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
from pathlib import Path

import numpy as np

from facesteer.attributes.identity import IdentityEmbedder
from facesteer.evaluation.generative import Embeddings, generator_images, quality, real_images
from facesteer.fid import dataset_statistics, frechet_distance
from facesteer.generators.stylegan2 import load_stylegan2_file
from facesteer.training.stylegan2 import Trainer, TrainingOptions

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
UTKFACE = (str(DATA / "utkface-crop-part1"), str(DATA / "utkface-crop-more"))

#: what every recipe shares: today's shipped recipe on both UTKFace folders, with a wider generator
BASE = dict(
    data=UTKFACE, resolution=64, batch_size=32, seed=0, channel_base=2048, channel_max=256, z_dim=128, w_dim=128,
    r1_gamma=0.05, fid_num=0,
)  # fmt: skip
BF16 = {"precision": "bf16"}
ALEXNET = {"discriminator": "projected", "features": "alexnet", "feature_resolution": 128, **BF16}
RECIPES: dict[str, dict] = {
    "stylegan2": {},
    "stylegan2-bf16": BF16,
    "projected-vgg16-bf16": {"discriminator": "projected", "features": "vgg16", **BF16},
    "projected-alexnet-bf16": ALEXNET,
    "both-vgg16-bf16": {"discriminator": "both", "features": "vgg16", **BF16},
    "both-alexnet-bf16": {"discriminator": "both", "features": "alexnet", "feature_resolution": 128, **BF16},
    "stylegan2-narrow": {"channel_base": 1024, "channel_max": 128},  # today's shipped width
    # a branch of the long projected run (`init_from` its state when the branch first runs): does StyleGAN2's own
    # discriminator beside the projected one widen what it draws (recall) per CPU-hour from there on?
    "both-alexnet-bf16-branch": {**ALEXNET, "discriminator": "both", "branch": "projected-alexnet-bf16"},
}


def branch_start(name: str, runs: Path) -> str:
    """A branch's starting point: its source run's state when the branch first ran (copied, so it stays put)."""
    start = runs / f"{name}.init.safetensors"
    if not start.is_file():
        shutil.copyfile(runs / RECIPES[name]["branch"] / "portable.safetensors", start)
    return str(start)


def train(name: str, runs: Path, cpu_hours: float, snapshot_kimg: float) -> Trainer:
    recipe = dict(RECIPES[name])
    if "branch" in recipe:
        recipe["init_from"] = branch_start(name, runs)
        del recipe["branch"]
    options = TrainingOptions(**(BASE | recipe), snapshot_kimg=snapshot_kimg)
    trainer = Trainer(options, runs / name)
    while trainer.cpu_seconds < cpu_hours * 3600:
        trainer.options.kimg = round(trainer.images_seen / 1000 + snapshot_kimg, 3)
        trainer.train()
    return trainer


def real_embeddings(runs: Path, num: int, embedder: IdentityEmbedder) -> Embeddings:
    cache = runs / f"real-{num}.npz"
    if cache.is_file():
        with np.load(cache) as saved:
            return Embeddings(faces=saved["faces"], inception=saved["inception"])
    embeddings = Embeddings.of(real_images(UTKFACE, 64, num), embedder)
    np.savez(cache, faces=embeddings.faces, inception=embeddings.inception)
    return embeddings


def recorded(folder: Path) -> list:
    """What was measured of a run's snapshots (its quality.jsonl), in kimg order, one record per step of
    training (of two snapshots less than 1 kimg apart, the later)."""
    path = folder / "quality.jsonl"
    records = {r["kimg"]: r for r in map(json.loads, path.read_text().splitlines())} if path.is_file() else {}
    kept: list = []
    for kimg in sorted(records):  # a snapshot at the end of a training call sits within 0.1 kimg of the previous
        if kept and kimg - kept[-1]["kimg"] < 1.0:
            kept[-1] = records[kimg]
        else:
            kept.append(records[kimg])
    return kept


def measure(name: str, runs: Path, args: argparse.Namespace, real: Embeddings, embedder: IdentityEmbedder) -> list:
    folder = runs / name
    done_path = folder / "quality.jsonl"
    done = [json.loads(line) for line in done_path.read_text().splitlines()] if done_path.is_file() else []
    log = {round(r["kimg"], 3): r for r in map(json.loads, (folder / "log.jsonl").read_text().splitlines())}
    reference = dataset_statistics(UTKFACE, 64, max_images=args.reference_num, progress=False)
    paths = sorted((folder / "snapshots").glob("kimg*.safetensors"))
    for path in paths:
        kimg = float(path.stem.removeprefix("kimg"))
        if any(r["kimg"] == kimg for r in done) or kimg not in log:
            continue
        if (
            args.measure_kimg
            and path != paths[-1]
            and int(kimg // args.measure_kimg)
            == int(float(paths[paths.index(path) + 1].stem.removeprefix("kimg")) // args.measure_kimg)
        ):
            continue  # only the last snapshot before each multiple of --measure-kimg, and the last of all
        generated = Embeddings.of(generator_images(load_stylegan2_file(path), args.num), embedder)
        mu, sigma = generated.inception.mean(axis=0), np.cov(generated.inception, rowvar=False)
        record = {
            "recipe": name,
            "kimg": kimg,
            "cpu_hours": log[kimg]["cpu_seconds"] / 3600,
            "fid": frechet_distance(mu, sigma, *reference),
            **quality(real, generated),
        }
        done.append(record)
        with open(done_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        print(
            f"{name:18s} kimg {kimg:7.1f}  CPU-h {record['cpu_hours']:5.2f}  FID {record['fid']:6.1f}  "
            f"dlib {record['dlib_frechet']:.3f}  P/R dlib {record['dlib_precision']:.2f}/{record['dlib_recall']:.2f} "
            f"incep {record['inception_precision']:.2f}/{record['inception_recall']:.2f}  "
            f"faces {record['faces_found']:.2f} (photos {record['real_faces_found']:.2f})",
            flush=True,
        )
    return recorded(folder)


def plot(curves: dict[str, list], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, records in curves.items():
        hours = [r["cpu_hours"] for r in records]
        axes[0].plot(hours, [r["fid"] for r in records], marker="o", label=name)
        axes[1].plot(hours, [r["dlib_frechet"] for r in records], marker="o", label=name)
    for axis, label in zip(axes, ("FID (Inception)", "Fréchet distance in dlib's face space"), strict=True):
        axis.set_xlabel("CPU-hours of training steps")
        axis.set_ylabel(label)
        axis.set_yscale("log")
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.suptitle("GAN training recipes on UTKFace (64 px, both folders, seed 0)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def strips(curves: dict[str, list], runs: Path, path: Path, columns: int = 8, faces: int = 3) -> None:
    """The same faces (seed 0, rows 0..faces-1) through training: one row per recipe, ``columns`` snapshots
    spread evenly over its measured ones, each titled with its CPU-hours and FID."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {name: records for name, records in curves.items() if records}
    if not curves:
        return
    figure, axes = plt.subplots(len(curves), columns, figsize=(1.6 * columns, 0.3 + 1.6 * faces * len(curves)),
                                squeeze=False)  # fmt: skip
    for row, (name, records) in zip(axes, curves.items(), strict=True):
        chosen = [records[i] for i in sorted({round(x) for x in np.linspace(0, len(records) - 1, columns)})]
        for axis in row:
            axis.axis("off")
        for axis, record in zip(row, chosen, strict=False):
            generator = load_stylegan2_file(runs / name / "snapshots" / f"kimg{record['kimg']:09.3f}.safetensors")
            axis.imshow(np.concatenate(list(generator_images(generator, faces)), axis=0))  # the faces stacked
            axis.set_title(f"{record['cpu_hours']:.2f} CPU-h\nFID {record['fid']:.0f}", fontsize=8)
        row[0].text(-0.1, 0.5, name, transform=row[0].transAxes, rotation=90, ha="right", va="center", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", default="stylegan2,projected-vgg16", help=f"from {', '.join(RECIPES)}")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "gan-bench")
    parser.add_argument("--cpu-hours", type=float, default=1.0, help="train each recipe to this much CPU time")
    parser.add_argument("--snapshot-kimg", type=float, default=10.0)
    parser.add_argument("--measure-only", action="store_true", help="measure the snapshots there, train no more")
    parser.add_argument("--measure-kimg", type=float, default=0.0,
                        help="measure one snapshot per this many kimg (and the last); 0: every snapshot")  # fmt: skip
    parser.add_argument("--plot-only", action="store_true", help="plot what was measured; measure nothing new")
    parser.add_argument("--num", type=int, default=1000, help="generated faces per measurement")
    parser.add_argument("--real-num", type=int, default=1000, help="photos for the dlib and precision/recall sets")
    parser.add_argument("--reference-num", type=int, default=5000, help="photos for FID's reference statistics")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "gan_training.png")
    parser.add_argument("--strip", type=Path, default=ROOT / "docs" / "gan_training_strip.png")
    args = parser.parse_args()
    names = args.recipes.split(",")
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        sys.exit(f"unknown recipe {', '.join(unknown)}; choose from {', '.join(RECIPES)}")
    print(f"# {platform.processor() or platform.machine()}, base recipe: {json.dumps(BASE | {'data': 'utkface'})}")
    if not (args.measure_only or args.plot_only):
        for name in names:
            train(name, args.runs, args.cpu_hours, args.snapshot_kimg)
    if args.plot_only:
        curves = {name: recorded(args.runs / name) for name in names}
    else:
        embedder = IdentityEmbedder()
        real = real_embeddings(args.runs, args.real_num, embedder)
        curves = {name: measure(name, args.runs, args, real, embedder) for name in names}
    print("\n| recipe | kimg | CPU-hours | FID | dlib Fréchet | P/R dlib | P/R Inception | faces found |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, records in curves.items():
        if records:
            r = records[-1]
            print(f"| {name} | {r['kimg']:.0f} | {r['cpu_hours']:.2f} | {r['fid']:.1f} | {r['dlib_frechet']:.3f} | "
                  f"{r['dlib_precision']:.2f} / {r['dlib_recall']:.2f} | {r['inception_precision']:.2f} / "
                  f"{r['inception_recall']:.2f} | {r['faces_found']:.2f} ({r['real_faces_found']:.2f}) |")  # fmt: skip
    plot(curves, args.plot)
    strips(curves, args.runs, args.strip)
    print(f"curves: {args.plot}; the same faces through training: {args.strip}")


if __name__ == "__main__":
    main()
