"""fit_linear_svm against libsvm (sklearn's ``SVC(kernel="linear")``, C = 1) on the primal hinge objective.

libsvm's default stopping tolerance (1e-3 on the dual gradient) leaves its primal objective 1e-5 to 2e-4
(relative) above the optimum on these data, so the reference is fit with ``tol=1e-8`` (then within ~3e-8).
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from scipy.optimize import lsq_linear
from sklearn.svm import SVC

import facesteer.svm
from facesteer.svm import fit_linear_svm

BALANCES = [(701, 699), (700, 700), (900, 500), (1000, 400)]


def hinge_objective(x: np.ndarray, y: np.ndarray, w: np.ndarray, b: float, c: float = 1.0) -> float:
    """The C-SVM primal: 0.5 ||w||^2 + C * sum_i max(0, 1 - y_i (w . x_i + b)), labels y in {-1, +1}."""
    return 0.5 * float(w @ w) + c * float(np.maximum(0.0, 1.0 - y * (x @ w + b)).sum())


def smoothed_objective(x: np.ndarray, y: np.ndarray, w: np.ndarray, b: float, h: float) -> float:
    """The same with the hinge smoothed within h of the margin (what the solver's Newton steps minimise)."""
    margins = y * (x @ w + b)
    loss = np.where(margins <= 1 - h, 1 - margins - h / 2, np.where(margins < 1, (1 - margins) ** 2 / (2 * h), 0.0))
    return 0.5 * float(w @ w) + float(loss.sum())


def labelled_by_rank(x: np.ndarray, scores: np.ndarray, positive: int) -> np.ndarray:
    """Labels +1 for the ``positive`` highest scores, -1 for the rest."""
    y = -np.ones(len(x))
    y[np.argsort(scores)[len(x) - positive :]] = 1.0
    return y


def random_labels(positive: int, negative: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian points with labels drawn at random: not separable, most samples end up support vectors."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((positive + negative, dim))
    y = np.r_[np.ones(positive), -np.ones(negative)]
    rng.shuffle(y)
    return x, y


def noisy_labels(positive: int, negative: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels from a random hyperplane plus noise of the same size (InterFaceGAN-like): not separable."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((positive + negative, dim))
    direction = rng.standard_normal(dim) / np.sqrt(dim)
    return x, labelled_by_rank(x, x @ direction + rng.standard_normal(len(x)), positive)


def separable(positive: int, negative: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian points labelled by a random hyperplane, its offset placed so the classes have the given sizes."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((positive + negative, dim))
    return x, labelled_by_rank(x, x @ rng.standard_normal(dim), positive)


def libsvm(x: np.ndarray, y: np.ndarray, tol: float = 1e-8) -> tuple[np.ndarray, float]:
    reference = SVC(kernel="linear", C=1.0, tol=tol).fit(x, y)
    return reference.coef_[0], float(reference.intercept_[0])


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def assert_matches_libsvm(x: np.ndarray, y: np.ndarray) -> None:
    w, b = fit_linear_svm(x, y)
    reference_w, reference_b = libsvm(x, y)
    ours, reference = hinge_objective(x, y, w, b), hinge_objective(x, y, reference_w, reference_b)
    assert abs(ours - reference) <= 1e-6 * reference, f"objective {ours!r} vs libsvm's {reference!r}"
    assert cosine(w, reference_w) >= 0.9999


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("positive", "negative"), BALANCES)
@pytest.mark.parametrize("make", [noisy_labels, separable])
def test_matches_libsvm(make, positive, negative, seed):
    x, y = make(positive, negative, dim=20, seed=seed)
    assert_matches_libsvm(x, y)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("positive", "negative"), [(701, 699), (700, 700)])
def test_matches_libsvm_on_random_labels(positive, negative, seed):
    assert_matches_libsvm(*random_labels(positive, negative, dim=20, seed=seed))


def test_matches_libsvm_on_the_reported_case():
    """The review's reproduction: 1,400 points in d = 100, random labels, 701 positive / 699 negative."""
    assert_matches_libsvm(*random_labels(701, 699, dim=100, seed=0))


@pytest.mark.parametrize(
    ("positive", "negative", "seed", "dim"),
    [(900, 500, 0, 20), (900, 500, 1, 20), (1000, 400, 0, 20), (1000, 400, 1, 20), (900, 500, 0, 100)],
)
def test_random_labels_with_unequal_classes_give_the_trivial_solution(positive, negative, seed, dim):
    """With uninformative features and more positives, the optimum is w = 0, b = 1 (objective 2 * negatives).

    (libsvm with tol=1e-8 does not finish on these: every positive sits on the margin.) The optimum is proven
    here by a dual point of the same value: alpha = 1 on the negatives and alpha in [0, 1] on the positives
    with sum alpha_i = negatives and sum alpha_i x_i = sum of the negatives' x (a bounded least-squares fit
    with zero residual), so that sum alpha_i y_i x_i = 0 and D(alpha) = sum alpha = 2 * negatives.
    """
    x, y = random_labels(positive, negative, dim=dim, seed=seed)
    pos, neg = x[y > 0], x[y < 0]
    fit = lsq_linear(np.vstack([pos.T, np.ones(len(pos))]), np.r_[neg.sum(axis=0), len(neg)], bounds=(0, 1))
    assert fit.cost <= 1e-16  # the dual point exists, so min P = 2 * negatives
    optimum = 2.0 * negative

    w, b = fit_linear_svm(x, y)
    assert hinge_objective(x, y, w, b) <= optimum * (1 + 1e-9)
    assert np.linalg.norm(w) <= 1e-6 and b == pytest.approx(1.0, abs=1e-6)
    assert hinge_objective(x, y, w, b) <= hinge_objective(x, y, *libsvm(x, y, tol=1e-3))


@pytest.mark.parametrize(("positive", "negative", "most_steps"), [(701, 699, 4), (1000, 400, 2)])
def test_newton_steps_never_increase_the_objective(positive, negative, most_steps):
    """Stopping after k Newton steps at h = 1 must give a smoothed objective that does not grow with k.

    From (w, b) = 0 every margin is 0, on the linear part of the h = 1 hinge, so the Hessian has no curvature
    along the intercept: the first Newton step is huge, and a line search that gives up and takes the step
    anyway lands far above the starting objective C * n / 2. (k stays below the steps the level needs to
    converge: after that the solver returns the best candidate for the true hinge, not the smoothed one.)
    """
    x, y = random_labels(positive, negative, dim=20, seed=0)
    values = [0.5 * len(y)]  # the objective at the starting point (w, b) = 0
    for steps in range(1, most_steps + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # not converged, so not certified: that is expected
            w, b = fit_linear_svm(x, y, smoothings=(1.0,), max_steps=steps)
        values.append(smoothed_objective(x, y, w, b, h=1.0))
    assert all(later <= earlier * (1 + 1e-12) for earlier, later in itertools.pairwise(values)), values


def test_an_increasing_step_is_refused(monkeypatch):
    """If a line search ever returned a step that raises the objective, the solver stops with an error."""
    monkeypatch.setattr(facesteer.svm, "_line_minimum", lambda *args: 1e6)
    x, y = noisy_labels(700, 700, dim=20, seed=0)
    with pytest.raises(ArithmeticError, match="raised the smoothed objective"):
        fit_linear_svm(x, y)


@pytest.mark.parametrize("seed", range(6))
def test_line_minimum_is_exact(seed):
    """_line_minimum against a fine search of the piecewise-quadratic objective along the line."""
    rng = np.random.default_rng(seed)
    h, c, n = [1.0, 0.1, 1e-3][seed % 3], 1.0, 200
    signed = np.hstack([rng.standard_normal((n, 5)), np.ones((n, 1))]) * rng.choice([-1.0, 1.0], n)[:, None]
    penalty = np.r_[np.ones(5), 0.0]
    theta = 0.3 * rng.standard_normal(6)
    step = rng.standard_normal(6)
    if seed >= 3:
        step[:5] *= 1e-10  # a step that is almost all intercept, as when the band is empty

    def phi(s: float) -> float:
        point = theta + s * step
        margins = signed @ point
        loss = np.where(margins <= 1 - h, 1 - margins - h / 2, np.where(margins < 1, (1 - margins) ** 2 / (2 * h), 0))
        return 0.5 * float(penalty @ (point * point)) + c * float(loss.sum())

    margins, step_margins = signed @ theta, signed @ step
    offset, curvature = float(penalty @ (theta * step)), float(penalty @ (step * step))
    slopes = np.where(margins <= 1 - h, -1.0, np.where(margins < 1, -(1 - margins) / h, 0.0))
    if offset + c * float(slopes @ step_margins) > 0:  # make p a descent direction
        step, step_margins, offset = -step, -step_margins, -offset
    size = facesteer.svm._line_minimum(margins, step_margins, offset, curvature, c, h)

    assert size > 0 and phi(size) < phi(0.0)
    scale = 10.0 ** np.ceil(np.log10(size))
    grid = np.linspace(0.0, 10 * scale, 20001)
    assert phi(size) <= min(phi(s) for s in grid) + 1e-12 * abs(phi(size))
    assert phi(size) <= min(phi(size * (1 - 1e-6)), phi(size * (1 + 1e-6)))


def test_one_class_is_refused():
    with pytest.raises(ValueError, match="both classes"):
        fit_linear_svm(np.zeros((5, 2)), np.ones(5))


def test_an_uncertified_result_warns():
    x, y = noisy_labels(700, 700, dim=20, seed=0)
    with pytest.warns(RuntimeWarning, match="duality gap"):
        fit_linear_svm(x, y, smoothings=(1.0,))
