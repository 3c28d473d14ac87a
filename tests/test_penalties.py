"""The Hessian penalty and OroJaR on functions whose Hessian or Jacobian is known in closed form.

Both estimate 2 * sum_{i != j} M_ij^2 (M = the Hessian for the Hessian penalty, J^T J for OroJaR) as the variance
over Rademacher draws v of v^T M v. Derivations used below:

- separable f(z) = sum_i z_i^2 (per element, z^2): H diagonal, so v^T H v = trace H for every v: penalty 0.
- f(z) = z0 * z1: H_01 = H_10 = 1, v^T H v = 2 v0 v1 = +-2 with equal odds: variance 4 = 2 * (1 + 1).
- f(z) = z0^2 * z1: H_01 = H_10 = 2 z0: 2 * 2 * (2 z0)^2 = 16 z0^2 (the central difference is exact for cubics).
- G(z) = (z0, z1): J = I, J^T J = I: |J v|^2 = 2 for every v: OroJaR 0.
- G(z) = z0 + z1: J = [1, 1], off-diagonal of J^T J = 1: |J v|^2 = (v0 + v1)^2 in {0, 4}: variance 4.
- G(z) = z0 * z1: J = [z1, z0], J_0 . J_1 = z0 z1: 2 * 2 * (z0 z1)^2 = 4 z0^2 z1^2.
"""

from __future__ import annotations

import pytest
import torch

from facesteer.discovery import hessian_penalty, orojar_penalty
from facesteer.discovery.hessian_penalty import hessian_penalty_unbatched
from facesteer.errors import FacesteerError

DRAWS = 20_000  # many draws: the unbiased variance then sits within a few percent of its expectation


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_hessian_penalty_is_exactly_zero_for_a_separable_function():
    z = torch.randn(5, 6, generator=seeded(1), dtype=torch.float64)
    assert hessian_penalty(lambda x: x**2, z, k=8, generator=seeded()).item() == pytest.approx(0.0, abs=1e-9)
    summed = hessian_penalty(lambda x: (x**2).sum(1, keepdim=True), z, k=8, generator=seeded())
    assert summed.item() == pytest.approx(0.0, abs=1e-9)


def test_hessian_penalty_of_a_product_is_four():
    z = torch.randn(3, 2, generator=seeded(2), dtype=torch.float64)
    penalty = hessian_penalty(lambda x: x[:, :1] * x[:, 1:], z, k=DRAWS, reduction="mean", generator=seeded())
    assert penalty.item() == pytest.approx(4.0, rel=0.03)


@pytest.mark.parametrize("z0", [-1.5, 0.5, 2.0])
def test_hessian_penalty_of_a_cubic_is_sixteen_z0_squared(z0):
    z = torch.tensor([[z0, 0.7, -0.3]], dtype=torch.float64)
    function = lambda x: x[:, :1] ** 2 * x[:, 1:2] + x[:, 2:] ** 3  # noqa: E731 (z2^3 is separable: adds nothing)
    penalty = hessian_penalty(function, z, k=DRAWS, generator=seeded())
    assert penalty.item() == pytest.approx(16 * z0**2, rel=0.03)


def test_the_variance_over_draws_is_unbiased():
    # f = z0 z1: each draw gives D = 2 v0 v1 = +-2; two draws that differ, {2, -2}, have unbiased variance 8
    # (the biased estimate would be 4)
    z = torch.zeros(1, 2, dtype=torch.float64)
    draws = [hessian_penalty(lambda x: x[:, :1] * x[:, 1:], z, k=2, generator=seeded(s)).item() for s in range(20)]
    assert {round(value, 6) for value in draws} == {0.0, 8.0}


