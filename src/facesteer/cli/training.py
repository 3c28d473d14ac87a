"""Commands that train and ship models: ``train-predictor``, ``train-gan``, ``train-quality``,
``train-race``, ``export-gan``."""

from __future__ import annotations

from pathlib import Path

import typer

from facesteer.attributes.quality import default_quality_out
from facesteer.attributes.race import WEIGHTS
from facesteer.cli.app import app, console
from facesteer.cli.options import (
    ReferenceNumOption,
)
from facesteer.cli.output import print_agreement
from facesteer.generators import load_generator
from facesteer.training.distill import train_predictor as distil
from facesteer.training.quality import train_quality
from facesteer.training.race import train_race
from facesteer.training.stylegan2 import Trainer, TrainingOptions, export_trained_generator, parse_augment_policy


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

    card = distil(data, out, evaluate_on, epochs, batch_size, learning_rate, seed, generator)
    console.print(f"wrote {out} and its model card {out.with_suffix('.md')}, for generator {card['generator']}")
    if "evaluation" in card:
        print_agreement(card["evaluation"])


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
    init_from: Path | None = typer.Option(
        None, "--init-from", help="a new run starts from this checkpoint of another run (portable.safetensors too)"
    ),
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
        init_from=str(init_from) if init_from else None,
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

    card = export_trained_generator(
        run, name, out_dir, fid_num, hardware, fid_reference_num=reference_num, quality_num=quality_num
    )
    console.print(f"wrote {out_dir / (name + '.safetensors')} and its card; FID {card['fid']:.2f} ({fid_num:,} faces), "
                  f"dlib distance {card['quality']['dlib_frechet']:.3f}")  # fmt: skip
