"""Generator quality beyond FID: the Fréchet distance of embeddings, precision and recall (k = 3)."""

from __future__ import annotations

import numpy as np
import pytest

from facesteer.errors import FacesteerError
from facesteer.evaluation.generative import Embeddings, frechet_of_embeddings, precision_recall, quality
from facesteer.fid import frechet_distance


def brute_force_precision_recall(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """The definition, one point at a time."""

    def radius(points: np.ndarray, i: int) -> float:
        return float(np.sort(np.linalg.norm(points - points[i], axis=1))[k])  # [0] is the point itself

    real_radii = [radius(real, i) for i in range(len(real))]
    fake_radii = [radius(fake, i) for i in range(len(fake))]
    precision = np.mean([any(np.linalg.norm(f - r) <= real_radii[j] for j, r in enumerate(real)) for f in fake])
    recall = np.mean([any(np.linalg.norm(r - f) <= fake_radii[j] for j, f in enumerate(fake)) for r in real])
    return float(precision), float(recall)


def test_precision_recall_match_the_definition():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((40, 5))
    fake = rng.standard_normal((30, 5)) * 0.5 + 0.8  # a narrower set, shifted: precision and recall differ
    ours = precision_recall(real, fake, k=3)
    assert ours == pytest.approx(brute_force_precision_recall(real, fake, 3))
    assert ours[0] != ours[1]


def test_a_collapsed_generator_has_precision_but_no_recall():
    rng = np.random.default_rng(1)
    real = rng.standard_normal((200, 8))
    collapsed = real[:1] + rng.standard_normal((200, 8)) * 0.01  # every face the same real face
    precision, recall = precision_recall(real, collapsed)
    assert precision == 1.0 and recall < 0.05
    assert precision_recall(real, real) == (1.0, 1.0)


def test_frechet_of_embeddings_leaves_out_faces_not_found():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((50, 4)), rng.standard_normal((60, 4)) + 1
    expected = frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    with_missing = np.vstack([b, np.full((5, 4), np.nan)])
    assert frechet_of_embeddings(a, with_missing) == pytest.approx(expected)
    assert frechet_of_embeddings(a, a) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(FacesteerError, match="two embeddings per set"):
        frechet_of_embeddings(a, np.full((5, 4), np.nan))
    with pytest.raises(FacesteerError, match="more than 3 points"):
        precision_recall(a, a[:3])


def test_quality_reports_faces_found_of_both_sets():
    rng = np.random.default_rng(3)
    real = Embeddings(faces=rng.standard_normal((20, 128)), inception=rng.standard_normal((20, 16)))
    faces = rng.standard_normal((20, 128))
    faces[:5] = np.nan
    generated = Embeddings(faces=faces, inception=rng.standard_normal((20, 16)))
    result = quality(real, generated)
    assert result["faces_found"] == 0.75 and result["real_faces_found"] == 1.0
    assert result["generated"] == 20 and 0 <= result["dlib_recall"] <= 1


def test_quality_of_a_generator_that_draws_no_faces_yet():
    rng = np.random.default_rng(4)
    real = Embeddings(faces=rng.standard_normal((20, 128)), inception=rng.standard_normal((20, 16)))
    generated = Embeddings(faces=np.full((20, 128), np.nan), inception=rng.standard_normal((20, 16)))
    result = quality(real, generated)
    assert np.isnan(result["dlib_frechet"]) and np.isnan(result["dlib_precision"]) and result["faces_found"] == 0
    assert 0 <= result["inception_recall"] <= 1
