"""The anime scorer: colour maths on closed-form inputs, the detector on real anime faces, and its AUROCs
against the labels made by eye (the shipped facesteer/weights/anime-labels-anime-faces-64.csv)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facesteer.attributes import load_scorer
from facesteer.attributes.anime import (
    ANIME_ATTRIBUTES,
    EYE_HUES,
    HAIR_HUES,
    MEAN_FACE_BOX,
    detect_anime_face,
    hair_colour,
    hair_length,
    hue_projection,
    srgb_to_lab,
)
from facesteer.errors import FacesteerError
from facesteer.evaluation.anime_labels import read_anime_labels
from facesteer.images import load_image
from facesteer.shipped import ANIME_LABELS
from tests.conftest import SHARED, one_line_error

ANIME = SHARED / "data" / "anime-faces-64"
LABELS = ANIME_LABELS
HELD_OUT = Path(__file__).parent / "fixtures" / "anime_labels_heldout.csv"
requires_anime = pytest.mark.skipif(not ANIME.is_dir(), reason=f"anime-faces-64 not found at {ANIME}")


def test_hue_projection_is_chroma_times_cosine():
    assert hue_projection(np.array([255, 0, 0]), 0.0) == pytest.approx(1.0)
    assert hue_projection(np.array([255, 0, 0]), 180.0) == pytest.approx(-1.0)
    assert hue_projection(np.array([255, 0, 0]), 90.0) == pytest.approx(0.0, abs=1e-12)
    assert hue_projection(np.array([0, 0, 255]), 240.0) == pytest.approx(1.0)
    assert hue_projection(np.array([128, 128, 128]), 51.0) == 0.0
    # half chroma (255 -> 128 over a grey floor of 0 -> 127.5 / 255), hue 60 (yellow) seen from 0 (red): cos 60
    assert hue_projection(np.array([128, 128, 0]), 0.0) == pytest.approx(128 / 255 * 0.5)
    # each named colour is at its own maximum: the CSS colour's hue is the one written down
    css = {"gold": (255, 215, 0), "orangered": (255, 69, 0), "hotpink": (255, 105, 180), "darkviolet": (148, 0, 211),
           "royalblue": (65, 105, 225), "mediumaquamarine": (102, 205, 170), "crimson": (220, 20, 60),
           "chocolate": (210, 105, 30)}  # fmt: skip
    named = {c for c, _ in HAIR_HUES.values()} | {c for c, _ in EYE_HUES.values()}
    assert set(css) == named  # every named colour checked; green ones take the green-largest branch
    for name, rgb in css.items():
        hue = {**{c: h for c, h in HAIR_HUES.values()}, **{c: h for c, h in EYE_HUES.values()}}[name]
        chroma = (max(rgb) - min(rgb)) / 255
        assert hue_projection(np.array(rgb), hue) == pytest.approx(chroma, abs=2e-3), name


def test_lab_of_white_black_and_red():
    np.testing.assert_allclose(srgb_to_lab(np.array([255, 255, 255])), [100, 0, 0], atol=0.02)
    np.testing.assert_allclose(srgb_to_lab(np.array([0, 0, 0])), [0, 0, 0], atol=1e-9)
    np.testing.assert_allclose(srgb_to_lab(np.array([255, 0, 0])), [53.24, 80.09, 67.20], atol=0.05)


def _drawn_face(hair: tuple[int, int, int], long_hair: bool, size: int = 64) -> np.ndarray:
    """A flat cartoon: hair-coloured image, skin in the middle 80 % of the face box and below it, hair beside the
    face only if long."""
    image = np.full((size, size, 3), hair, np.uint8)
    x, y, w, h = (v * size for v in MEAN_FACE_BOX)
    y, h = round(y), round(h)
    image[y:, round(x + 0.1 * w) : round(x + 0.9 * w)] = (250, 225, 205)
    if not long_hair:
        image[y + h // 2 :, :] = 255  # white background below the cheeks
    return image


def test_hair_colour_and_length_on_drawn_faces():
    blonde_long, blue_short = _drawn_face((250, 215, 60), True), _drawn_face((40, 70, 200), False)
    np.testing.assert_array_equal(hair_colour(blonde_long), [250, 215, 60])
    box = tuple(v * 64 for v in MEAN_FACE_BOX)
    assert hair_length(blonde_long, hair_colour(blonde_long), box) == 1.0
    assert hair_length(blue_short, hair_colour(blue_short), box) == 0.0


def test_scorer_columns_ranges_and_nan_without_a_face():
    with load_scorer("anime") as scorer:
        scores = scorer.score(np.stack([_drawn_face((250, 215, 60), True), _drawn_face((40, 70, 200), False)]))
    assert scores.shape == (2, len(ANIME_ATTRIBUTES)) and scores.dtype == np.float32
    column = {name: i for i, name in enumerate(ANIME_ATTRIBUTES)}
    blonde, blue = scores
    assert blonde[column["hair_blonde"]] > 0.6 > blue[column["hair_blonde"]]
    assert blue[column["hair_blue"]] > 0.6 > blonde[column["hair_blue"]]
    assert blonde[column["hair_lightness"]] > blue[column["hair_lightness"]]
    assert blonde[column["hair_length"]] == 1.0 and blue[column["hair_length"]] == 0.0
    assert np.isnan(scores[:, column["eye_blue"]]).all()  # flat drawings: the detector finds no face
    assert np.all(np.abs(scores[:, : column["hair_length"]]) <= 1)


@requires_anime
def test_detector_finds_anime_faces_in_their_own_framing():
    """Guards the Pillow pin too: with Pillow 12 animeface silently finds nothing."""
    rows = read_anime_labels(LABELS)[:20]
    faces = [detect_anime_face(load_image(ANIME / row["file"])) for row in rows]
    found = [face for face in faces if face is not None]
    assert len(found) >= 16  # 19 of these 20 (115 of all 120)
    boxes = np.array([face.box for face in found]) / 64
    np.testing.assert_allclose(boxes.mean(axis=0), MEAN_FACE_BOX, atol=0.06)
    for face in found:  # left eye (as the detector names it: on the image's right) right of the right one
        assert face.left_eye[0] > face.right_eye[0]
        assert face.eye_colours.shape == (2, 3) and 0 < face.likelihood <= 1


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


@requires_anime
def test_check_anime_aurocs_against_labels_made_by_eye(run):
    result = run("check-anime", "--data", str(ANIME), "--labels", str(LABELS), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout, parse_constant=_not_json)  # NaN is not JSON: --json output parses strictly
    assert report["images"] == 120 and report["no_face"] <= 10
    aurocs = {check["score"]: check["auroc"] for check in report["checks"]}
    assert set(aurocs) == {*ANIME_ATTRIBUTES}
    assert all(value > 0.75 for value in aurocs.values()), aurocs  # (min() would pass a NaN)
    assert np.mean([v for k, v in aurocs.items() if k.startswith("hair_") and k != "hair_length"]) > 0.85


class _TableScorer:
    """Scores each picture by its top-left pixel's red value: a row of ``table``."""

    name, attributes = "table", ANIME_ATTRIBUTES

    def __init__(self, table: dict[int, list[float]]) -> None:
        self.table = table

    def score(self, images: np.ndarray) -> np.ndarray:
        return np.array([self.table[int(image[0, 0, 0])] for image in images], np.float32)

    def config(self) -> dict:
        return {}


