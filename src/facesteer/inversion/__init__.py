"""GAN inversion: from aligned pictures to latent codes whose images reconstruct them.

Four methods (:func:`invert`):

- ``optim``: optimisation (:mod:`.optimize`) from the mean code of the space;
- ``encoder``: one pass of the trained encoder (:mod:`.encoder`);
- ``hybrid``: the encoder's code as the start, then optimisation (NFE's and in-domain inversion's scheme);
- ``pti``: the encoder's code as a pivot, then the generator's weights tuned to each picture (:mod:`.tuning`):
  each picture gets its own tuned copy of the generator, in :attr:`Inversion.generators`.

Pictures must already be in the generator's framing (:mod:`facesteer.alignment`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from facesteer.errors import FacesteerError
from facesteer.generators.base import Generator, to_uint8_images
from facesteer.generators.ops import uint8_to_unit
from facesteer.inversion.encoder import InversionEncoder
from facesteer.inversion.optimize import (
    BALANCED_RECIPE,
    FACESTEER_RECIPE,
    FAST_RECIPE,
    NFE_RECIPE,
    RECIPES,
    Recipe,
    optimize_codes,
)
from facesteer.inversion.options import (
    METHODS,
    InversionOptions,
    ResolvedInversion,
    encoder_for,
    resolve_recipe,
    resolve_tuning,
)
from facesteer.inversion.prior import LatentPrior
from facesteer.inversion.tuning import DEFAULT_TUNING, TuningRecipe, tune_generator
from facesteer.perceptual import load_lpips


@dataclass
class Inversion:
    """What :func:`invert` returns.

    Attributes:
        codes: float32 (N, *space_shape(space)).
        space: their latent space.
        reconstructions: uint8 (N, R, R, 3), the generator's images of ``codes`` (for ``pti``, each tuned copy's).
        seconds: wall time of the whole inversion (all N pictures).
        losses: mean loss per picture at each optimisation step (empty for ``encoder`` and ``pti``).
        generators: ``pti`` only: the generator tuned to each picture (draw and edit picture i's code with
            ``generators[i]``); None for the other methods, whose codes belong to the generator itself.
        tuning_losses: ``pti`` only: the mean tuning loss per picture at each step.
    """

    codes: np.ndarray
    space: str
    reconstructions: np.ndarray
    seconds: float
    losses: list[float]
    generators: list[Generator] | None = None
    tuning_losses: list[float] = field(default_factory=list)

    def generator_for(self, index: int, generator: Generator) -> Generator:
        """The generator that draws code ``index``: its tuned copy (``pti``), else ``generator``."""
        return self.generators[index] if self.generators is not None else generator


def convert_codes(generator: Generator, codes: torch.Tensor, source: str, target: str) -> torch.Tensor:
    """Codes of ``source`` as codes of ``target``: z -> w -> wp only (a mapping cannot be undone)."""
    if source == target:
        return codes
    if (source, target) == ("w", "wp"):
        return generator.broadcast(codes)
    if source == "z" and target in ("w", "wp"):
        w = generator.mapping(codes)
        return w if target == "w" else generator.broadcast(w)
    raise FacesteerError(f"cannot turn {source} codes into {target} codes (the mapping cannot be inverted)")


def mean_code(generator: Generator, space: str, count: int) -> torch.Tensor:
    """``count`` copies of the space's centre: zeros in z, w_avg in w and W+."""
    if space == "z":
        return torch.zeros(count, generator.z_dim)
    return convert_codes(generator, generator.w_avg.detach().expand(count, -1).clone(), "w", space)


