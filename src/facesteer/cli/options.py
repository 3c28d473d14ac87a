"""Options that several commands share (declared once, so each means the same everywhere)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import typer

from facesteer import modelfiles
from facesteer.attributes import default_workers, load_scorer
from facesteer.engines import ENGINES
from facesteer.generators import DEFAULT_GENERATOR

GeneratorOption = typer.Option(DEFAULT_GENERATOR, "--generator", "-g", help="registered name or checkpoint path")
ModelsOption = typer.Option(
    None, "--models", help=f"model files folder (default: ${modelfiles.ENV_VAR}, else the shipped copies)"
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
def identity_options(codes: int, workers: int) -> Iterator[Any]:
    """The identity scorer for ``evaluate`` (None when ``codes`` is 0)."""
    from facesteer.evaluation.interfacegan import IdentityOptions  # deferred: matplotlib: 1.9 s of start-up

    if codes == 0:
        yield None
        return
    with load_scorer("identity", workers=workers) as embedder:
        yield IdentityOptions(embedder, codes)


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


DirectionsOutOption = typer.Option(..., "--out", "-o", help="folder for directions.npy, directions.json and pictures")
ShowOption = typer.Option(8, "--show", min=0, max=64, help="directions pictured in OUT/traversals.png")
