"""A linear SVM solver: the same hyperplane as libsvm's ``SVC(kernel="linear")``, found much faster.

The problem (C-SVM with an unregularised intercept, labels y in {-1, +1})::

    minimise  0.5 * ||w||^2 + C * sum_i hinge(y_i * (w . x_i + b)),   hinge(m) = max(0, 1 - m)

libsvm solves its dual with SMO, whose cost grows with the number of support vectors: on noisy labels (the
InterFaceGAN case) that is most of the training set, and 14,000 samples take tens of seconds. Here the
primal is solved with Newton's method on a smoothed hinge (quadratic within ``h`` of the margin, linear
beyond it), continuing h down to 1e-3 so the solution converges to the hinge solution. In d dimensions each
Newton step solves a (d+1) x (d+1) system, so the cost hardly depends on how noisy the labels are.
"""

from __future__ import annotations

import numpy as np

SMOOTHINGS = (1.0, 0.1, 0.01, 0.001)


def _smoothed_hinge(margins: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Loss, first and second derivative of the smoothed hinge at each margin."""
    linear = margins <= 1 - h
    quadratic = (margins > 1 - h) & (margins < 1)
    loss = np.where(linear, 1 - margins - h / 2, np.where(quadratic, (1 - margins) ** 2 / (2 * h), 0.0))
    slope = np.where(linear, -1.0, np.where(quadratic, -(1 - margins) / h, 0.0))
    return loss, slope, quadratic


def fit_linear_svm(
    features: np.ndarray,
    labels: np.ndarray,
    c: float = 1.0,
    smoothings: tuple[float, ...] = SMOOTHINGS,
    max_steps: int = 200,
) -> tuple[np.ndarray, float]:
    """Fit a linear C-SVM with an unregularised intercept.

    Args:
        features: (n, d) samples.
        labels: (n,) binary labels (anything > 0 is the positive class).
        c: the SVM's C (libsvm's default is 1).
        smoothings: the continuation schedule of the hinge smoothing width h, last one is the final accuracy.
        max_steps: Newton steps per smoothing level at most.

    Returns:
        (w, b): weights (d,) float64 and intercept, so that ``features @ w + b > 0`` predicts positive.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.where(np.asarray(labels) > 0, 1.0, -1.0)
    n, d = x.shape
    signed = np.hstack([x, np.ones((n, 1))]) * y[:, None]  # margins = signed @ theta, theta = (w, b)
    penalty = np.ones(d + 1)
    penalty[-1] = 0.0  # the intercept is not regularised
    theta = np.zeros(d + 1)

    margins = signed @ theta
    for h in smoothings:

        def objective(point: np.ndarray, point_margins: np.ndarray, h: float = h) -> float:
            return 0.5 * float(np.sum(penalty * point * point)) + c * float(_smoothed_hinge(point_margins, h)[0].sum())

        value = objective(theta, margins)
        band = np.zeros(n, dtype=bool)  # samples on the quadratic part of the loss
        hessian = np.diag(penalty + 1e-10)
        for _ in range(max_steps):
            _, slope, quadratic = _smoothed_hinge(margins, h)
            gradient = penalty * theta + c * (signed.T @ slope)
            # The Hessian is diag(penalty) + (c/h) * sum over the band of a a^T. Between Newton steps only a
            # few samples enter or leave the band, so update it with those instead of recomputing it.
            entered, left = signed[quadratic & ~band], signed[band & ~quadratic]
            hessian += (c / h) * (entered.T @ entered - left.T @ left)
            band = quadratic
            step = np.linalg.solve(hessian, -gradient)
            decrease = float(gradient @ step)
            if -decrease <= 1e-12 * (1 + abs(value)):
                break
            # Backtracking line search (Armijo). Margins are linear along the step, so each trial costs O(n).
            step_margins = signed @ step
            size = 1.0
            while True:
                candidate_margins = margins + size * step_margins
                candidate = objective(theta + size * step, candidate_margins)
                if candidate <= value + 1e-4 * size * decrease or size < 1e-10:
                    break
                size /= 2
            theta = theta + size * step
            value, margins = candidate, candidate_margins
    return theta[:d], float(theta[d])
