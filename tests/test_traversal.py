"""The traversal table: Pearson's r of attributes with the steps along each direction, and the names it gives."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facesteer.discovery import Directions, sefa
from facesteer.discovery.traversal import named_directions, pearson_with_steps, traversal_table
from facesteer.errors import FacesteerError
from tests.conftest import one_line_error

STEPS = np.arange(-10, 11, dtype=np.float64)


def test_pearson_is_the_true_correlation_not_the_reference_codes_scaled_covariance():
    rng = np.random.default_rng(0)
    scores = 5.0 * STEPS + rng.normal(0, 20, (4, STEPS.size))  # a unit with a large spread
    expected = [np.corrcoef(row, STEPS)[0, 1] for row in scores]
    np.testing.assert_allclose(pearson_with_steps(scores, STEPS), expected, rtol=1e-12)
    reference = [np.cov(row, STEPS)[0, 1] / STEPS.std(ddof=1) for row in scores]  # cov(a, t) / std(t) = r * std(a)
    assert not np.allclose(pearson_with_steps(scores, STEPS), reference)
    assert np.all(np.abs(pearson_with_steps(scores, STEPS)) <= 1)


def test_pearson_is_nan_for_a_missing_face_or_a_constant_attribute():
    scores = np.stack([STEPS.copy(), np.ones_like(STEPS), STEPS.copy()])
    scores[2, 5] = np.nan
    r = pearson_with_steps(scores, STEPS)
    assert r[0] == pytest.approx(1.0) and np.isnan(r[1]) and np.isnan(r[2])


def synthetic_scores(num: int = 6) -> np.ndarray:
    """(num, 3 directions, 21 steps, 2 attributes): direction 1 raises "smile", direction 2 lowers "age",
    direction 0 moves nothing but noise."""
    rng = np.random.default_rng(1)
    scores = rng.normal(0, 1, (num, 3, STEPS.size, 2))
    scores[:, 1, :, 0] += 0.5 * STEPS
    scores[:, 2, :, 1] -= 2.0 * STEPS
    return scores


def test_each_attribute_is_assigned_the_direction_that_moves_it_most():
    table = traversal_table(synthetic_scores(), ("smile", "age"))
    assert table.assigned == {"smile": 1, "age": 2}
    assert table.correlation[1, 0] > 0.9 and table.correlation[2, 1] < -0.9
    assert abs(table.correlation[0]).max() < 0.5
    direction, r, off_target = table.best("age")
    assert direction == 2 and r < -0.9 and off_target < 0.5
    assert table.names(3) == ["", "smile", "age"]
    assert np.array_equal(table.samples, np.full((3, 2), 6))


def test_a_sample_without_a_face_somewhere_is_left_out_of_the_mean():
    scores = synthetic_scores()
    scores[0, 1, 3, :] = np.nan
    table = traversal_table(scores, ("smile", "age"))
    assert table.samples[1, 0] == 5 and table.samples[2, 0] == 6
    with pytest.raises(FacesteerError, match="no traversal was measured"):
        traversal_table(np.full((2, 3, 21, 2), np.nan), ("smile", "age"))
    with pytest.raises(FacesteerError, match="scores must be"):
        traversal_table(scores[:, :, :5], ("smile", "age"))


def test_identity_is_correlated_with_the_distance_from_the_centre_and_names_nothing():
    scores = synthetic_scores()
    distance = np.broadcast_to(np.abs(STEPS)[None, None, :, None], (*scores.shape[:3], 1)).copy()
    distance[:, 2] *= 3  # the person changes fastest along the age direction
    table = traversal_table(np.concatenate([scores, distance], axis=3), ("smile", "age", "identity"))
    np.testing.assert_allclose(table.correlation[:, 2], 1.0)  # against t it would be 0 by symmetry
    assert "identity" not in table.assigned and table.names(3) == ["", "smile", "age"]
    assert table.best("age")[2] < 0.5  # identity is not an off-target change
    named = named_directions(Directions(np.eye(3, 5), "sefa", "gen", "z"), table, [0, 1, 2])
    assert named.info["signs"][2] == -1 and named.info["traversal"]["correlation"][2][2] == pytest.approx(1.0)


def test_named_directions_point_toward_more_of_their_attribute():
    found = Directions(np.eye(3, 5), "sefa", "gen", "z")
    table = traversal_table(synthetic_scores(), ("smile", "age"))
    named = named_directions(found, table, [0, 1, 2])
    assert named.names == ["", "smile", "age"]
    assert np.array_equal(named.vectors[1], found.vectors[1])
    assert np.array_equal(named.vectors[2], -found.vectors[2])  # age fell along +n: the named one is -n
    assert named.info["traversal"]["correlation"][2][1] > 0.9
    assert named.index("age") == 2 and named.label(0) == "sefa-0"


def test_label_from_the_command_line(run, generator, tmp_path):
    sefa(generator).save(tmp_path / "sefa")
    result = run("label", str(tmp_path / "sefa"), "--scorer", "predictor", "--num", "3", "--directions", "4",
                 "--reach", "2", "--identity", "--workers", "1", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["count"] == 4 and printed["num"] == 3 and len(printed["traversal"]["correlation"]) == 4
    assert printed["traversal"]["attributes"][-1] == "identity"
    labelled = tmp_path / "sefa" / "labelled"
    assert (labelled / "table.png").is_file() and Directions.load(labelled).names is not None
    # a boundary folder that is missing or holds none of the directions' space: refused before any walk
    (tmp_path / "w-only").mkdir()
    np.save(tmp_path / "w-only" / "age_w.npy", np.ones((1, 128), np.float32))
    for folder, message in ((tmp_path / "typo", "not found"), (tmp_path / "w-only", "holds no z boundaries")):
        one_line_error(run("label", str(tmp_path / "sefa"), "--boundaries", str(folder), "--workers", "1"), message)
