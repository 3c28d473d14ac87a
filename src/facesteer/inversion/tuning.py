"""Pivotal tuning (Roich et al. 2021, "Pivotal Tuning for Latent-based Editing of Real Images", PTI).

A code alone cannot bring back a person the generator cannot draw: with stylegan2-utkface64 (FID 114.6, trained
on 2 CPU cores) every code-only inversion, NFE's 1000-step baseline included, reconstructs most CelebA photos as
someone else (bench/RESULTS.md). PTI keeps the inverted code as a *pivot* and fine-tunes the generator's
synthesis weights until the pivot's image is the picture; an edit then moves the pivot (pivot + alpha n) through
the tuned weights, and the edited face keeps the person.

Here: the pivot comes from :func:`facesteer.inversion.invert` (any method); each picture gets its own copy of
the generator (the original is never changed), tuned alone by Adam on its synthesis weights with the loss
mean squared error + LPIPS-VGG of the pivot's image against the picture (PTI's loss, without its locality
regulariser: bench/inversion.py measures what the tuned copies do to edits and to realism). LPIPS is summed over
its first three taps only (to relu3_3, :attr:`TuningRecipe.perceptual_taps`): on 24 CelebA photos, in consecutive
runs at 25 steps, that tuned 1.4x faster than the full LPIPS and kept the person for 21 photos rather than 19
(bench/RESULTS.md). Deterministic:
nothing random in the steps (the noise inputs are the generator's fixed ones).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch

from facesteer.errors import FacesteerError
from facesteer.generators.base import Generator
from facesteer.perceptual import LPIPS, TAPS


@dataclass(frozen=True)
class TuningRecipe:
    """How to tune a generator to one picture around its pivot.

    Attributes:
        steps: Adam steps on the weights.
        learning_rate: Adam's rate.
        perceptual: weight of LPIPS-VGG next to the mean squared error (0 = not computed).
        perceptual_taps: how many of LPIPS's five VGG taps (relu1_2 ... relu5_3) the loss sums. 3 stops at
            relu3_3: on 64-px pictures the deeper two see 8x8 and 4x4 maps yet cost about two thirds of the VGG's
            forward and backward pass (bench/RESULTS.md).

    The defaults are :data:`DEFAULT_TUNING`'s.
    """

    steps: int = 20
    learning_rate: float = 1e-2
    perceptual: float = 1.0
    perceptual_taps: int = 3

    def __post_init__(self) -> None:
        taps_ok = 1 <= self.perceptual_taps <= len(TAPS)
        if self.steps < 1 or self.learning_rate <= 0 or self.perceptual < 0 or not taps_ok:
            raise FacesteerError(f"tuning needs steps >= 1, a positive learning rate, a perceptual weight >= 0 and "
                                 f"1 to {len(TAPS)} LPIPS taps, got {self.steps}, {self.learning_rate}, "
                                 f"{self.perceptual} and {self.perceptual_taps}")  # fmt: skip


#: chosen on 24 CelebA photos with stylegan2-utkface64 (bench/inversion.py, method ``pti``; bench/RESULTS.md, "Pivotal
#: tuning with a truncated LPIPS"): 20 steps at 0.01 on MSE + LPIPS to relu3_3 kept the person through edits of
#: alpha 2 for 19-21 of 24 photos (the old 25 steps at 0.005 on the full LPIPS: 19), in under two thirds of the time;
#: on the first 72 photos for 60 (0.833)
DEFAULT_TUNING = TuningRecipe()


def tune_generator(
    generator: Generator,
    target: torch.Tensor,
    pivot: torch.Tensor,
    space: str,
    recipe: TuningRecipe = DEFAULT_TUNING,
    perceptual: LPIPS | None = None,
    after_step: Callable[[int, float], None] | None = None,
) -> tuple[Generator, list[float]]:
    """A copy of ``generator`` whose synthesis weights are tuned so that ``pivot`` draws ``target``.

    Args:
        generator: the generator (not changed).
        target: float32 (1, 3, R, R) in [-1, 1], the aligned picture.
        pivot: float32 (1, *space_shape(space)), its inverted code.
        space: the pivot's latent space.
        recipe: steps, rate and loss weights.
        perceptual: LPIPS (needed when ``recipe.perceptual > 0``).
        after_step: called with (steps done, that step's loss).

    Returns:
        The tuned copy (its weights frozen again) and the loss at each step.

    Raises:
        FacesteerError: shapes that do not match, a generator without tunable weights, no LPIPS when needed.
    """
    resolution = generator.resolution
    if target.ndim != 4 or tuple(target.shape) != (1, 3, resolution, resolution):
        raise FacesteerError(f"tuning takes one picture (1, 3, {resolution}, {resolution}), got {tuple(target.shape)}")
    generator.check_codes(pivot, space)
    if len(pivot) != 1:
        raise FacesteerError(f"tuning takes one pivot code, got {len(pivot)}")
    if recipe.perceptual > 0 and perceptual is None:
        raise FacesteerError("tuning with a perceptual weight needs LPIPS")
    tuned = copy.deepcopy(generator)
    weights = tuned.tunable_parameters()
    for weight in weights:
        weight.requires_grad_(True)
    # fused: one kernel per step for all the weights instead of a dozen small ops per tensor
    optimizer = torch.optim.Adam(weights, lr=recipe.learning_rate, fused=True)
    pivot = pivot.detach()
    with torch.no_grad():
        use_lpips = recipe.perceptual > 0 and perceptual is not None
        target_features = perceptual.tapped(target, recipe.perceptual_taps) if use_lpips else None
    losses = []
    for step in range(recipe.steps):
        image = tuned.synthesize_tensor(pivot, space)
        loss = (image - target).square().mean()
        if target_features is not None and perceptual is not None:
            loss = loss + recipe.perceptual * perceptual.distance_to(image, target_features).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if after_step is not None:
            after_step(step + 1, losses[-1])
    for weight in weights:
        weight.requires_grad_(False)
        weight.grad = None
    return tuned, losses
