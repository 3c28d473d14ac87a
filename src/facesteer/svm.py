"""A linear SVM solver: the same hyperplane as libsvm's ``SVC(kernel="linear")``, found much faster.

The problem (C-SVM with an unregularised intercept, labels y in {-1, +1})::

    minimise  P(w, b) = 0.5 * ||w||^2 + C * sum_i hinge(y_i * (w . x_i + b)),   hinge(m) = max(0, 1 - m)

libsvm solves its dual with SMO, whose cost grows with the number of support vectors: on noisy labels (the
InterFaceGAN case) that is most of the training set, and 14,000 samples take tens of seconds. Here the
primal is solved in three parts:

1. Newton's method on a smoothed hinge (quadratic within ``h`` of the margin, linear beyond it), with h
   continued down from 1 by factors of 10. In d dimensions each Newton step solves a (d+1) x (d+1) system,
   so the cost hardly depends on how noisy the labels are. Each step is followed by an *exact* line
   search: along a line the smoothed objective is a convex piecewise quadratic, minimised exactly by
   walking its sorted breakpoints, so every step lowers the objective (a step that does not is refused
   with an error). This matters for the intercept, which has no curvature at all while no sample lies in
   the quadratic band (at the start every margin is 0, on the linear part of the h = 1 hinge; later levels
   can start with an empty band too): the Newton step is then a huge move of b, which the exact search
   scales to the best intercept along it, where a backtracking search finds no decrease at all. Each level
   starts from a prediction of its solution (the last level's split of the samples held, solved at the
   new h) when that is better than the last level's solution.
2. After each level, a polish: if the samples in the band are the hinge solution's margin support vectors
   (0 < alpha < C), the hinge solution solves a linear system (the KKT conditions with those samples held
   exactly at margin 1, the samples below the band at alpha = C, those above at 0). This also covers the
   degenerate case of more margin samples than dimensions (e.g. w = 0 when the features say nothing about
   unbalanced labels), which no amount of smoothing reaches exactly.
3. A certificate: every candidate gives dual variables alpha (from the smoothed loss's slopes, or the
   polish's multipliers, clipped to [0, C] and rescaled so that sum alpha_i y_i = 0), whose dual objective
   D(alpha) = sum alpha - 0.5 ||sum alpha_i y_i x_i||^2 is a lower bound on the optimum. The solver returns
   the candidate with the lowest P once P - max D <= tolerance * P (1e-9), typically after 1 to 6 levels,
   through the polish. If the schedule (down to h = 1e-10) ends first, a RuntimeWarning gives the gap.

Since P is 1-strongly convex in w, a certified relative gap eps also bounds ||w - w*||^2 <= 2 eps P.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

SMOOTHINGS = tuple(10.0**-k for k in range(11))  # 1, 0.1, ..., 1e-10; the solver stops once certified
TOLERANCE = 1e-9  # relative duality gap at which the solution is accepted
RIDGE = 1e-10  # added to the Newton Hessian's diagonal, so it stays invertible while the band is empty


def _smoothed_hinge(margins: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Loss, first derivative and the quadratic-band mask of the smoothed hinge at each margin.

    loss(m) = 1 - m - h/2 for m <= 1 - h (linear part), (1 - m)^2 / (2h) for 1 - h < m < 1 (the band),
    0 for m >= 1. It is continuously differentiable, with second derivative 1/h in the band, 0 elsewhere.
    """
    linear = margins <= 1 - h
    band = (margins > 1 - h) & (margins < 1)
    loss = np.where(linear, 1 - margins - h / 2, np.where(band, (1 - margins) ** 2 / (2 * h), 0.0))
    slope = np.where(linear, -1.0, np.where(band, -(1 - margins) / h, 0.0))
    return loss, slope, band


