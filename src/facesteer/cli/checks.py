"""Commands that check a scorer, the identity metric or a result: ``check-*``, ``evaluate*``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from facesteer.attributes import DEFAULT_SCORER, load_scorer
from facesteer.attributes.identity import calibrated_threshold
from facesteer.attributes.predictor import PredictorScorer
from facesteer.attributes.quality import QualityScorer
from facesteer.boundaries import Boundary
from facesteer.cli.app import app, console
from facesteer.cli.options import (
    AddressOption,
    EngineOption,
    GeneratorOption,
    IdentityCodesOption,
    JsonOption,
    ModelsOption,
    ReferenceNumOption,
    WorkersOption,
    identity_options,
)
from facesteer.cli.output import print_agreement, print_evaluation, print_json, table_of
from facesteer.engines import ScorerSpec, engine_factory
from facesteer.evaluation.anime_labels import check_anime_scorer
from facesteer.evaluation.artifacts import fix_effects
from facesteer.evaluation.real_photos import check_scorer_on_utkface, write_identity_calibration
from facesteer.fid import dataset_statistics
from facesteer.generators import load_generator
from facesteer.shipped import ANIME_LABELS
from facesteer.training import distill


@app.command("check-scorer")
def check_scorer(
    data: Path = typer.Option(Path("../shared/data/utkface-crop-part1"), "--data", help="UTKFace folder"),
    scorer: str = typer.Option(DEFAULT_SCORER, "--scorer"),
    num: int = typer.Option(500, "--num", min=1),
    seed: int = typer.Option(0, "--seed", min=0),
    min_age: int = typer.Option(15, "--min-age", min=0),
    models: Path | None = ModelsOption,
    as_json: bool = JsonOption,
) -> None:
    """Check a scorer's age and gender against UTKFace's labels on a fixed random subset."""

    with load_scorer(scorer, models) as scoring:
        result = check_scorer_on_utkface(scoring, data, num, seed, min_age, progress=not as_json)
    if as_json:
        print_json(result)
        return
    rows = [
        [
            f"age >= {min_age}",
            result["adults"]["faces"],
            f"{result['adults']['gender_accuracy']:.3f}",
            f"{result['adults']['age_mae']:.2f}",
        ],
        [
            "all ages",
            result["all"]["faces"],
            f"{result['all']['gender_accuracy']:.3f}",
            f"{result['all']['age_mae']:.2f}",
        ],
    ]
    console.print(
        table_of(
            f"{scorer} on {num} UTKFace photos (seed {seed}; {result['no_face']} without a face)",
            ["subset", "faces", "gender accuracy", "age MAE (years)"],
            rows,
        )
    )


@app.command("check-identity")
def check_identity(
    data: Path = typer.Option(Path("../shared/data/celeba-sample"), "--data", help="photos + identities.csv"),
    sizes: list[int] | None = typer.Option(
        None, "--size", min=16, help="also downscale so the shorter side is SIZE px (repeat; default: 64)"
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="write the calibration as JSON (the shipped one)"),
    as_json: bool = JsonOption,
) -> None:
    """Calibrate the identity distance on photos of known people: ROC AUC of same- vs different-identity pairs
    and the distance that keeps 95 % of same-identity pairs, at the photos' own size and downscaled."""

    results = write_identity_calibration(data, [None, *(sizes or [64])], out, progress=not as_json)
    if as_json:
        print_json(results)
        return
    rows = [
        [
            "own size" if r["size"] is None else f"{r['size']} px",
            f"{r['faces_found']}/{r['photos']}",
            f"{r['same_pairs']:,} / {r['different_pairs']:,}",
            f"{r['auroc']:.4f}",
            f"{r['threshold']:.3f}",
            f"{r['different_accepted']:.3f}",
            f"{r['same_mean_distance']:.3f} / {r['different_mean_distance']:.3f}",
        ]
        for r in results["calibrations"]
    ]
    console.print(
        table_of(
            f"Identity distance (dlib) on {data}",
            ["photos", "faces", "pairs same / different", "ROC AUC", "threshold (95 % same kept)",
             "different under it", "mean same / different"],
            rows,
        )
    )  # fmt: skip
    if out is not None:
        console.print(f"wrote {out}")


@app.command("check-anime")
def check_anime(
    data: Path = typer.Option(Path("../shared/data/anime-faces-64"), "--data", help="anime-faces-64 folder"),
    labels: Path = typer.Option(
        ANIME_LABELS,
        "--labels",
        help="CSV: file, hair_colour, hair_length, eye_colour (default: the shipped labels)",
        show_default=False,
    ),
    as_json: bool = JsonOption,
) -> None:
    """Check the anime scorer against labels made by eye: the AUROC of each score for its class."""

    with load_scorer("anime") as scoring:
        result = check_anime_scorer(scoring, labels, data, progress=not as_json)
    if as_json:
        print_json(result)
        return
    rows = [[c["score"], c["positive"], f"{c['positives']} / {c['negatives']}", f"{c['auroc']:.3f}"]
            for c in result["checks"]]  # fmt: skip
    title = f"anime scorer on {result['images']} labelled images ({result['no_face']} without a detected face)"
    console.print(table_of(title, ["score", "positive class", "positives / negatives", "AUROC"], rows))


