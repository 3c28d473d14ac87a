"""Identity: dlib's face embedding on real CelebA photos (held out from every generator), the distance, the
shipped calibration and `facesteer check-identity`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facesteer.attributes.identity import (
    CALIBRATION_FILE,
    IdentityEmbedder,
    calibrated_threshold,
    embedding_distance,
    identity_distance,
)
from facesteer.errors import FacesteerError
from facesteer.evaluation.real_photos import calibrate_identity, celeba_identities
from facesteer.images import load_image, resize_shorter_side

from .conftest import SHARED, one_line_error

CELEBA = SHARED / "data" / "celeba-sample"
requires_celeba = pytest.mark.skipif(not CELEBA.is_dir(), reason=f"CelebA sample photos not found at {CELEBA}")


@pytest.fixture(scope="module")
def embedder() -> IdentityEmbedder:
    return IdentityEmbedder()


@pytest.fixture(scope="module")
def people(embedder) -> dict[str, list[np.ndarray]]:
    """Two photos each of the first four CelebA identities whose faces dlib finds in both (it misses 2 of 248)."""
    by_identity: dict[str, list[np.ndarray]] = {}
    for path, identity in celeba_identities(CELEBA):
        by_identity.setdefault(identity, []).append(load_image(path))
    chosen = {}
    for identity, photos in by_identity.items():
        if len(photos) >= 2 and embedder.chip(photos[0]) is not None and embedder.chip(photos[1]) is not None:
            chosen[identity] = photos[:2]
        if len(chosen) == 4:
            return chosen
    raise AssertionError("fewer than four identities with two faces found")


@requires_celeba
def test_same_person_is_closer_than_other_people(embedder, people):
    firsts = np.stack([photos[0] for photos in people.values()])
    seconds = np.stack([photos[1] for photos in people.values()])
    same = identity_distance(firsts, seconds, embedder)
    others = identity_distance(firsts, np.roll(seconds, 1, axis=0), embedder)
    assert same.shape == (4,) and not np.isnan(same).any()
    assert same.max() < others.min(), (same, others)
    assert identity_distance(firsts, firsts, embedder).max() == 0.0


@requires_celeba
def test_downscaled_faces_are_still_found_and_no_face_is_nan(embedder, people):
    small = np.stack([resize_shorter_side(photos[0], 64) for photos in people.values()])
    assert small.shape[1:3] == (78, 64)
    vectors = embedder.embed(small)
    assert vectors.shape == (4, 128) and vectors.dtype == np.float32 and not np.isnan(vectors).any()
    blank = np.full((2, 64, 64, 3), 128, np.uint8)
    assert np.isnan(embedder.embed(blank)).all()
    assert np.isnan(identity_distance(small[:2], blank, embedder)).all()


def test_distance_checks_shapes():
    with pytest.raises(FacesteerError, match="one length"):
        identity_distance(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((3, 8, 8, 3), np.uint8))
    with pytest.raises(FacesteerError, match="one shape"):
        embedding_distance(np.zeros((2, 128)), np.zeros((2, 64)))


def test_shipped_calibration_is_read_by_size():
    shipped = json.loads(CALIBRATION_FILE.read_text())
    sizes = [entry["size"] for entry in shipped["calibrations"]]
    assert sizes == [None, 64]
    assert calibrated_threshold(64) == shipped["calibrations"][1]["threshold"]
    assert 0.3 < calibrated_threshold(64) < 1.0
    with pytest.raises(FacesteerError, match="no identity calibration at size 32"):
        calibrated_threshold(32)


@pytest.mark.slow
@requires_celeba
def test_shipped_calibration_is_what_check_identity_measures(embedder):
    """The shipped thresholds are measured, not typed in: recompute both sizes (about a minute)."""
    shipped = {entry["size"]: entry for entry in json.loads(CALIBRATION_FILE.read_text())["calibrations"]}
    for size in (None, 64):
        measured = calibrate_identity(CELEBA, size, embedder, progress=False)
        assert measured["auroc"] == pytest.approx(shipped[size]["auroc"], abs=1e-9)
        assert measured["threshold"] == pytest.approx(shipped[size]["threshold"], abs=1e-6)
        assert measured["auroc"] > 0.95  # dlib separates people on these photos, at full size and at 64 px


def test_check_identity_refuses_a_folder_without_identities(run, tmp_path):
    one_line_error(run("check-identity", "--data", str(tmp_path)), "identities.csv")
