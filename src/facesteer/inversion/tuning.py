"""Pivotal tuning (Roich et al. 2021, "Pivotal Tuning for Latent-based Editing of Real Images", PTI).

A code alone cannot bring back a person the generator cannot draw: with stylegan2-utkface64 (FID 114.6, trained
on 2 CPU cores) every code-only inversion, NFE's 1000-step baseline included, reconstructs most CelebA photos as
someone else (bench/RESULTS.md). PTI keeps the inverted code as a *pivot* and fine-tunes the generator's
synthesis weights until the pivot's image is the picture; an edit then moves the pivot (pivot + alpha n) through
the tuned weights, and the edited face keeps the person.

Here: the pivot comes from :func:`facesteer.inversion.invert` (any method); each picture gets its own copy of
the generator (the original is never changed), tuned alone by Adam on its synthesis weights with the loss mean
squared error + LPIPS-VGG of the pivot's image against the picture (PTI's loss). LPIPS is summed over its first
three taps only (to relu3_3, :attr:`TuningRecipe.perceptual_taps`): on 24 CelebA photos, in consecutive runs at
25 steps, that tuned 1.4x faster than the full LPIPS and kept the person for 21 photos rather than 19.

A variant of PTI's locality regulariser is :attr:`TuningRecipe.locality`, off by default: on 72 CelebA photos
it left the age edit's effect where it was (1.74 vs 1.75 years at alpha 2) in twice the time, and on 72 anime
pictures it raised hair blonde's change only from 0.145 to 0.153 (weight 0.1) or 0.171 (weight 1, LPIPS 0.306 ->
0.378), against 0.198 on random samples (bench/RESULTS.md). Deterministic: nothing random in the steps (the noise
inputs are the generator's fixed ones; the regulariser's codes come from its seed).
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
        locality: weight of a variant of PTI's locality regulariser (0 = none): at every step the tuned copy's
            image of a code halfway (:data:`LOCALITY_MIX`) between the pivot and a random code is pulled toward
            the original generator's image of it (the same MSE + LPIPS), meant to keep the tuning local to the
            pivot (measured: it does not make edits move the attribute as on random samples; bench/RESULTS.md).
        locality_seed: seed of the random codes (one per step).

    The defaults are :data:`DEFAULT_TUNING`'s.
    """

    steps: int = 20
    learning_rate: float = 1e-2
    perceptual: float = 1.0
    perceptual_taps: int = 3
    locality: float = 0.0
    locality_seed: int = 0

    def __post_init__(self) -> None:
        taps_ok = 1 <= self.perceptual_taps <= len(TAPS)
        if self.steps < 1 or self.learning_rate <= 0 or self.perceptual < 0 or not taps_ok:
            raise FacesteerError(f"tuning needs steps >= 1, a positive learning rate, a perceptual weight >= 0 and "
                                 f"1 to {len(TAPS)} LPIPS taps, got {self.steps}, {self.learning_rate}, "
                                 f"{self.perceptual} and {self.perceptual_taps}")  # fmt: skip
        if self.locality < 0 or self.locality_seed < 0:
            raise FacesteerError(f"the locality weight and its seed must be >= 0, got {self.locality} and "
                                 f"{self.locality_seed}")  # fmt: skip


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
        The tuned copy (its weights frozen again) and the loss at each step (with the regulariser's weighted term
        when ``recipe.locality`` > 0).

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
        neighbours = locality_targets(generator, pivot, space, recipe, perceptual if use_lpips else None)
    losses = []
    for step in range(recipe.steps):
        codes, targets, features = pivot, target, target_features
        if neighbours is not None:  # the pivot and this step's neighbour go through the copy as one batch of 2
            codes, targets, features = neighbours.with_pivot(step, pivot, target, target_features)
        images = tuned.synthesize_tensor(codes, space)
        per_image = (images - targets).square().mean(dim=(1, 2, 3))
        if features is not None and perceptual is not None:
            per_image = per_image + recipe.perceptual * perceptual.distance_to(images, features)
        loss = per_image.sum() if neighbours is None else (per_image * neighbours.loss_weights).sum()
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


@dataclass(frozen=True)
class LocalityTargets:
    """The locality regulariser, precomputed: one code per step near the pivot, and what the original generator
    draws there (images and their LPIPS features), for the tuned copy to keep drawing."""

    codes: torch.Tensor  # (steps, *space_shape)
    images: torch.Tensor  # (steps, 3, R, R)
    features: list[torch.Tensor] | None  # per tap (steps, C, H, W), or None without LPIPS
    loss_weights: torch.Tensor  # (2,): 1 for the pivot, the recipe's locality for the neighbour

    def with_pivot(
        self,
        step: int,
        pivot: torch.Tensor,
        target: torch.Tensor,
        target_features: list[torch.Tensor] | None,
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor] | None]:
        """Codes, targets and target features of step ``step``'s batch of two (the pivot, then its neighbour)."""
        at = slice(step, step + 1)
        features = None
        if target_features is not None and self.features is not None:
            features = [torch.cat([t, n[at]]) for t, n in zip(target_features, self.features, strict=True)]
        return torch.cat([pivot, self.codes[at]]), torch.cat([target, self.images[at]]), features


#: where each locality code lies between the pivot (0) and its random code (1); Roich et al. step a fixed distance
#: (30) toward it instead, in W of 512 dimensions
LOCALITY_MIX = 0.5
#: neighbours drawn (and passed through LPIPS's VGG) at once while the targets are precomputed
LOCALITY_CHUNK = 32


def locality_targets(
    generator: Generator, pivot: torch.Tensor, space: str, recipe: TuningRecipe, perceptual: LPIPS | None
) -> LocalityTargets | None:
    """The locality regulariser's codes and the original ``generator``'s images of them (None when
    ``recipe.locality`` is 0): code i is halfway (:data:`LOCALITY_MIX`) from ``pivot`` to a random code of
    ``space`` (z row i of ``recipe.locality_seed``, mapped). Held for the whole tuning: about 2 MB per step at
    64 px with LPIPS to relu3_3."""
    if recipe.locality == 0:
        return None
    random_codes = generator.map(generator.sample_z(recipe.steps, recipe.locality_seed), space)
    codes = pivot + LOCALITY_MIX * (torch.from_numpy(random_codes).to(pivot.device) - pivot)
    images, features = [], []
    for chunk in torch.split(codes, LOCALITY_CHUNK):
        images.append(generator.synthesize_tensor(chunk, space))
        if perceptual is not None:
            features.append(perceptual.tapped(images[-1], recipe.perceptual_taps))
    tapped = [torch.cat(per_tap) for per_tap in zip(*features, strict=True)] if features else None
    loss_weights = torch.tensor([1.0, recipe.locality], device=pivot.device)
    return LocalityTargets(codes, torch.cat(images), tapped, loss_weights)
