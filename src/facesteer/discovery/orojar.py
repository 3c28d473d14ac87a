"""OroJaR, the orthogonal Jacobian regulariser (Wei et al., ICCV 2021): the DTH variant DTJ's stage-2 penalty.

A latent coordinate i changes the output along the Jacobian column J_i; OroJaR asks the columns to be mutually
orthogonal, penalising sum_{i != j} (J_i . J_j)^2, the off-diagonal of J^T J (the dot product runs over every
output element). Without the full Jacobian: for a Rademacher v, |J v|^2 = v^T (J^T J) v, whose variance over v
is 2 sum_{i != j} (J_i . J_j)^2, the same estimator the Hessian penalty applies to the Hessian:

1. draw k Rademacher vectors v and set x = epsilon * v;
2. directional derivatives by central differences, J v = (G(z + x) - G(z - x)) / (2 epsilon) (exact for
   polynomials of degree <= 2 along the line);
3. q = |J v|^2, summed over the output elements of each sample;
4. the unbiased variance of q over the k draws, averaged (``"mean"``) or maxed over the batch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from facesteer.discovery.hessian_penalty import draw_offsets, perturbed_outputs, reduce_over


def orojar_penalty(
    G: Callable[[torch.Tensor], torch.Tensor],  # noqa: N803 (as hessian_penalty)
    z: torch.Tensor,
    k: int = 2,
    epsilon: float = 0.1,
    reduction: str = "mean",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Estimate of 2 sum_{i != j} (J_i . J_j)^2 of G at z (J: the Jacobian of one sample's whole output).

    Args and return as :func:`~facesteer.discovery.hessian_penalty.hessian_penalty`; the reduction runs over the
    batch only (the Jacobian products already sum over output elements).
    """
    _, plus, minus = perturbed_outputs(G, z, draw_offsets(z, k, epsilon, reduction, generator), center=False)
    first = (plus - minus) / (2 * epsilon)  # (k, N, ...)
    energy = first.flatten(2).square().sum(dim=2)  # (k, N)
    return reduce_over(energy.var(dim=0, unbiased=True), reduction)