def test_check_leaves_out_unlabelled_pictures_and_those_without_a_score(tmp_path):
    from facesteer.evaluation.anime_labels import check_anime_scorer
    from facesteer.images import save_png

    labels = [("a", "blue", "long", "blue"), ("b", "black", "short", "blue"), ("c", "blue", "", "brown"),
              ("d", "", "long", "")]  # fmt: skip
    eye_blue, length = ANIME_ATTRIBUTES.index("eye_blue"), ANIME_ATTRIBUTES.index("hair_length")
    table = {}
    for i, (name, *_) in enumerate(labels):
        save_png(tmp_path / f"{name}.png", np.full((8, 8, 3), i, np.uint8))
        table[i] = [0.0] * len(ANIME_ATTRIBUTES)
    table[0][eye_blue] = table[1][eye_blue] = float("nan")  # no face found: both blue-eyed pictures unscored
    table[2][eye_blue], table[3][eye_blue] = 0.1, 0.9  # brown eyes scored low; d (unlabelled) would score high
    table[0][length], table[1][length], table[2][length], table[3][length] = 0.2, 0.1, 0.9, 0.3
    csv = tmp_path / "labels.csv"
    csv.write_text("file,hair_colour,hair_length,eye_colour\n" + "".join(f"{n}.png,{h},{le},{e}\n"
                                                                        for n, h, le, e in labels))  # fmt: skip
    report = check_anime_scorer(_TableScorer(table), csv, tmp_path, progress=False)
    checks = {check["score"]: check for check in report["checks"]}
    assert (checks["eye_blue"]["positives"], checks["eye_blue"]["negatives"]) == (0, 1)  # a, b: NaN; d: unlabelled
    # hair length: a (long, 0.2) and d (long, 0.3) against b (short, 0.1); c is unlabelled (0.9 would spoil it)
    assert (checks["hair_length"]["positives"], checks["hair_length"]["negatives"]) == (2, 1)
    assert checks["hair_length"]["auroc"] == 1.0
    assert report["no_face"] == 2


