import json
from pathlib import Path

import numpy as np
import pytest

from facesteer.boundaries import Boundary, confident_split, project_boundary, train_boundary
from facesteer.errors import FacesteerError

from .conftest import SHARED

PUBLISHED = SHARED / "models" / "interfacegan-boundaries" / "original"
requires_published = pytest.mark.skipif(not PUBLISHED.is_dir(), reason=f"published boundaries not found at {PUBLISHED}")


def synthetic(num=20000, dim=100, noise=1.0, seed=0):
    rng = np.random.default_rng(seed)
    codes = rng.standard_normal((num, dim)).astype(np.float32)
    truth = rng.standard_normal(dim)
    truth /= np.linalg.norm(truth)
    return codes, codes @ truth + noise * rng.standard_normal(num), truth


def test_recovers_a_known_hyperplane():
    codes, scores, truth = synthetic(num=100000, noise=1.0)  # noisy labels, as an attribute predictor gives
    fit = train_boundary(codes, scores, ratio=0.3)
    assert fit.normal.shape == (1, 100) and fit.normal.dtype == np.float32
    assert np.linalg.norm(fit.normal) == pytest.approx(1, abs=1e-6)
    assert float(fit.normal[0] @ truth) >= 0.99
    assert fit.validation_accuracy > 0.8 and 0.55 < fit.all_accuracy < 1  # the middle is near the cut


def test_exact_protocol_on_a_hand_checkable_case():
    scores = np.arange(10, dtype=float)  # 0..9
    split = confident_split(scores, ratio=0.2, split=0.5, seed=0)  # chosen = int(10 * 0.2) = 2 per side
    assert sorted([*split.train_positive, *split.validation_positive]) == [8, 9]
    assert sorted([*split.train_negative, *split.validation_negative]) == [0, 1]
    assert len(split.train_positive) == len(split.validation_positive) == 1
    assert list(split.remaining) == [7, 6, 5, 4, 3, 2]  # sorted descending
    assert list(split.remaining_labels) == [True, True, True, False, False, False]  # >= (9 + 0) / 2
    with_threshold = confident_split(scores, ratio=0.2, split=0.5, seed=0, threshold=6)
    assert list(with_threshold.remaining_labels) == [True, True, False, False, False, False]
    assert confident_split(scores, ratio=3, split=0.7).remaining.tolist() == [6, 5, 4, 3]  # ratio > 1: a count
    assert len(confident_split(scores, ratio=100, split=0.7).remaining) == 0  # capped at N // 2


def test_ends_that_share_a_score_are_refused():
    """5 positives among 1000 labels at ratio 0.02: the top 20 held 15 zeros, labelled positive without a word."""
    labels = np.zeros(1000)
    labels[:5] = 1
    with pytest.raises(FacesteerError, match=r"share the value 0 \(5 samples score above.*at most 5 samples"):
        confident_split(labels, ratio=0.02, split=0.7)
    labels[:40] = 1  # enough of both: the ends hold one value each
    split = confident_split(labels, ratio=0.02, split=0.7)
    assert set(labels[[*split.train_positive, *split.validation_positive]]) == {1.0}
    scores = np.arange(1000.0)
    scores[497:503] = 499.5  # a few tied at the median of a continuous score, split between the ends at ratio 0.5
    assert len(confident_split(scores, ratio=0.5, split=0.7).remaining) == 0


def test_shuffle_is_seeded():
    scores = np.arange(1000, dtype=float)
    a, b, c = (confident_split(scores, 0.1, 0.7, seed=s) for s in (1, 1, 2))
    assert np.array_equal(a.train_positive, b.train_positive)
    assert not np.array_equal(a.train_positive, c.train_positive)


def test_nan_scores_are_dropped_and_counted():
    codes, scores, _ = synthetic(num=2000)
    scores[::10] = np.nan
    fit = train_boundary(codes, scores.reshape(-1, 1), ratio=0.05)
    assert fit.counts == {
        "valid": 1800,
        "chosen_per_side": 90,
        "train_per_side": 62,  # int(90 * 0.7) is 62 in floating point, as in InterFaceGAN
        "validation_per_side": 28,
        "remaining": 1620,
    }