def _line_minimum(
    margins: np.ndarray, step_margins: np.ndarray, offset: float, curvature: float, c: float, h: float
) -> float:
    """The exact minimiser s >= 0 of phi(s) = objective(theta + s p) for the smoothed objective.

    With penalty matrix Pen, margins m_i = a_i . theta and q_i = a_i . p, phi(s) = 0.5 (theta + s p)' Pen
    (theta + s p) + c sum_i loss(m_i + s q_i), so::

        phi'(s)  = offset + s curvature + c sum_i loss'(m_i + s q_i) q_i,   offset = theta' Pen p,
        phi''(s) = curvature + (c / h) * sum over the samples in the band at s of q_i^2,  curvature = p' Pen p.

    phi' is continuous, non-decreasing and piecewise linear, with breakpoints where a margin enters or leaves
    the band (m_i + s q_i = 1 - h or 1). Walking the sorted breakpoints finds the piece where phi' crosses 0;
    on that piece phi' is recomputed from the samples' sides and solved exactly.

    Args:
        margins: (n,) margins at theta.
        step_margins: (n,) q = change of the margins per unit of s.
        offset, curvature: theta' Pen p and p' Pen p.
        c, h: the SVM's C and the smoothing width.

    Raises:
        ArithmeticError: phi' does not start negative (p is not a descent direction), or never reaches 0.
    """
    _, slope, _ = _smoothed_hinge(margins, h)
    derivative_at_zero = offset + c * float(slope @ step_margins)
    if not derivative_at_zero < 0:
        raise ArithmeticError(f"line search along a non-descent direction (phi'(0) = {derivative_at_zero})")

    # When each sample is in the band: between its two breakpoints (in either order, depending on sign(q)).
    moving = step_margins != 0
    m, q = margins[moving], step_margins[moving]
    reach_lower, reach_upper = (1 - h - m) / q, (1 - m) / q
    enter, leave = np.minimum(reach_lower, reach_upper), np.maximum(reach_lower, reach_upper)
    weight = (c / h) * q * q  # the sample's contribution to phi'' while it is in the band

    # phi'' on [0, first breakpoint), then its jumps at the breakpoints ahead, in order.
    in_band_now = (enter <= 0) & (leave > 0)
    start_curvature = curvature + float(weight[in_band_now].sum())
    ahead_enter, ahead_leave = (enter > 0) & (enter < np.inf), (leave > 0) & (leave < np.inf)
    knots = np.concatenate([enter[ahead_enter], leave[ahead_leave]])
    jumps = np.concatenate([weight[ahead_enter], -weight[ahead_leave]])
    order = np.argsort(knots, kind="stable")
    knots, jumps = knots[order], jumps[order]
    curvatures = start_curvature + np.concatenate([[0.0], np.cumsum(jumps)])  # on each piece, len(knots) + 1
    derivative_at_knots = derivative_at_zero + np.cumsum(curvatures[:-1] * np.diff(np.concatenate([[0.0], knots])))

    # The piece [knots[k-1], knots[k]) on which phi' crosses zero (k = len(knots): past the last breakpoint).
    crossed = np.flatnonzero(derivative_at_knots >= 0)
    piece = int(crossed[0]) if len(crossed) else len(knots)
    lo = 0.0 if piece == 0 else float(knots[piece - 1])
    hi = float(knots[piece]) if piece < len(knots) else np.inf

    # Recompute phi' on that piece exactly, phi'(s) = base + s * rate, from the samples' sides there.
    probe = margins + (lo + (hi - lo) / 2 if np.isfinite(hi) else lo + 1.0) * step_margins
    _, _, band = _smoothed_hinge(probe, h)
    linear = probe <= 1 - h
    base = offset - c * float(step_margins[linear].sum())
    base -= (c / h) * float(((1 - margins[band]) * step_margins[band]).sum())
    rate = curvature + (c / h) * float(step_margins[band] @ step_margins[band])
    if not rate > 0:  # phi' is constant on the piece, so it is 0 there (or rounding misled the walk)
        if lo > 0:
            return lo
        raise ArithmeticError("the objective has no minimum along the Newton direction")
    return float(np.clip(-base / rate, lo, hi))