def invert(
    pictures: np.ndarray,
    generator: Generator,
    method: str = "hybrid",
    recipe: Recipe | None = None,
    encoder: InversionEncoder | None = None,
    perceptual: torch.nn.Module | None = None,
    progress: bool = False,
    after_step: Callable[[int, torch.Tensor], None] | None = None,
    prior: LatentPrior | None = None,
    tuning: TuningRecipe | None = None,
) -> Inversion:
    """Invert aligned ``pictures`` (N, R, R, 3) uint8 with ``method``.

    Args:
        recipe: the optimisation (default :data:`FACESTEER_RECIPE`; its ``space`` is the codes' space); for
            ``encoder`` only its space matters (the encoder's code is converted to it).
        encoder: default: the generator's shipped encoder (``encoder``, ``hybrid`` and ``pti``).
        perceptual: LPIPS module (default: loaded when the recipe needs it).
        after_step: passed to :func:`~facesteer.inversion.optimize.optimize_codes`.
        prior: the recipe space's :class:`LatentPrior` (default: fitted now; a caller inverting often keeps one).
        tuning: ``pti``'s :class:`~facesteer.inversion.tuning.TuningRecipe` (default :data:`DEFAULT_TUNING`);
            its pivot is the encoder's code in the recipe's space (no code optimisation, so ``after_step``,
            ``prior`` and the recipe's steps and weights do not apply to it).
    """
    if method not in METHODS:
        raise FacesteerError(f"unknown inversion method {method!r}; choose one of {', '.join(METHODS)}")
    if tuning is not None and method != "pti":
        raise FacesteerError(f"a tuning recipe applies to `method` pti, not {method}")
    resolution = generator.resolution
    if pictures.ndim != 4 or pictures.shape[1:] != (resolution, resolution, 3) or pictures.dtype != np.uint8:
        raise FacesteerError(
            f"pictures must be aligned uint8 (N, {resolution}, {resolution}, 3), got {pictures.dtype} {pictures.shape}"
        )
    recipe = recipe or FACESTEER_RECIPE
    if recipe.space not in generator.spaces:
        raise FacesteerError(f"generator {generator.name} has no latent space {recipe.space!r}")
    started = time.perf_counter()
    targets = uint8_to_unit(pictures)
    losses: list[float] = []
    if method == "optim":
        start = mean_code(generator, recipe.space, len(pictures))
    else:
        encoder = encoder or encoder_for(generator, method)
        with torch.no_grad():
            start = convert_codes(generator, encoder.encode(targets), encoder.space, recipe.space)
    codes = start
    if method in ("optim", "hybrid"):
        if recipe.perceptual > 0 and perceptual is None:
            perceptual = load_lpips()
        if recipe.prior_kind != "whitened":
            prior = None
        elif prior is None or prior.space != recipe.space:
            prior = LatentPrior.fit(generator, recipe.space)
        codes, losses = optimize_codes(generator, targets, start, recipe, prior, perceptual, progress, after_step)
    if method == "pti":
        tuned, tuning_losses = _tune_each(generator, targets, codes, recipe.space, tuning or DEFAULT_TUNING,
                                          perceptual, progress)  # fmt: skip
        with torch.no_grad():
            reconstructions = np.concatenate([to_uint8_images(copy.synthesize_tensor(codes[i : i + 1], recipe.space))
                                              for i, copy in enumerate(tuned)])  # fmt: skip
        return Inversion(codes.numpy().astype(np.float32), recipe.space, reconstructions, time.perf_counter() - started,
                         losses, tuned, tuning_losses)  # fmt: skip
    with torch.no_grad():
        reconstructions = to_uint8_images(generator.synthesize_tensor(codes, recipe.space))
    return Inversion(codes.numpy().astype(np.float32), recipe.space, reconstructions,
                     time.perf_counter() - started, losses)  # fmt: skip


def _tune_each(
    generator: Generator,
    targets: torch.Tensor,
    pivots: torch.Tensor,
    space: str,
    tuning: TuningRecipe,
    perceptual: torch.nn.Module | None,
    progress: bool,
) -> tuple[list[Generator], list[float]]:
    """One tuned copy of ``generator`` per picture, and the mean loss over pictures at each tuning step."""
    if tuning.perceptual > 0 and perceptual is None:
        perceptual = load_lpips()
    tuned, losses = [], np.zeros(tuning.steps)
    with tqdm(total=len(targets) * tuning.steps, desc="tuning the generator", unit="step", disable=not progress) as bar:
        for i in range(len(targets)):
            copy, steps = tune_generator(generator, targets[i : i + 1], pivots[i : i + 1], space, tuning, perceptual,
                                         lambda _step, _loss: bar.update())  # fmt: skip
            tuned.append(copy)
            losses += np.asarray(steps)
    return tuned, (losses / len(targets)).tolist()


__all__ = [
    "BALANCED_RECIPE",
    "FACESTEER_RECIPE",
    "FAST_RECIPE",
    "METHODS",
    "NFE_RECIPE",
    "RECIPES",
    "Inversion",
    "InversionOptions",
    "Recipe",
    "ResolvedInversion",
    "TuningRecipe",
    "convert_codes",
    "encoder_for",
    "invert",
    "resolve_recipe",
    "resolve_tuning",
]