def test_matches_sklearn_svc_on_the_same_split():
    from sklearn.svm import SVC

    codes, scores, _ = synthetic(num=100000, noise=2.0, seed=3)
    fit = train_boundary(codes, scores, ratio=0.02, seed=0)
    chosen = confident_split(scores, 0.02, 0.7, seed=0)
    train = np.concatenate([chosen.train_positive, chosen.train_negative])
    labels = np.r_[np.ones(len(chosen.train_positive)), np.zeros(len(chosen.train_negative))]
    reference = SVC(kernel="linear").fit(codes[train], labels)
    normal = reference.coef_[0] / np.linalg.norm(reference.coef_[0])
    assert float(fit.normal[0] @ normal) >= 0.99
    validation = np.concatenate([chosen.validation_positive, chosen.validation_negative])
    truth = np.r_[np.ones(len(chosen.validation_positive)), np.zeros(len(chosen.validation_negative))]
    reference_accuracy = float(np.mean(reference.predict(codes[validation]) == truth))
    assert abs(fit.validation_accuracy - reference_accuracy) <= 0.005


@pytest.mark.parametrize(
    ("codes", "scores", "message"),
    [
        (np.zeros((10, 3)), np.r_[np.arange(9.0), np.inf], "infinite"),
        (np.zeros((10, 3)), np.full(10, 2.0), "all 10 scores are equal"),
        (np.zeros((10, 3)), np.arange(9.0), "differ in length"),
        (np.zeros((10, 3, 2)), np.arange(10.0), r"shape \(N, d\)"),
        (np.zeros((10, 3)), np.zeros((10, 2)), r"shape \(N,\) or \(N, 1\)"),
        (np.zeros((10, 3)), np.full(10, np.nan), "only 0 of 10 scores are valid"),
        (np.zeros((50, 3)), np.arange(50.0), "too few valid samples"),  # ratio 0.02 -> 1 per side, 0 train
        (np.full((1000, 3), np.nan), np.arange(1000.0), "NaN or infinite"),
    ],
)
def test_bad_inputs_are_refused(codes, scores, message):
    with pytest.raises(FacesteerError, match=message):
        train_boundary(codes, scores, ratio=0.02 if len(scores) != 10 else 0.3)


def test_bad_ratio_and_split():
    codes, scores, _ = synthetic(num=500)
    with pytest.raises(FacesteerError, match="ratio must be > 0"):
        train_boundary(codes, scores, ratio=0)
    with pytest.raises(FacesteerError, match="split must be in"):
        train_boundary(codes, scores, split=1.0)


def random_unit(dim, seed):
    vector = np.random.default_rng(seed).standard_normal((1, dim))
    return vector / np.linalg.norm(vector)


@pytest.mark.parametrize("count", [0, 1, 2, 3, 5])
def test_projection_is_orthogonal_to_every_condition_and_unit(count):
    primal = random_unit(64, 0)
    conditions = [random_unit(64, seed) for seed in range(1, count + 1)]
    result = project_boundary(primal, *conditions)
    assert result.shape == (1, 64) and result.dtype == np.float32
    assert np.linalg.norm(result) == pytest.approx(1, abs=1e-6)
    for condition in conditions:
        assert abs(float(result[0] @ condition[0])) < 1e-6
    assert float(result[0] @ primal[0]) > 0  # still points the same way


def test_projection_matches_interfacegan_closed_forms():
    n, c1, c2 = random_unit(32, 0)[0], random_unit(32, 1)[0], random_unit(32, 2)[0]
    one = n - (n @ c1) * c1
    np.testing.assert_allclose(project_boundary(n, c1)[0], one / np.linalg.norm(one), atol=1e-6)
    p1, p2, q = n @ c1, n @ c2, c1 @ c2
    alpha, beta = (p1 - p2 * q) / (1 - q**2 + 1e-8), (p2 - p1 * q) / (1 - q**2 + 1e-8)
    two = n - alpha * c1 - beta * c2
    np.testing.assert_allclose(project_boundary(n, c1, c2)[0], two / np.linalg.norm(two), atol=1e-6)


def test_projection_refuses_dependent_or_parallel_conditions():
    n, c1, c2 = random_unit(16, 0), random_unit(16, 1), random_unit(16, 2)
    with pytest.raises(FacesteerError, match="linearly dependent"):
        project_boundary(n, c1, c2, (c1 + c2) / np.linalg.norm(c1 + c2))
    with pytest.raises(FacesteerError, match="linearly dependent"):
        project_boundary(n, c1, -c1)
    with pytest.raises(FacesteerError, match="parallel"):
        project_boundary(c1, c1)
    with pytest.raises(FacesteerError, match="span of the conditions"):
        project_boundary((c1 + 2 * c2) / np.linalg.norm(c1 + 2 * c2), c1, c2)
    with pytest.raises(FacesteerError, match="dimension"):
        project_boundary(n, random_unit(8, 3))