@dataclass
class _Problem:
    """The SVM in (d+1)-dimensional form: theta = (w, b), margins = signed @ theta, penalty = (1, ..., 1, 0)."""

    signed: np.ndarray  # (n, d+1): rows a_i = y_i * (x_i, 1)
    positive: np.ndarray  # (n,) bool, y_i > 0
    penalty: np.ndarray  # (d+1,) the regulariser's diagonal: the intercept is not regularised
    c: float

    def smoothed(self, theta: np.ndarray, margins: np.ndarray, h: float) -> float:
        return 0.5 * float(self.penalty @ (theta * theta)) + self.c * float(_smoothed_hinge(margins, h)[0].sum())

    def primal(self, theta: np.ndarray, margins: np.ndarray) -> float:
        """The true hinge objective P(w, b)."""
        return 0.5 * float(self.penalty @ (theta * theta)) + self.c * float(np.maximum(0.0, 1 - margins).sum())

    def dual(self, alpha: np.ndarray) -> float:
        """A lower bound on min P: the dual objective at alpha, made feasible first.

        Feasible means 0 <= alpha_i <= C and sum_i alpha_i y_i = 0: alpha is clipped to the box, then the class
        with the larger total is scaled down to the other's total (which keeps it in the box). By weak duality
        D(alpha) = sum_i alpha_i - 0.5 ||sum_i alpha_i y_i x_i||^2 <= P(w, b) for every (w, b).
        """
        alpha = np.clip(alpha, 0.0, self.c)
        positive_total, negative_total = float(alpha[self.positive].sum()), float(alpha[~self.positive].sum())
        if positive_total > negative_total:
            alpha[self.positive] *= negative_total / positive_total
        elif negative_total > positive_total:
            alpha[~self.positive] *= positive_total / negative_total
        weights = (self.signed.T @ alpha)[:-1]  # sum_i alpha_i y_i x_i
        return float(alpha.sum()) - 0.5 * float(weights @ weights)