def test_labels_file_is_checked(tmp_path, run):
    rows = read_anime_labels(LABELS)
    assert len(rows) == 120 and len({row["file"] for row in rows}) == 120
    bad = tmp_path / "labels.csv"
    bad.write_text("file,hair_colour,hair_length,eye_colour\nx.jpg,teal,long,blue\n")
    with pytest.raises(FacesteerError, match="unknown hair_colour 'teal'"):
        read_anime_labels(bad)
    bad.write_text("file,hair_colour,hair_length,eye_colour\n../x.jpg,blue,long,blue\n")
    one_line_error(run("check-anime", "--labels", str(bad), "--data", str(tmp_path)), "plain file name")
    bad.write_bytes(b"file,hair_colour,hair_length,eye_colour\n\xff\xfe.jpg,blue,long,blue\n")
    one_line_error(run("check-anime", "--labels", str(bad), "--data", str(tmp_path)), "not a UTF-8 CSV")
    bad.write_text("file,hair,eyes\nx.jpg,blue,blue\n")
    one_line_error(run("check-anime", "--labels", str(bad), "--data", str(tmp_path)), "must have the columns")


def test_an_anime_sample_run_resumes(tmp_path, run):
    """The scorer's config must survive the manifest's JSON round trip, or a run can never be resumed."""
    out = str(tmp_path / "run")
    first = run("sample", "-g", "stylegan2-anime64", "--scorer", "anime", "--num", "4", "--out", out, "--workers", "1")
    assert first.returncode == 0, first.stderr
    again = run("sample", "-g", "stylegan2-anime64", "--scorer", "anime", "--num", "4", "--out", out, "--workers", "1")
    assert again.returncode == 0, again.stderr
    assert json.loads(json.dumps(load_scorer("anime").config())) == load_scorer("anime").config()


@requires_anime
def test_held_out_labels_aurocs(run):
    """60 faces labelled after the scorer was fixed (its regions were chosen on the first 120)."""
    result = run("check-anime", "--data", str(ANIME), "--labels", str(HELD_OUT), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    aurocs = {check["score"]: check["auroc"] for check in report["checks"]}
    assert report["images"] == 60 and all(value > 0.7 for value in aurocs.values()), aurocs
    assert not {row["file"] for row in read_anime_labels(HELD_OUT)} & {row["file"] for row in read_anime_labels(LABELS)}


@requires_anime
def test_check_anime_json_has_null_where_an_auroc_cannot_be_computed(run, tmp_path):
    """With no negatives for a score its AUROC is NaN, which `--json` printed as NaN: not JSON."""
    labels = tmp_path / "labels.csv"
    labels.write_text("file,hair_colour,hair_length,eye_colour\n2809_2002.jpg,blue,long,blue\n"
                      "25964_2009.jpg,black,short,brown\n")  # fmt: skip
    result = run("check-anime", "--data", str(ANIME), "--labels", str(labels), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout, parse_constant=_not_json)
    aurocs = {check["score"]: check["auroc"] for check in report["checks"]}
    assert aurocs["hair_red"] is None  # no red-haired picture among the two
