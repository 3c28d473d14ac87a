"""Unsupervised directions: ``discover sefa|ganspace|boundaries|latent`` and ``label``."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import typer

from facesteer.attributes import load_scorer
from facesteer.boundaries import Boundary
from facesteer.cli.app import app, console
from facesteer.cli.options import (
    AddressOption,
    DirectionsOutOption,
    EngineOption,
    GeneratorOption,
    JsonOption,
    ModelsOption,
    ShowOption,
    WorkersOption,
)
from facesteer.cli.output import print_json, table_of
from facesteer.devices import resolve_device
from facesteer.editing import parse_layer_range
from facesteer.engines import ScorerSpec, engine_factory
from facesteer.generators import load_generator
from facesteer.images import save_png

discover_app = typer.Typer(
    help="Find editing directions without labels: SeFa, GANSpace, latent discovery.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(discover_app, name="discover")


def _finish_directions(model: Any, directions: Any, out: Path, show: int, seed: int, as_json: bool) -> None:
    """Save a set of directions with its picture, then print what ranks them."""
    from facesteer.visualize import directions_picture  # deferred: matplotlib: 1.9 s of start-up

    directions.save(out)
    if show:
        indices = list(range(min(show, len(directions))))
        save_png(out / "traversals.png", directions_picture(model, directions, indices, seed=seed))
    values = directions.values if directions.values is not None else [float("nan")] * len(directions)
    if as_json:
        print_json({"out": str(out), **directions.sidecar()})
        return
    what = "eigenvalue" if directions.method == "sefa" else "explained variance"
    rows = [[str(k), directions.label(k), f"{v:.4g}"] for k, v in enumerate(values[:16])]
    console.print(table_of(f"{directions.method} on {model.name}: {len(directions)} directions in "
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
    from facesteer.discovery import sefa  # deferred: scikit-learn: 1 s of start-up

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
    from facesteer.discovery import ganspace  # deferred: scikit-learn: 1 s of start-up

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
    from facesteer.discovery import Directions  # deferred: scikit-learn: 1 s of start-up

    found = Directions.from_boundaries([Boundary.load(path) for path in files])
    found.save(out)
    if as_json:
        print_json({"out": str(out), **found.sidecar()})
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
    from facesteer.discovery.latent import DiscoveryOptions, LatentDiscovery  # deferred: scikit-learn: 1 s of start-up

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
    engine: str = EngineOption,
    address: str | None = AddressOption,
    as_json: bool = JsonOption,
) -> None:
    """Name directions by the attributes they move: Pearson's r of each attribute with the step along each
    direction, averaged over samples (the two-stage paper's traversal table). With --engine ray, --workers Ray
    actors make and score the walks (not with --identity)."""
    # deferred: scikit-learn and matplotlib, 2 s of start-up
    from facesteer.discovery import Directions
    from facesteer.discovery.traversal import (
        check_identity_engine,
        named_directions,
        traversal_table,
        traverse_scores,
    )
    from facesteer.evaluation.directions import check_boundary_folder, direction_boundary_cosines, label_figures

    model = load_generator(generator)
    found = Directions.load(directions_path)
    if boundaries is not None:
        check_boundary_folder(boundaries, found)  # before the walks, not after
    indices = list(range(min(count, len(found))))
    folder = directions_path.parent if directions_path.suffix == ".npy" else directions_path
    out = out or folder / "labelled"
    check_identity_engine(identity, engine)  # before any model or cluster starts
    spec = ScorerSpec(scorer, models and str(models.resolve()), generator=model.name)
    elsewhere = engine_factory(engine, spec, workers, address)
    local_workers = workers if elsewhere is None else 1  # on Ray, the actors are the workers
    with contextlib.ExitStack() as stack:
        measure = stack.enter_context(load_scorer(scorer, models, local_workers, generator=model.name))
        embedder = stack.enter_context(load_scorer("identity", workers=workers)) if identity else None
        cluster = stack.enter_context(contextlib.closing(elsewhere(model))) if elsewhere is not None else None
        scores = traverse_scores(model, found, measure, num=num, seed=seed, reach=reach, indices=indices,
                                 identity=embedder, progress=not as_json, engine=cluster)  # fmt: skip
        attributes = tuple(measure.attributes) + (("identity",) if identity else ())
    table = traversal_table(scores, attributes, reach)
    named = named_directions(found, table, indices)
    cosines = direction_boundary_cosines(named, boundaries) if boundaries else {}
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
        print_json({"out": str(out), **named.sidecar()})
        return
    title = f"{found.method} on {model.name}: {len(indices)} directions, {num} samples x {2 * reach + 1} steps"
    columns = ["attribute", "direction", "r", "largest off-target |r|", "cos to boundary"]
    console.print(table_of(title, columns, rows))
    console.print(f"wrote {out}: named directions, table.png (the r matrix), strips.png")
