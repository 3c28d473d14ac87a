"""InterFaceGAN's commands: ``train-boundary``, ``condition``, ``correlate``, ``edit``, ``rank``, ``fix``."""

from __future__ import annotations

from pathlib import Path

import typer

from facesteer.boundaries import Boundary, read_npy
from facesteer.cli.app import app, console
from facesteer.cli.options import (
    GeneratorOption,
    JsonOption,
    TruncationOption,
)
from facesteer.cli.output import print_json, table_of
from facesteer.editing import wp_layers
from facesteer.errors import FacesteerError
from facesteer.evaluation.metrics import boundary_cosines
from facesteer.generators import apply_truncation, load_generator, load_generator_for
from facesteer.images import save_png
from facesteer.latents import LatentDataset
from facesteer.ranking import rank_run, rank_strip_path
from facesteer.training.run_boundaries import (
    boundary_path,
    run_boundary_dir,
    train_all_boundaries,
    train_run_boundary,
)


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
        print_json({a: b.sidecar() for a, b in boundaries.items()})
        return
    console.print(
        table_of(
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

    matrix = boundary_cosines([Boundary.load(p) for p in boundaries])
    names = [p.stem for p in boundaries]
    if as_json:
        print_json({"boundaries": names, "cosine": matrix.round(6).tolist()})
        return
    console.print(
        table_of(
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
    from facesteer.discovery.directions import load_direction_set  # deferred: scikit-learn: 1 s of start-up
    from facesteer.visualize import save_edit_grid  # deferred: matplotlib: 1.9 s of start-up

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
    from facesteer.visualize import labelled_strip  # deferred: matplotlib: 1.9 s of start-up

    dataset = LatentDataset(run).require_complete()
    direction = Boundary.load(boundary)
    model = load_generator_for(dataset.manifest["generator"])
    ranking = rank_run(dataset, direction, model, num)
    out = out or rank_strip_path(run, direction)
    faces = model.synthesize(ranking.codes, ranking.space)
    save_png(out, labelled_strip(faces, [f"{d:+.2f}" for d in ranking.distances], scale=scale))
    if as_json:
        print_json(
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
    from facesteer.visualize import fix_grid  # deferred: matplotlib: 1.9 s of start-up

    model = load_generator(generator)
    direction = Boundary.load(boundary)
    picture, moved = fix_grid(model, direction, alpha, below, num, seed, columns)
    save_png(out, picture)
    console.print(f"wrote {out}: {int(moved.sum())} of {num} faces moved by {alpha:+g} along {direction.attribute}")
