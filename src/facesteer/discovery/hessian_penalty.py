"""The Hessian penalty (Peebles et al., ECCV 2020): push a function's Hessian toward diagonal.

For an output element y(z) with Hessian H, and v a Rademacher vector (entries +-1), the second directional
derivative v^T H v = sum_i H_ii + sum_{i != j} H_ij v_i v_j. Its diagonal part does not depend on v, so its
variance over v is Var(v^T H v) = 2 sum_{i != j} H_ij^2: zero exactly when the Hessian is diagonal, that is when
each input coordinate changes the output independently of the others. As wpeebles/hessian_penalty does it:

1. draw k Rademacher vectors v_1..v_k and set x = epsilon * v;
2. second directional derivatives by central differences, D = (G(z + x) - 2 G(z) + G(z - x)) / epsilon^2
   (exact for polynomials of degree <= 3 along the line);
3. the unbiased variance of D over the k draws, per output element;
4. reduce over all elements (and the batch) with max (the reference's default) or mean.

The k draws run as one batch through G (1 + 2k times the batch size) instead of 2k + 1 separate calls; G must be
deterministic (fix any noise inside it), and the penalty scales as 1 / epsilon^4 in units of G's output.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from facesteer.errors import FacesteerError

REDUCTIONS = ("max", "mean")


def rademacher(shape: tuple[int, ...], generator: torch.Generator | None = None) -> torch.Tensor:
    """A float32 tensor of independent +-1 entries, each with probability 1/2."""
    return torch.randint(0, 2, shape, generator=generator).float() * 2 - 1


def perturbed_outputs(
    function: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor, offsets: torch.Tensor, center: bool = True
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """G(z), G(z + x_i), G(z - x_i) for k offsets x (k, N, ...), in one call of G on (1 + 2k) N inputs
    (2k N without ``center``, when only first differences are wanted).

    Returns:
        (G(z) (N, ...) or None, G(z + x) (k, N, ...), G(z - x) (k, N, ...)).
    """
    k, batch = offsets.shape[0], z.shape[0]
    if offsets.shape[1:] != z.shape:
        raise FacesteerError(f"offsets must have shape (k, {', '.join(map(str, z.shape))}), got {tuple(offsets.shape)}")
    moved = [(z.unsqueeze(0) + offsets).flatten(0, 1), (z.unsqueeze(0) - offsets).flatten(0, 1)]
    inputs = torch.cat([z, *moved] if center else moved)
    outputs = function(inputs)
    if outputs.shape[0] != inputs.shape[0]:
        raise FacesteerError(f"G returned {outputs.shape[0]} outputs for {inputs.shape[0]} inputs")
    first = batch if center else 0
    plus = outputs[first : first + batch * k].unflatten(0, (k, batch))
    minus = outputs[first + batch * k :].unflatten(0, (k, batch))
    return (outputs[:batch] if center else None), plus, minus


def _check(z: torch.Tensor, k: int, epsilon: float, reduction: str) -> None:
    if k < 2:
        raise FacesteerError(f"k must be >= 2 (a variance needs two draws), got {k}")
    if not epsilon > 0:
        raise FacesteerError(f"epsilon must be > 0, got {epsilon}")
    if reduction not in REDUCTIONS:
        raise FacesteerError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    if z.ndim < 2 or z.shape[0] == 0:
        raise FacesteerError(f"z must be a batch (N, ...) with N >= 1, got shape {tuple(z.shape)}")


def draw_offsets(
    z: torch.Tensor, k: int, epsilon: float, reduction: str, generator: torch.Generator | None
) -> torch.Tensor:
    """Check the arguments, then the k offsets x = epsilon * v (k, N, ...) of Rademacher v, on z's device."""
    _check(z, k, epsilon, reduction)
    return epsilon * rademacher((k, *z.shape), generator).to(z.device, z.dtype)


def reduce_over(values: torch.Tensor, reduction: str) -> torch.Tensor:
    """``"max"`` or ``"mean"`` of every entry."""
    return values.max() if reduction == "max" else values.mean()


def hessian_penalty(
    G: Callable[[torch.Tensor], torch.Tensor],  # noqa: N803 (the reference's name)
    z: torch.Tensor,
    k: int = 2,
    epsilon: float = 0.1,
    reduction: str = "max",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Estimate of 2 sum_{i != j} H_ij^2 of G at z, reduced over output elements and the batch.

    Args:
        G: a deterministic, differentiable function of a batch (N, ...) -> (N, ...).
        z: (N, ...) where the Hessian is taken (the penalty is differentiable in G's parameters and in z).
        k: Rademacher draws, >= 2.
        epsilon: finite-difference step.
        reduction: ``"max"`` or ``"mean"`` over output elements and the batch.
        generator: seeds the draws (same generator state, same penalty).

    Returns:
        scalar tensor.
    """
    center, plus, minus = perturbed_outputs(G, z, draw_offsets(z, k, epsilon, reduction, generator))
    second = (plus - 2 * center.unsqueeze(0) + minus) / epsilon**2  # (k, N, ...)
    return reduce_over(second.var(dim=0, unbiased=True), reduction)


def hessian_penalty_unbatched(
    G: Callable[[torch.Tensor], torch.Tensor],  # noqa: N803
    z: torch.Tensor,
    k: int = 2,
    epsilon: float = 0.1,
    reduction: str = "max",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The reference's loop, 2k + 1 separate calls of G: the baseline ``bench/discovery.py`` times (the same
    draws and the same value as :func:`hessian_penalty`)."""
    offsets = draw_offsets(z, k, epsilon, reduction, generator)
    center = G(z)
    second = torch.stack([(G(z + x) - 2 * center + G(z - x)) / epsilon**2 for x in offsets])
    return reduce_over(second.var(dim=0, unbiased=True), reduction)