@requires_published
def test_published_boundaries_load_and_their_conditioned_versions_are_projections():
    age = Boundary.load(PUBLISHED / "stylegan_ffhq_age_boundary.npy")
    assert age.normal.shape == (1, 512) and age.normal.dtype == np.float32
    assert age.attribute == "stylegan_ffhq_age" and age.space == "z" and age.generator is None
    assert Boundary.load(PUBLISHED / "stylegan_ffhq_age_w_boundary.npy").space == "w"
    for primal, conditions in [("pggan_celebahq_age", ["gender", "eyeglasses"]), ("stylegan_ffhq_age", ["gender"])]:
        family = primal.rsplit("_", 1)[0]
        published = Boundary.load(PUBLISHED / f"{primal}_c_{'_'.join(conditions)}_boundary.npy").normal
        ours = project_boundary(
            Boundary.load(PUBLISHED / f"{primal}_boundary.npy").normal,
            *(Boundary.load(PUBLISHED / f"{family}_{c}_boundary.npy").normal for c in conditions),
        )
        assert float(ours[0] @ published[0]) > 1 - 1e-6


def test_save_and_load_round_trip_in_interfacegan_format(tmp_path: Path):
    normal = random_unit(100, 4).astype(np.float32)
    boundary = Boundary(normal, "smile", "z", "dcgan-digiface64", ["age"], {"validation_accuracy": 0.9})
    path = boundary.save(tmp_path / "smile.npy")
    raw = np.load(path)
    assert raw.shape == (1, 100) and raw.dtype == np.float32  # what InterFaceGAN's np.load expects
    sidecar = json.loads((tmp_path / "smile.json").read_text())
    assert sidecar["attribute"] == "smile" and sidecar["conditions"] == ["age"]
    loaded = Boundary.load(path)
    np.testing.assert_array_equal(loaded.normal, normal)
    assert loaded.info == {"validation_accuracy": 0.9} and loaded.generator == "dcgan-digiface64"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["smile.json", "smile.npy"]


def test_dimension_mismatch_and_bad_files_are_refused(tmp_path, generator):
    boundary = Boundary(random_unit(512, 0).astype(np.float32), "age")
    with pytest.raises(FacesteerError, match="dimension 512 but the 'z' space of dcgan-digiface64 has dimension 100"):
        boundary.check_applies_to(generator, "z")
    with pytest.raises(FacesteerError, match="has no 'w' space"):
        Boundary(random_unit(100, 0).astype(np.float32), "age", space="w").check_applies_to(generator, "w")
    other = Boundary(random_unit(100, 0).astype(np.float32), "age", generator="stylegan2-anime64")
    with pytest.raises(FacesteerError, match="trained on stylegan2-anime64, not dcgan-digiface64"):
        other.check_applies_to(generator, "z")
    with pytest.raises(FacesteerError, match="not found"):
        Boundary.load(tmp_path / "missing.npy")
    (tmp_path / "junk.npy").write_bytes(b"junk")
    with pytest.raises(FacesteerError, match="not a readable"):
        Boundary.load(tmp_path / "junk.npy")
    np.save(tmp_path / "matrix.npy", np.ones((3, 4)))
    with pytest.raises(FacesteerError, match=r"shape \(3, 4\)"):
        Boundary.load(tmp_path / "matrix.npy")
    np.save(tmp_path / "zero.npy", np.zeros((1, 4)))
    with pytest.raises(FacesteerError, match="zero"):
        Boundary.load(tmp_path / "zero.npy")


class _MeanAndConstant:
    """Two attributes: the image's mean brightness, and a constant."""

    name, attributes = "mean-and-constant", ("brightness", "constant")

    def score(self, images: np.ndarray) -> np.ndarray:
        return np.stack([images.mean(axis=(1, 2, 3)), np.ones(len(images))], axis=1).astype(np.float32)

    def config(self) -> dict:
        return {"name": self.name, "attributes": list(self.attributes)}


def test_training_every_boundary_is_all_or_none(generator, tmp_path):
    """A constant attribute raised after the boundaries before it were written, and the ones after never were."""
    from facesteer.latents import LatentDataset, sample_dataset
    from facesteer.training.run_boundaries import train_all_boundaries

    sample_dataset(generator, _MeanAndConstant(), tmp_path / "run", num=200, seed=0, progress=False)
    with pytest.raises(FacesteerError, match=r"constant: all 200 scores are equal.*no boundary was written"):
        train_all_boundaries(LatentDataset(tmp_path / "run"), tmp_path / "boundaries", ratio=0.1)
    assert not (tmp_path / "boundaries").exists()
    trained = train_all_boundaries(LatentDataset(tmp_path / "run"), tmp_path / "boundaries", ["brightness"], ratio=0.1)
    assert set(trained) == {"brightness"} and (tmp_path / "boundaries" / "brightness.npy").is_file()