def test_max_and_mean_reduce_over_output_elements():
    z = torch.zeros(1, 3, dtype=torch.float64)
    # element 0: z0 z1 (penalty 4); element 1: 3 z1 z2 (2 * 2 * 9 = 36); element 2: separable (0)
    function = lambda x: torch.stack([x[:, 0] * x[:, 1], 3 * x[:, 1] * x[:, 2], x[:, 0] ** 2], dim=1)  # noqa: E731
    largest = hessian_penalty(function, z, k=DRAWS, reduction="max", generator=seeded()).item()
    mean = hessian_penalty(function, z, k=DRAWS, reduction="mean", generator=seeded()).item()
    assert largest == pytest.approx(36, rel=0.03)
    assert mean == pytest.approx((4 + 36 + 0) / 3, rel=0.03)


def test_the_batched_penalty_equals_the_unbatched_reference_loop():
    weights = torch.randn(4, 6, generator=seeded(3), dtype=torch.float64)
    function = lambda x: torch.tanh(x @ weights) * (x[:, :1] ** 2)  # noqa: E731
    z = torch.randn(7, 4, generator=seeded(4), dtype=torch.float64)
    batched = hessian_penalty(function, z, k=3, generator=seeded(5))
    reference = hessian_penalty_unbatched(function, z, k=3, generator=seeded(5))
    assert batched.item() == pytest.approx(reference.item(), rel=1e-9)


def test_the_penalty_is_differentiable_and_seeded():
    scale = torch.tensor(2.0, requires_grad=True)
    z = torch.randn(4, 2, generator=seeded(6))
    penalty = hessian_penalty(lambda x: scale * x[:, :1] * x[:, 1:], z, k=4, generator=seeded(7))
    penalty.backward()
    assert scale.grad is not None and scale.grad.item() > 0  # 2 * 2 * scale^2 grows with scale
    again = hessian_penalty(lambda x: scale * x[:, :1] * x[:, 1:], z, k=4, generator=seeded(7))
    assert again.item() == penalty.item()


def test_orojar_is_exactly_zero_for_orthogonal_jacobian_columns():
    z = torch.randn(4, 2, generator=seeded(8), dtype=torch.float64)
    assert orojar_penalty(lambda x: x.clone(), z, k=8, generator=seeded()).item() == pytest.approx(0.0, abs=1e-9)
    rotation = torch.linalg.qr(torch.randn(5, 5, generator=seeded(9), dtype=torch.float64))[0]
    z = torch.randn(3, 5, generator=seeded(10), dtype=torch.float64)
    penalty = orojar_penalty(lambda x: 2 * x @ rotation, z, k=8, generator=seeded())
    assert penalty.item() == pytest.approx(0.0, abs=1e-8)


def test_orojar_of_a_sum_is_four():
    z = torch.randn(3, 2, generator=seeded(11), dtype=torch.float64)
    penalty = orojar_penalty(lambda x: x.sum(1, keepdim=True), z, k=DRAWS, generator=seeded())
    assert penalty.item() == pytest.approx(4.0, rel=0.03)


@pytest.mark.parametrize(("z0", "z1"), [(1.0, 1.0), (2.0, -0.5), (-1.5, 1.5)])
def test_orojar_of_a_product_is_four_z0_squared_z1_squared(z0, z1):
    z = torch.tensor([[z0, z1]], dtype=torch.float64)
    penalty = orojar_penalty(lambda x: x[:, :1] * x[:, 1:], z, k=DRAWS, generator=seeded())
    assert penalty.item() == pytest.approx(4 * z0**2 * z1**2, rel=0.03)


@pytest.mark.parametrize("penalty", [hessian_penalty, orojar_penalty])
def test_degenerate_arguments_are_refused(penalty):
    z = torch.zeros(2, 3)
    for kwargs, message in [({"k": 1}, "k must be >= 2"), ({"epsilon": 0.0}, "epsilon must be > 0"),
                            ({"reduction": "sum"}, "reduction must be one of")]:  # fmt: skip
        with pytest.raises(FacesteerError, match=message):
            penalty(lambda x: x, z, **kwargs)
    with pytest.raises(FacesteerError, match="returned 1 outputs"):
        penalty(lambda x: x[:1], z)
