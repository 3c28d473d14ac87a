"""Inversion by optimisation: find the code whose image matches a picture, by gradient descent on the code.

Four recipes:

- :data:`NFE_RECIPE`, the Neural Face Editor's (the baseline): in Z, 1000 Adam steps at lr 0.01 on the summed
  squared error of Gaussian-blurred images (sigma 1 px; images in [-1, 1]) plus 20 ||z||^2.
- :data:`FACESTEER_RECIPE`: in W (or the space asked for), few Adam steps at a larger rate on the mean squared
  error plus LPIPS-VGG plus a small latent prior (:class:`~facesteer.inversion.prior.LatentPrior`), meant to
  start from an encoder's code.
- :data:`FAST_RECIPE`: W+, 20 steps of mean squared error plus the prior (no VGG): the quickest.
- :data:`BALANCED_RECIPE`: facesteer's loss in W+ for 10 steps: matches NFE's PSNR and LPIPS in a thirteenth of
  its time or less (bench/RESULTS.md); the editor's and the bot's, where an upload must come back within 2 s.

Each picture's loss is summed over the batch, and Adam's update is element-wise, so inverting a batch gives the
same codes as inverting each picture alone: batching only makes it faster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from tqdm import tqdm

from facesteer.errors import FacesteerError
from facesteer.generators.base import Generator
from facesteer.inversion.prior import LatentPrior
from facesteer.perceptual import LPIPS


@dataclass(frozen=True)
class Recipe:
    """How to optimise codes toward target pictures.

    Attributes:
        name: what to call it in tables.
        space: latent space optimised (``z``, ``w``, ``wp``).
        steps: Adam steps.
        learning_rate: Adam's rate.
        pixel: weight of the pixel term.
        pixel_reduction: ``"sum"`` (summed squared error, NFE) or ``"mean"`` (mean squared error).
        blur_sigma: Gaussian blur (px) of both images before the pixel term; 0 = none.
        perceptual: weight of LPIPS-VGG (0 = not computed).
        prior: weight of the latent prior's penalty.
        prior_kind: ``"norm"`` (``prior`` x ||z||^2, NFE) or ``"whitened"`` (``LatentPrior.penalty``).
    """

    name: str
    space: str
    steps: int
    learning_rate: float
    pixel: float = 1.0
    pixel_reduction: str = "mean"
    blur_sigma: float = 0.0
    perceptual: float = 1.0
    prior: float = 0.01
    prior_kind: str = "whitened"

    def with_changes(self, **changes: object) -> Recipe:
        return replace(self, **changes)


NFE_RECIPE = Recipe("nfe", "z", 1000, 0.01, pixel_reduction="sum", blur_sigma=1.0, perceptual=0.0, prior=20.0,
                    prior_kind="norm")  # fmt: skip
FACESTEER_RECIPE = Recipe("facesteer", "w", 30, 0.05)
#: no VGG in the loop: W+, 20 steps of mean squared error plus the prior, from an encoder's code
FAST_RECIPE = Recipe("fast", "wp", 20, 0.02, perceptual=0.0)
#: facesteer's loss in W+ for 10 steps from an encoder's code: the best measured trade (the editor's and the bot's)
BALANCED_RECIPE = Recipe("balanced", "wp", 10, 0.03)
RECIPES = {recipe.name: recipe for recipe in (NFE_RECIPE, FACESTEER_RECIPE, FAST_RECIPE, BALANCED_RECIPE)}


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """(N, C, H, W) blurred by a separable Gaussian of ``sigma`` px (radius 3 sigma, reflected borders)."""
    if sigma <= 0:
        return images
    radius = max(1, round(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    padded = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    horizontal = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
    return F.conv2d(horizontal, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)


def reconstruction_loss(
    recipe: Recipe,
    images: torch.Tensor,
    targets: torch.Tensor,
    codes: torch.Tensor,
    prior: LatentPrior | None,
    perceptual: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
) -> torch.Tensor:
    """(N,) loss of each picture under ``recipe``: pixel + perceptual + prior terms."""
    difference = (gaussian_blur(images, recipe.blur_sigma) - gaussian_blur(targets, recipe.blur_sigma)).square()
    pixel = difference.flatten(1).sum(dim=1) if recipe.pixel_reduction == "sum" else difference.flatten(1).mean(dim=1)
    loss = recipe.pixel * pixel
    if recipe.perceptual > 0:
        if perceptual is None:
            raise FacesteerError(f"recipe {recipe.name} needs a perceptual distance (LPIPS)")
        loss = loss + recipe.perceptual * perceptual(images, targets)
    if recipe.prior > 0:
        if recipe.prior_kind == "norm":
            loss = loss + recipe.prior * codes.square().flatten(1).sum(dim=1)
        else:
            if prior is None:
                raise FacesteerError(f"recipe {recipe.name} needs a latent prior")
            loss = loss + recipe.prior * prior.penalty(codes)
    return loss


def optimize_codes(
    generator: Generator,
    targets: torch.Tensor,
    start: torch.Tensor,
    recipe: Recipe,
    prior: LatentPrior | None = None,
    perceptual: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    progress: bool = False,
    after_step: Callable[[int, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, list[float]]:
    """Optimise ``start`` codes so the generator's images match ``targets``.

    Args:
        generator: the generator (its weights are not changed).
        targets: float32 (N, 3, R, R) in [-1, 1], R the generator's resolution.
        start: float32 (N, *space_shape(recipe.space)), the starting codes.
        recipe: the :class:`Recipe`.
        prior: the latent prior of ``recipe.space`` (needed when ``recipe.prior_kind == "whitened"``).
        perceptual: LPIPS (N, 3, R, R) x 2 -> (N,), needed when ``recipe.perceptual > 0``.
        after_step: called with (steps done, the codes, detached) after every step (e.g. to trace metrics).

    Returns:
        the final codes (N, *space_shape), detached, and the mean loss per picture at each step.
    """
    resolution = generator.resolution
    if targets.ndim != 4 or tuple(targets.shape[1:]) != (3, resolution, resolution):
        raise FacesteerError(f"targets must have shape (N, 3, {resolution}, {resolution}), got {tuple(targets.shape)}")
    generator.check_codes(start, recipe.space)
    if len(start) != len(targets):
        raise FacesteerError(f"{len(start)} start codes for {len(targets)} targets")
    if isinstance(perceptual, LPIPS) and recipe.perceptual > 0:  # the targets' features, computed once
        lpips = perceptual
        with torch.no_grad():
            target_features = lpips.tapped(targets)
        perceptual = lambda images, _targets: lpips.distance_to(images, target_features)  # noqa: E731
    codes = start.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([codes], lr=recipe.learning_rate)
    history = []
    for step in tqdm(range(recipe.steps), desc=f"inverting ({recipe.name})", unit="step", disable=not progress):
        images = generator.synthesize_tensor(codes, recipe.space)
        loss = reconstruction_loss(recipe, images, targets, codes, prior, perceptual)
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimizer.step()
        history.append(float(loss.detach().mean()))
        if after_step is not None:
            after_step(step + 1, codes.detach())
    return codes.detach(), history
