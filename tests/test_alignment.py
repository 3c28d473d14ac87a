"""Alignment: the similarity transform on known points, photos landing on their generator's framing (even when
rotated), anime pictures on anime-faces-64's box, and clear errors for pictures without a face."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from facesteer.alignment import (
    Aligner,
    Framing,
    LandmarkDetector,
    anime_matrix,
    framing_path,
    load_framing,
    similarity_transform,
)
from facesteer.attributes.anime import detect_anime_face
from facesteer.errors import FacesteerError
from facesteer.images import load_image, save_png
from tests.conftest import SHARED, one_line_error, requires_models

CELEBA = SHARED / "data" / "celeba-sample"
SELFIE2ANIME = SHARED / "data" / "selfie2anime-sample"
requires_celeba = pytest.mark.skipif(not CELEBA.is_dir(), reason=f"celeba-sample not found at {CELEBA}")
requires_selfie2anime = pytest.mark.skipif(not SELFIE2ANIME.is_dir(), reason=f"not found: {SELFIE2ANIME}")


def test_similarity_transform_recovers_a_known_one():
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = np.radians(20), 1.7, np.array([12.0, -3.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = points @ (scale * rotation).T + shift
    np.testing.assert_allclose(similarity_transform(points, moved), np.hstack([scale * rotation, shift[:, None]]))
    mirrored = moved * [-1, 1]  # a reflection is not a similarity: the best rotation is returned, not a flip
    assert np.linalg.det(similarity_transform(points, mirrored)[:, :2]) > 0
    with pytest.raises(FacesteerError, match="coincide"):
        similarity_transform(np.ones((5, 2)), moved)


def test_anime_matrix_puts_the_box_on_the_framing():
    framing = Framing("anime-box", [[0.1, 0.2, 0.7, 0.7]], 0.0, "test", 1, 1)
    matrix = anime_matrix((30.0, 40.0, 140.0, 140.0), framing, 64)
    corners = np.array([[30, 40, 1], [170, 180, 1]], np.float64) @ matrix.T
    np.testing.assert_allclose(corners, [[6.4, 12.8], [51.2, 57.6]])
    # a box wider than tall: one scale, the mean of the two sides' (44.8 / 140 and 44.8 / 100), from its corner
    matrix = anime_matrix((30.0, 40.0, 140.0, 100.0), framing, 64)
    scale = (44.8 / 140 + 44.8 / 100) / 2
    np.testing.assert_allclose(matrix, [[scale, 0, 6.4 - 30 * scale], [0, scale, 12.8 - 40 * scale]])


def test_pictures_too_thin_to_hold_a_face_are_refused_before_detection():
    """A 2 x 400 picture upscaled for the detector was 256 x 51,200 px: MediaPipe aborted the process."""
    framing = Framing("anime-box", [[0.1, 0.2, 0.7, 0.7]], 0.0, "test", 1, 1)
    with Aligner(framing, 64) as aligner:
        for shape in ((2, 400, 3), (400, 40, 3), (12, 12, 3)):
            with pytest.raises(FacesteerError, match="too small or too thin"):
                aligner.align(np.zeros(shape, np.uint8), "thin.png")


def test_16_bit_pictures_load_scaled_and_float_ones_are_refused(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")  # a 16-bit grey PNG: Pillow alone clips it to white
    loaded = load_image(tmp_path / "deep.png")
    assert loaded.shape == (64, 64, 3) and loaded.dtype == np.uint8
    np.testing.assert_allclose(loaded[..., 0], np.round(ramp / 257), atol=1)
    Image.fromarray(np.ones((32, 32), np.float32)).save(tmp_path / "float.tiff")
    with pytest.raises(FacesteerError, match="32-bit float pixels"):
        load_image(tmp_path / "float.tiff")


def test_framing_files_are_checked(tmp_path):
    shipped = load_framing("stylegan2-utkface64")
    assert shipped.kind == "landmarks" and np.asarray(shipped.points).shape == (5, 2)
    assert load_framing("stylegan2-anime64").kind == "anime-box"
    with pytest.raises(FacesteerError, match="points of shape"):
        Framing("landmarks", [[0.5, 0.5]], 0.0, "x", 1, 1)
    broken = tmp_path / "framing.json"
    broken.write_text(json.dumps({"kind": "landmarks"}))
    with pytest.raises(FacesteerError, match="not a framing file"):
        Framing.load(broken)
    with pytest.raises(FacesteerError, match="learn-framing"):
        load_framing("not-a-generator")
    assert framing_path("dcgan-digiface64").is_file()
    for points, kind, message in (([[float("nan"), 0.5]] * 5, "landmarks", "finite"),
                                  ([[0.5, 0.5]] * 5, "landmarks", "distinct"),
                                  ([[0.1, 0.1, 0.0, 0.5]], "anime-box", "positive width"),
                                  ([["0.3", "0.3"]] * 5, "landmarks", "lists of numbers"),
                                  ([[0.1, 0.1, 0.5]], "anime-box", "points of shape")):  # fmt: skip
        with pytest.raises(FacesteerError, match=message):
            Framing(kind, points, 0.0, "x", 1, 1)
    with pytest.raises(FacesteerError, match="spread must be a number"):
        Framing("anime-box", [[0.1, 0.1, 0.5, 0.5]], "x", "x", 1, 1)  # type: ignore[arg-type]
    with pytest.raises(FacesteerError, match="counts"):
        Framing("anime-box", [[0.1, 0.1, 0.5, 0.5]], 0.0, "x", True, 1)


def _key_points_as_fractions(image: np.ndarray) -> np.ndarray:
    with LandmarkDetector() as detector:
        points = detector.key_points(image)
    assert points is not None
    return points / image.shape[0]


@requires_models
@requires_celeba
def test_photos_land_on_the_framing_even_rotated():
    framing = load_framing("stylegan2-utkface64")
    photo = load_image(sorted(CELEBA.glob("*.jpg"))[0])
    rotated = np.asarray(Image.fromarray(photo).rotate(25, resample=Image.Resampling.BICUBIC, expand=True))
    with Aligner(framing, 128) as aligner:
        straight, turned = aligner.align(photo), aligner.align(rotated)
    points = []
    for aligned in (straight, turned):
        assert aligned.shape == (128, 128, 3) and aligned.dtype == np.uint8
        points.append(_key_points_as_fractions(aligned))
        # a similarity cannot undo a head turned sideways: the mean distance is what least squares minimises
        error = np.linalg.norm(points[-1] - np.asarray(framing.points), axis=1)
        assert error.mean() < 0.05, error
    # the photo turned by 25 degrees ends where the straight one does
    np.testing.assert_allclose(points[1], points[0], atol=0.02)


@requires_selfie2anime
def test_anime_pictures_land_on_anime_faces_64s_box():
    framing = load_framing("stylegan2-anime64")
    picture = load_image(sorted(SELFIE2ANIME.glob("*.png"))[0])
    with Aligner(framing, 64) as aligner:
        aligned = aligner.align(picture)
    face = detect_anime_face(aligned)
    assert face is not None
    np.testing.assert_allclose(np.array(face.box) / 64, framing.points[0], atol=0.08)


@requires_models
def test_no_face_is_a_clear_error(tmp_path, run):
    blank = tmp_path / "wall.png"
    save_png(blank, np.full((128, 128, 3), 200, np.uint8))
    one_line_error(run("align", str(blank), "-g", "stylegan2-utkface64", "--out", str(tmp_path / "out")),
                   "no face found", "wall.png")  # fmt: skip
    one_line_error(run("align", str(blank), "-g", "stylegan2-anime64", "--out", str(tmp_path / "out")),
                   "no anime face found")  # fmt: skip
    assert not (tmp_path / "out").exists()  # nothing half-written


@requires_models
@requires_celeba
def test_align_writes_nothing_unless_every_picture_has_a_face(tmp_path, run):
    blank = tmp_path / "wall.png"
    save_png(blank, np.full((128, 128, 3), 200, np.uint8))
    photo = str(sorted(CELEBA.glob("*.jpg"))[0])
    one_line_error(run("align", photo, str(blank), "-g", "stylegan2-utkface64", "--out", str(tmp_path / "out")),
                   "no face found", "wall.png")  # fmt: skip
    assert not (tmp_path / "out").exists()


@requires_models
def test_an_output_never_replaces_an_input_picture(tmp_path, run):
    picture = tmp_path / "me.png"
    save_png(picture, np.full((128, 128, 3), 200, np.uint8))
    before = picture.read_bytes()
    one_line_error(run("align", str(picture), "-g", "stylegan2-utkface64", "--out", str(tmp_path)),
                   "would replace that picture")  # fmt: skip
    one_line_error(run("invert", str(picture), "-g", "stylegan2-utkface64", "--method", "encoder", "--out",
                       str(tmp_path)), "would replace that picture")  # fmt: skip
    one_line_error(run("edit-photo", str(picture), "-g", "stylegan2-utkface64", "-b", "absent.npy", "--out",
                       str(picture)), "would replace that picture")  # fmt: skip
    assert picture.read_bytes() == before


@requires_models
@requires_celeba
def test_align_command_writes_one_png_per_photo(tmp_path, run):
    photos = [str(path) for path in sorted(CELEBA.glob("*.jpg"))[:2]]
    result = run("align", *photos, "-g", "stylegan2-utkface64", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    written = sorted(tmp_path.glob("*.png"))
    assert len(written) == 2 and load_image(written[0]).shape == (64, 64, 3)


@requires_models
@pytest.mark.skipif(not (SHARED / "data" / "utkface-crop-part1").is_dir(), reason="UTKFace photos not found")
def test_learn_framing_agrees_with_the_shipped_one(tmp_path, run):
    refused = run("learn-framing", "-g", "stylegan2-utkface64", "--data", str(SHARED / "data" / "utkface-crop-part1"))
    one_line_error(refused, "ships a framing", "--force")
    out = tmp_path / "framing.json"
    result = run("learn-framing", "-g", "stylegan2-utkface64", "--data", str(SHARED / "data" / "utkface-crop-part1"),
                 "--num", "40", "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    learned, shipped = Framing.load(out), load_framing("stylegan2-utkface64")
    assert learned.kind == "landmarks" and learned.found >= 35 and learned.images == 40
    np.testing.assert_allclose(learned.points, shipped.points, atol=0.02)  # 40 photos vs the shipped 500
    left_eye, right_eye = np.asarray(learned.points)[:2]
    assert left_eye[0] < 0.5 < right_eye[0] and abs(left_eye[1] - right_eye[1]) < 0.02
