"""Ship a StyleGAN2 trained by facesteer, and re-make everything made from it, in one pass.

A shipped generator never travels without what was made from it (its quality model, inversion encoder,
InterFaceGAN boundaries, named directions, and the README's figures of it): each of those records the weights it
was made from, and tests/test_provenance.py fails while any of them was made from other weights. This script
runs the commands that make them, in the order they depend on each other, each through the `facesteer` CLI
(the same commands bench/RESULTS.md records):

    export        export-gan: NAME.safetensors, NAME.json, NAME.md (FID, dlib distance, precision/recall)
    grid          generate: docs/NAME.png, 24 faces of seed 0
    quality       train-quality: quality-NAME.safetensors/.json/.md (needs the weights)
    encoder       train-encoder (its realism term reads the quality model), then encoder-NAME.safetensors
    sample        sample: codes and the scorer's attributes of --samples faces
    boundaries    train-boundary --all --space w, then discover boundaries: boundaries-NAME/ (the sliders)
    directions    discover latent sdd, then dth, then label: directions-NAME/ (named sliders; faces only)
    fix           sample --scorer quality, its W boundary, fix: docs/fix_*_w2.png (artifact correction)

A step whose outputs exist and record the current weights is skipped, so an interrupted pass resumes; --from
STEP runs that step and every later one again. Work folders go to runs/ship-NAME/.

    python scripts/ship_generator.py stylegan2-utkface64 --run runs/gan-bench/projected-alexnet-bf16 [--dry-run]
"""

from __future__ import annotations

import argparse
import filecmp
import json
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from facesteer import shipped

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
DOCS = ROOT / "docs"


@dataclass(frozen=True)
class Recipe:
    """What differs between the shipped generators: their photos, scorer, samples and figures."""

    photos: str  # the folder of training photos the quality model and the encoder read (under ../shared/data)
    scorer: str  # the scorer whose attributes become the boundaries
    samples: int  # faces sampled for the boundaries
    fix_figure: str  # docs/ name of the artifact-correction grid
    directions: bool  # named directions (DTH) are shipped for it
    reference_num: int | None = None  # FID's reference photos spread over the training data (None: all)


RECIPES = {
    "stylegan2-utkface64": Recipe("utkface-crop-part1", "teachers", 20_000, "fix_utk_w2.png", directions=True),
    "stylegan2-anime64": Recipe(
        "anime-faces-64", "anime", 10_000, "fix_anime_w2.png", directions=False, reference_num=4000
    ),
}
STEPS = ("export", "grid", "quality", "encoder", "sample", "boundaries", "directions", "fix")


def commands(name: str, run: Path, recipe: Recipe, work: Path, hardware: str) -> dict[str, list[str]]:
    """Each step's facesteer commands, in order (shell words: paths are quoted)."""
    q = shlex.quote
    weights, photos = shipped.WEIGHTS_DIR, q(str(DATA / recipe.photos))
    reference = f" --reference-num {recipe.reference_num}" if recipe.reference_num else ""
    samples, quality_run = q(str(work / "samples")), q(str(work / "quality-samples"))
    sdd, dth = q(str(work / "sdd")), q(str(work / "dth"))
    steps = {
        "export": [f"export-gan {q(str(run))} --name {name} --out-dir {q(str(weights))} --fid-num 10000 "
                   f"--hardware {q(hardware)}{reference}"],
        "grid": [f"generate -g {name} --num 24 --columns 12 --seed 0 --out {q(str(DOCS / f'{name}.png'))}"],
        "quality": [f"train-quality --generator {name} --data {photos} --epochs 6 --seed 1000 "
                    f"--out {q(str(shipped.quality_file(name)))}"],
        "encoder": [f"train-encoder -g {name} --steps 2650 --latent-steps 2500 --batch-size 16 --real-per-step 8 "
                    f"--seed 0 --data {photos} --out {q(str(work / 'encoder'))}"],
        "sample": [f"sample -g {name} --num {recipe.samples} --seed 0 --scorer {recipe.scorer} --out {samples} -q"],
        "boundaries": [f"train-boundary {samples} --all --space w --out {samples}/boundaries-w"],
        "directions": [
            f"discover latent -g {name} --method sdd --steps 1500 --out {sdd}",
            f"discover latent -g {name} --method dth --from {sdd} --steps 300 --out {dth}",
            f"label {dth} -g {name} --num 10 --directions 32",
        ],
        "fix": [
            f"sample -g {name} --num 20000 --seed 0 --scorer quality --out {quality_run} -q",
            f"train-boundary {quality_run} --attribute quality --space w",
            f"fix -g {name} --boundary {quality_run}/boundaries/quality_w.npy --alpha 2 --num 12 --seed 1 "
            f"--out {q(str(DOCS / recipe.fix_figure))}",
        ],
    }  # fmt: skip
    return steps if recipe.directions else {k: v for k, v in steps.items() if k != "directions"}


