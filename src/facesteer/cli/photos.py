"""Commands for real photos and drawings: ``learn-framing``, ``align``, ``invert``, ``train-encoder``,
``edit-photo``."""

from __future__ import annotations

from pathlib import Path

import typer

from facesteer.alignment import Aligner, default_framing_out, framing_kind_for, learn_framing, load_framing
from facesteer.boundaries import Boundary
from facesteer.cli.app import app, console
from facesteer.cli.options import (
    EncoderFileOption,
    FramingOption,
    GeneratorOption,
    InversionMethodOption,
    InversionSpaceOption,
    LearningRateOption,
    ModelsOption,
    RecipeOption,
    StepsOption,
)
from facesteer.datasets import evenly_spaced, list_images, load_images
from facesteer.files import check_out_folder
from facesteer.generators import DEFAULT_GENERATOR, load_generator
from facesteer.images import load_image, save_png
from facesteer.inversion import InversionOptions
from facesteer.photo_editing import check_not_a_picture, check_outputs, edit_photos, invert_photos, save_inversion
from facesteer.training.encoder import EncoderOptions, train_encoder


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

    check_outputs(pictures, out)
    framing = load_framing(generator, framing_file)
    size = load_generator(generator).resolution
    with Aligner(framing, size, models) as aligner:
        aligned = [aligner.align(load_image(path), str(path)) for path in pictures]  # all or nothing
    for path, image in zip(pictures, aligned, strict=True):
        console.print(f"wrote {save_png(out / f'{path.stem}.png', image)}")


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

    model = load_generator(generator)
    how = InversionOptions(method, recipe, space, steps, learning_rate, encoder_file).resolve(model)
    check_outputs(pictures, out)
    check_out_folder(out)
    aligned, result = invert_photos(pictures, model, load_framing(model.name, framing_file), how, models, progress=True)
    save_inversion(out, pictures, aligned, result, {"generator": model.name, **how.summary()})
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

    check_not_a_picture(out, pictures)
    model = load_generator(generator)
    how = InversionOptions(method, recipe, space, steps, learning_rate, encoder_file).resolve(model)
    primal, kept = Boundary.load(boundary), [Boundary.load(path) for path in conditions or []]
    result = edit_photos(pictures, model, load_framing(model.name, framing_file), primal, alphas, kept, how, models,
                         progress=True)  # fmt: skip
    save_png(out, result.grid())
    kept_text = f", keeping {', '.join(result.boundary.conditions)}" if result.boundary.conditions else ""
    console.print(f"wrote {out}: {len(pictures)} pictures, {primal.attribute} at alpha {alphas}{kept_text} "
                  f"(inverted in {result.inversion.seconds:.1f} s)")  # fmt: skip
