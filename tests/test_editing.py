import numpy as np
import pytest

from facesteer.editing import interpolate, shift
from facesteer.errors import FacesteerError
from facesteer.evaluation.metrics import identity_kept


def unit(dim, seed=0):
    vector = np.random.default_rng(seed).standard_normal(dim)
    return vector / np.linalg.norm(vector)


def test_shift_moves_along_the_unit_direction():
    codes = np.random.default_rng(1).standard_normal((4, 10))
    n = unit(10)
    moved = shift(codes, 5 * n[None], 2.0)  # the direction is normalised first
    np.testing.assert_allclose(moved - codes, np.tile(2 * n, (4, 1)), atol=1e-6)
    per_code = shift(codes, n, np.array([0, 1, 2, 3.0]))
    np.testing.assert_allclose((per_code - codes) @ n, [0, 1, 2, 3], atol=1e-5)


def test_interpolate_lands_at_the_requested_distances():
    codes = np.random.default_rng(2).standard_normal((3, 20)) * 3
    n = unit(20, 1)
    walk = interpolate(codes, n, start=-3, end=3, steps=7)
    assert walk.shape == (3, 7, 20) and walk.dtype == np.float32
    np.testing.assert_allclose(walk @ n, np.tile(np.linspace(-3, 3, 7), (3, 1)), atol=1e-5)
    # only the component along n changes
    residual = walk - (walk @ n)[..., None] * n
    np.testing.assert_allclose(residual, np.repeat((codes - (codes @ n)[:, None] * n)[:, None], 7, 1), atol=1e-5)


def test_wplus_codes_move_on_the_chosen_layers_only():
    codes = np.random.default_rng(3).standard_normal((2, 6, 8))
    n = unit(8, 2)
    moved = shift(codes, n, 1.5, layers=range(0, 2))
    np.testing.assert_allclose(moved[:, :2] - codes[:, :2], np.broadcast_to(1.5 * n, (2, 2, 8)), atol=1e-6)
    np.testing.assert_allclose(moved[:, 2:], codes[:, 2:], atol=1e-6)
    walk = interpolate(codes, n, -1, 1, 3, layers=[5])
    assert walk.shape == (2, 3, 6, 8)
    expected = np.broadcast_to(np.linspace(-1, 1, 3)[None, :, None] * n, (2, 3, 8))
    np.testing.assert_allclose(walk[:, :, 5] - codes[:, None, 5], expected, atol=1e-6)
    np.testing.assert_allclose(walk[:, :, :5], np.repeat(codes[:, None, :5], 3, 1), atol=1e-6)


def test_bad_edits_are_refused():
    with pytest.raises(FacesteerError, match="dimension 8 but the codes have dimension 10"):
        shift(np.zeros((2, 10)), unit(8), 1.0)
    with pytest.raises(FacesteerError, match="W\\+ codes"):
        shift(np.zeros((2, 10)), unit(10), 1.0, layers=[0])
    with pytest.raises(FacesteerError, match="out of range"):
        shift(np.zeros((2, 4, 10)), unit(10), 1.0, layers=[7])
    with pytest.raises(FacesteerError, match="zero"):
        shift(np.zeros((2, 10)), np.zeros(10), 1.0)
    with pytest.raises(FacesteerError, match="steps"):
        interpolate(np.zeros((2, 10)), unit(10), steps=0)


class CodesAsImages:
    """A stand-in generator whose "images" are the codes themselves."""

    def synthesize(self, codes: np.ndarray, space: str = "z") -> np.ndarray:
        return np.asarray(codes, dtype=np.float64)


class CodesAsEmbeddings:
    """A stand-in identity embedder: the code padded to 128 entries; no face once the first entry passes 2.5."""

    def score(self, images: np.ndarray) -> np.ndarray:
        embedding = np.zeros((len(images), 128))
        embedding[:, : images.shape[1]] = images
        embedding[images[:, 0] > 2.5] = np.nan
        return embedding


def test_identity_kept_counts_distances_and_lost_faces():
    """Moving by +-alpha along a unit direction moves the embedding by exactly alpha; a face pushed past 2.5 on
    the first axis is lost, and a lost face counts as not kept."""
    codes = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    along_first = {"first": np.array([[1.0, 0.0, 0.0]])}
    result = identity_kept(CodesAsImages(), CodesAsEmbeddings(), codes, along_first, 1.5, (1.0, 2.0), progress=False)
    at_1, at_2 = result["first"]
    assert at_1 == {"alpha": 1.0, "kept": 1.0, "lost": 0.0, "mean_distance": 1.0, "faces": 4}
    # at 2: codes 0 + 2 and 1 - 2 are found (distance 2, not kept), 1 + 2 = 3 > 2.5 is lost, 0 - 2 found
    assert at_2["faces"] == 4 and at_2["kept"] == 0.0 and at_2["lost"] == 0.25 and at_2["mean_distance"] == 2.0