def finish(step: str, name: str, work: Path) -> None:
    """What a step leaves for the package besides its commands' own outputs."""
    if step == "encoder":
        shutil.copyfile(work / "encoder" / "encoder.safetensors", shipped.encoder_file(name))
    elif step == "boundaries":
        # in the scorer's order (the sliders' order): train-boundary names them ATTRIBUTE_w.npy
        order = json.loads((work / "samples" / "manifest.json").read_text())["attributes"]
        files = [str(work / "samples" / "boundaries-w" / f"{attribute}_w.npy") for attribute in order]
        out = shlex.quote(str(shipped.boundaries_folder(name)))
        run_facesteer(f"discover boundaries {shlex.join(files)} --out {out}", False)
    elif step == "directions":
        if shipped.directions_folder(name).exists():
            shutil.rmtree(shipped.directions_folder(name))
        shutil.copytree(work / "dth" / "labelled", shipped.directions_folder(name))


def done(step: str, name: str, source: Path) -> bool:
    """The step's shipped outputs exist and were made from the run's weights (``source``)."""
    if step == "export":
        return shipped.generator_file(name).is_file() and filecmp.cmp(source, shipped.generator_file(name), False)
    recorded = shipped.recorded_weights(name)
    identity = recorded.get(f"{name}.json")
    files = {
        "export": [f"{name}.json"],
        "quality": [shipped.quality_file(name).name],
        "encoder": [shipped.encoder_file(name).name],
        "boundaries": [f"{shipped.boundaries_folder(name).name}/directions.json"],
        "directions": [f"{shipped.directions_folder(name).name}/directions.json"],
    }.get(step)
    return done("export", name, source) and files is not None and all(recorded.get(f) == identity for f in files)


def run_facesteer(command: str, dry_run: bool) -> None:
    print(f"$ facesteer {command}", flush=True)
    if not dry_run:
        subprocess.run([sys.executable, "-m", "facesteer.cli", *shlex.split(command)], check=True, cwd=ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(RECIPES))
    parser.add_argument("--run", type=Path, required=True, help="the train-gan run folder to ship")
    parser.add_argument("--from", dest="start", choices=STEPS, help="run this step and every later one again")
    parser.add_argument("--hardware", default="2-core CPU VM (no GPU)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args()
    recipe, work = RECIPES[args.name], ROOT / "runs" / f"ship-{args.name}"
    source = (
        args.run / "best.safetensors"
        if (args.run / "best.safetensors").is_file()
        else args.run / "generator.safetensors"
    )
    plan = commands(args.name, args.run, recipe, work, args.hardware)
    forced = set(STEPS[STEPS.index(args.start) :]) if args.start else set()
    if not source.is_file():
        parser.error(f"{args.run} holds no exported generator (best.safetensors or generator.safetensors)")
    for step, step_commands in plan.items():
        if step not in forced and done(step, args.name, source):
            print(f"# {step}: done (its files record the weights of {source})")
            continue
        print(f"# {step}")
        for command in step_commands:
            run_facesteer(command, args.dry_run)
        if not args.dry_run:
            finish(step, args.name, work)
    if not args.dry_run:
        print(f"shipped {args.name} from {source}: now update its figures' captions and numbers in README.md")


if __name__ == "__main__":
    main()