@app.command("evaluate-fix")
def evaluate_fix(
    boundary: Path = typer.Option(..., "--boundary", "-b", help="quality boundary .npy"),
    data: Path = typer.Option(..., "--data", help="the generator's training photos (FID reference)"),
    generator: str = GeneratorOption,
    num: int = typer.Option(2000, "--num", "-n", min=10, help="held-out faces per FID"),
    seed: int = typer.Option(1, "--seed", min=0, help="seed of the held-out codes (not the boundary run's)"),
    identity_num: int = typer.Option(300, "--identity-num", min=1, help="faces checked for identity"),
    below: float | None = typer.Option(None, "--below", help="move only faces whose distance is below this"),
    reference_num: int | None = ReferenceNumOption,
    models: Path | None = ModelsOption,
    workers: int = WorkersOption,
    as_json: bool = JsonOption,
) -> None:
    """Measure artifact correction: FID, faces found, quality and identity kept at alpha 0, 1, 2, 3."""

    model = load_generator(generator)
    direction = Boundary.load(boundary)
    reference = dataset_statistics(data, model.resolution, progress=not as_json, max_images=reference_num)
    threshold = calibrated_threshold(model.resolution, fallback=True)
    with (
        load_scorer(DEFAULT_SCORER, models, workers) as teachers,
        QualityScorer(model.name) as quality,
        load_scorer("identity", workers=workers) as identity,
    ):
        rows = fix_effects(model, direction, reference, teachers, quality, identity, threshold, num=num, seed=seed,
                           identity_num=identity_num, below=below, progress=not as_json)  # fmt: skip
    result = {"generator": model.name, "boundary": str(boundary), "num": num, "seed": seed, "data": str(data),
              "below": below,
              "identity_num": identity_num, "identity_threshold": threshold, "rows": rows}  # fmt: skip
    if as_json:
        print_json(result)
        return

    def fmt(row: dict[str, Any], key: str, spec: str = ".3f") -> str:
        return "-" if key not in row or row[key] != row[key] else format(row[key], spec)

    console.print(
        table_of(
            f"Artifact correction on {model.name}: {num:,} held-out faces (seed {seed}) along {direction.attribute}"
            + ("" if below is None else f", moving those below {below:g}"),
            ["alpha", "moved", "FID", "faces found", "mean quality", f"identity kept (< {threshold:.3f})",
             "face lost", "mean distance"],
            [[f"{r['alpha']:g}", fmt(r, "moved"), fmt(r, "fid", ".2f"), fmt(r, "faces_found"),
              fmt(r, "quality", "+.2f"), fmt(r, "identity_kept"), fmt(r, "identity_lost"),
              fmt(r, "identity_mean_distance")] for r in rows],
        )
    )  # fmt: skip


@app.command()
def evaluate(
    run: Path = typer.Argument(..., help="dataset folder written by `facesteer sample`"),
    scorer: str = typer.Option(DEFAULT_SCORER, "--scorer", help="scorer that measures the edit effects"),
    edit_codes: int = typer.Option(500, "--edit-codes", min=1, help="held-out codes moved along each boundary"),
    alpha: float = typer.Option(2.0, "--alpha", min=0.01, help="step for the edit effects (central differences)"),
    identity_codes: int = IdentityCodesOption,
    force: bool = typer.Option(False, "--force", help="measure with a predictor made for another generator"),
    models: Path | None = ModelsOption,
    workers: int = WorkersOption,
    engine: str = EngineOption,
    address: str | None = AddressOption,
    as_json: bool = JsonOption,
) -> None:
    """InterFaceGAN's evaluation of a run: accuracies, cosines, correlations, edit effects, identity kept;
    writes RUN/report.md. With --engine ray, --workers Ray actors make and score the edited faces."""
    from facesteer.evaluation.interfacegan import evaluate_run  # deferred: matplotlib: 1.9 s of start-up

    elsewhere = engine_factory(engine, ScorerSpec(scorer, models and str(models.resolve())), workers, address)
    local_workers = workers if elsewhere is None else 1  # on Ray, the actors are the workers
    identity_scorer = identity_options(identity_codes, local_workers)
    with load_scorer(scorer, models, local_workers) as scoring, identity_scorer as identity:
        result = evaluate_run(
            run,
            scoring,
            edit_codes=edit_codes,
            alpha=alpha,
            progress=not as_json,
            identity=identity,
            force_scorer=force,
            engine=elsewhere,
        )
    for warning in result["warnings"]:
        sys.stderr.write(f"facesteer: warning: {warning}\n")
    if as_json:
        print_json(result)
        return
    print_evaluation(result)
    console.print(f"report: {run / 'report.md'}")


@app.command("evaluate-predictor")
def evaluate_predictor(
    data: Path = typer.Option(..., "--data", help="held-out teacher-scored run (never used in training)"),
    weights: Path | None = typer.Option(None, "--weights", help="predictor weights (default: the packaged ones)"),
    as_json: bool = JsonOption,
) -> None:
    """Agreement of the predictor with the teachers on a held-out teacher-scored run."""

    scorer = PredictorScorer(weights)
    images, scores = distill.load_teacher_runs([data], progress=not as_json)
    metrics = distill.agreement(scores, scorer.score(images))
    if as_json:
        print_json(metrics)
        return
    print_agreement(metrics)