def _newton(
    problem: _Problem, theta: np.ndarray, margins: np.ndarray, h: float, max_steps: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Minimise the smoothed objective at width h from theta by Newton's method with exact line searches.

    Stops when the Newton decrement -gradient . step is at rounding level, or when the exactly line-searched
    step no longer lowers the objective by more than rounding (then the step is not taken).

    Returns:
        (theta, margins, gram): gram = A_F' A_F over the band F at the returned theta, or None if the level
        did not converge within max_steps.

    Raises:
        ArithmeticError: a line-searched step raised the objective by more than rounding can explain.
    """
    signed, penalty, c = problem.signed, problem.penalty, problem.c
    value = problem.smoothed(theta, margins, h)
    band = np.zeros(len(margins), dtype=bool)  # samples on the quadratic part of the loss
    gram = np.zeros((len(theta), len(theta)))  # A_F' A_F over the band
    for _ in range(max_steps):
        _, slope, in_band = _smoothed_hinge(margins, h)
        gradient = penalty * theta + c * (signed.T @ slope)
        # The Hessian is diag(penalty) + (c/h) * sum over the band of a a^T. Between Newton steps only a few
        # samples enter or leave the band, so update its Gram matrix with those instead of recomputing it.
        # While the band is empty the intercept has no curvature but the tiny ridge: the step is then mostly
        # a (huge) move of b, which the exact line search scales to the best intercept along it.
        entered, left = signed[in_band & ~band], signed[band & ~in_band]
        gram += entered.T @ entered - left.T @ left
        band = in_band
        hessian = np.diag(penalty + RIDGE) + (c / h) * gram
        step = np.linalg.solve(hessian, -gradient)
        rounding = 1e-12 * (1 + abs(value))
        if -float(gradient @ step) <= rounding:
            return theta, margins, gram

        step_margins = signed @ step
        size = _line_minimum(
            margins, step_margins, float(penalty @ (theta * step)), float(penalty @ (step * step)), c, h
        )
        candidate, candidate_margins = theta + size * step, margins + size * step_margins
        candidate_value = problem.smoothed(candidate, candidate_margins, h)
        if candidate_value >= value:
            if candidate_value - value > rounding:
                raise ArithmeticError(
                    f"the exact line search raised the smoothed objective from {value!r} to {candidate_value!r}"
                )
            return theta, margins, gram  # no decrease left that rounding can resolve
        theta, margins, value = candidate, candidate_margins, candidate_value
    return theta, margins, None


def _warm_start(
    problem: _Problem, theta: np.ndarray, margins: np.ndarray, h: float, gram: np.ndarray, next_h: float
) -> tuple[np.ndarray, np.ndarray]:
    """The starting point of the next level: the predicted next solution, or the last one if that is better.

    The smoothed objective's gradient vanishes where Pen theta = C sum_{i in L} a_i + (C/h) sum_{i in F}
    (1 - a_i . theta) a_i (L below the band, F in it), i.e. (Pen + (C/h) A_F' A_F) theta = C sum_L a_i +
    (C/h) sum_F a_i. With the split held, the continuation's path is this linear system's solution as h
    changes. Past the first levels the split changes little from one h to the next, so solving it at next_h
    with the split at h (a predictor step of the path following) starts the Newton iterations close to their
    end. The last solution is kept instead if the prediction has the higher smoothed objective at next_h.
    """
    signed, penalty, c = problem.signed, problem.penalty, problem.c
    band, below = (margins > 1 - h) & (margins < 1), margins <= 1 - h
    hessian = np.diag(penalty + RIDGE) + (c / next_h) * gram
    predicted = np.linalg.solve(hessian, c * signed[below].sum(axis=0) + (c / next_h) * signed[band].sum(axis=0))
    predicted_margins = signed @ predicted
    if problem.smoothed(predicted, predicted_margins, next_h) < problem.smoothed(theta, margins, next_h):
        return predicted, predicted_margins
    return theta, margins


def _solve_partition(
    problem: _Problem, on_margin: np.ndarray, inside: np.ndarray, gram: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """The hinge problem's solution if the samples are split as given: (theta, alpha), or None.

    Suppose the samples ``on_margin`` (F) lie exactly on the margin at the optimum, those ``inside`` it (L,
    margin < 1) have alpha = C and the rest (R, margin > 1) alpha = 0. The optimality conditions are then
    linear in theta and the multipliers alpha_F::

        Pen theta - A_F' alpha_F = C * sum_{i in L} a_i,     A_F theta = 1.

    With |F| <= d+1 (the generic case) this is a symmetric (d+1+|F|)-square system. With more samples than
    dimensions on the margin (a degenerate optimum, e.g. w = 0, b = 1 when the features carry no information
    and the positives outnumber the negatives: all of them sit on the margin) A_F theta = 1 fixes theta by
    itself, so theta is its least-squares solution and alpha_F the minimum-norm solution of the first
    equation, both through the Gram matrix A_F' A_F (``gram`` if the caller has it).

    Returns None when F is empty or the system singular. Whether the split was right is for the caller to
    judge: alpha may leave [0, C], and the margins of L and R may be on the wrong side of 1.
    """
    signed, penalty, c = problem.signed, problem.penalty, problem.c
    dims = len(penalty)
    support = signed[on_margin]
    inside_sum = c * signed[inside].sum(axis=0)  # C * sum_{i in L} a_i
    try:
        if 0 < len(support) <= dims:
            zeros = np.zeros((len(support), len(support)))
            system = np.block([[np.diag(penalty), -support.T], [-support, zeros]])
            solution = np.linalg.solve(system, np.concatenate([inside_sum, -np.ones(len(support))]))
            theta, multipliers = solution[:dims], solution[dims:]
        elif len(support) > dims:
            gram = support.T @ support if gram is None else gram
            theta = np.linalg.solve(gram, support.sum(axis=0))  # (A_F' A_F) theta = A_F' 1
            multipliers = support @ np.linalg.solve(gram, penalty * theta - inside_sum)
        else:
            return None
    except np.linalg.LinAlgError:
        return None
    if not (np.isfinite(theta).all() and np.isfinite(multipliers).all()):
        return None
    alpha = np.where(inside, c, 0.0)
    alpha[on_margin] = multipliers
    return theta, alpha


def _candidates(problem: _Problem, theta: np.ndarray, margins: np.ndarray, h: float, gram: np.ndarray | None):
    """Candidate hinge solutions (theta, margins, alpha) from a level's smoothed solution.

    First the smoothed solution itself, with alpha_i = -C loss'(m_i) in [0, C] (its zero gradient along b
    makes sum alpha_i y_i = 0, up to rounding). Then, if the level converged, the polish: the exact solution
    for the split of the samples into band (on the margin), below it (inside) and above it.
    """
    yield theta, margins, -problem.c * _smoothed_hinge(margins, h)[1]
    if gram is None:
        return
    band, below = (margins > 1 - h) & (margins < 1), margins <= 1 - h
    polished = _solve_partition(problem, on_margin=band, inside=below, gram=gram)
    if polished is not None:
        yield polished[0], problem.signed @ polished[0], polished[1]


@dataclass
class _Incumbent:
    """The candidate with the lowest primal objective so far, and the highest dual lower bound."""

    theta: np.ndarray | None = None
    primal: float = np.inf
    dual: float = 0.0  # D(0) = 0 is a lower bound

    @property
    def gap(self) -> float:
        return self.primal - self.dual

    def update(self, problem: _Problem, theta: np.ndarray, margins: np.ndarray, alpha: np.ndarray) -> None:
        primal = problem.primal(theta, margins)
        if primal < self.primal or self.theta is None:
            self.theta, self.primal = theta, primal
        self.dual = max(self.dual, problem.dual(alpha))


def fit_linear_svm(
    features: np.ndarray,
    labels: np.ndarray,
    c: float = 1.0,
    smoothings: tuple[float, ...] = SMOOTHINGS,
    max_steps: int = 200,
    tolerance: float = TOLERANCE,
) -> tuple[np.ndarray, float]:
    """Fit a linear C-SVM with an unregularised intercept (the problem of ``SVC(kernel="linear", C=c)``).

    Args:
        features: (n, d) samples.
        labels: (n,) binary labels (anything > 0 is the positive class); both classes must occur.
        c: the SVM's C (libsvm's default is 1).
        smoothings: the continuation schedule of the hinge smoothing width h; the levels after the one at
            which the solution is certified are skipped.
        max_steps: Newton steps per smoothing level at most.
        tolerance: the relative duality gap (P - D) / P at which the solution is accepted.

    Returns:
        (w, b): weights (d,) float64 and intercept, so that ``features @ w + b > 0`` predicts positive.

    Raises:
        ValueError: only one class in ``labels`` (the intercept alone then fits them; libsvm refuses too).
        ArithmeticError: a line search failed to decrease the objective (a numerical breakdown; not expected).

    Warns:
        RuntimeWarning: the relative duality gap is still above ``tolerance`` after the last smoothing.
    """
    x = np.asarray(features, dtype=np.float64)
    positive = np.asarray(labels) > 0
    if positive.all() or not positive.any():
        raise ValueError("fit_linear_svm needs samples of both classes")
    y = np.where(positive, 1.0, -1.0)
    n, d = x.shape
    penalty = np.ones(d + 1)
    penalty[-1] = 0.0
    problem = _Problem(signed=np.hstack([x, np.ones((n, 1))]) * y[:, None], positive=positive, penalty=penalty, c=c)

    theta, margins = np.zeros(d + 1), np.zeros(n)
    best = _Incumbent()
    previous: tuple[float, np.ndarray] | None = None  # (h, band Gram matrix) of the last converged level
    for h in smoothings:
        if previous is not None:
            theta, margins = _warm_start(problem, theta, margins, *previous, h)
        theta, margins, gram = _newton(problem, theta, margins, h, max_steps)
        previous = None if gram is None else (h, gram)
        for candidate in _candidates(problem, theta, margins, h, gram):
            best.update(problem, *candidate)
            if best.gap <= tolerance * best.primal:
                return best.theta[:d].copy(), float(best.theta[d])
    warnings.warn(
        f"fit_linear_svm: relative duality gap {best.gap / best.primal:.2e} is above the tolerance "
        f"{tolerance:.0e} after the last smoothing h = {smoothings[-1]:g}",
        RuntimeWarning,
        stacklevel=2,
    )
    return best.theta[:d].copy(), float(best.theta[d])
