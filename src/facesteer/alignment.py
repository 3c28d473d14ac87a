"""Align a picture to the framing of a generator's training images, so it can be inverted and edited.

A generator only draws faces framed as its training images were: the eyes at the same height, the face the same
size. A user's photo is framed anyhow, so before inversion it is warped to that framing:

- **Real photos** (``kind = "landmarks"``): MediaPipe's face landmarks give five key points (the two eye centres,
  the nose tip, the two mouth corners). The framing is the mean position of those points over the training
  photos, as fractions of the image (learned by :func:`learn_framing`). A photo is warped by the similarity
  transform (rotation, uniform scale, shift; least squares, Umeyama) that takes its points onto the framing's,
  at 4x the output size with mirrored borders, then shrunk with antialiasing.
- **Anime pictures** (``kind = "anime-box"``): animeface's face box. The framing is the mean box over the
  training pictures (anime-faces-64); a picture is scaled and shifted so its box lands on it.

A framing is a small JSON file (:class:`Framing`), shipped per generator as ``weights/framing-NAME.json`` and
written by ``facesteer learn-framing``. No face found -> :class:`FacesteerError` (the CLI exits with status 2).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from facesteer import shipped
from facesteer.detection import detect_anime_face, native_stderr_silenced
from facesteer.errors import FacesteerError
from facesteer.files import write_json
from facesteer.generators import registry
from facesteer.images import check_face_sized, upscale_for_detection
from facesteer.modelfiles import require_model_file

#: MediaPipe landmark indices averaged into each key point: eye centres (from the eye corners), nose tip, mouth
#: corners. "Left" is the image's left.
KEY_POINTS: dict[str, tuple[int, ...]] = {
    "left_eye": (33, 133),
    "right_eye": (362, 263),
    "nose_tip": (1,),
    "left_mouth": (61,),
    "right_mouth": (291,),
}
FRAMING_KINDS = ("landmarks", "anime-box")
#: the warp is done at this multiple of the output size, then shrunk with antialiasing
SUPERSAMPLE = 4


@dataclass(frozen=True)
class Framing:
    """Where faces sit in a generator's training images, as fractions of the image side.

    Attributes:
        kind: ``"landmarks"`` (real photos) or ``"anime-box"`` (anime pictures).
        points: (5, 2) mean key points (x, y) in [0, 1], in :data:`KEY_POINTS` order (``landmarks``); or
            the mean face box (x, y, width, height) as one row of 4 (``anime-box``).
        spread: mean distance of an image's points from the mean (fraction of the side): how loose the framing is.
        source: the folder it was learned from; images: how many were read; found: in how many a face was found.
    """

    kind: str
    points: list[list[float]]
    spread: float
    source: str
    images: int
    found: int

    def __post_init__(self) -> None:
        if self.kind not in FRAMING_KINDS:
            raise FacesteerError(f"unknown framing kind {self.kind!r}; expected one of {', '.join(FRAMING_KINDS)}")
        numbers = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731  (JSON: no "0.3")
        rows = self.points if isinstance(self.points, (list, tuple)) else [self.points]
        if not all(isinstance(row, (list, tuple)) and all(numbers(v) for v in row) for row in rows):
            raise FacesteerError(f"framing points must be lists of numbers, got {self.points!r:.80}")
        expected = (len(KEY_POINTS), 2) if self.kind == "landmarks" else (1, 4)
        shape = tuple(len(row) for row in rows)
        if len(rows) != expected[0] or set(shape) != {expected[1]}:
            raise FacesteerError(f"a {self.kind} framing needs points of shape {expected}, got rows of lengths {shape}")
        points = np.asarray(self.points, dtype=np.float64)
        if not np.all(np.isfinite(points)) or np.any(np.abs(points) > 2):
            raise FacesteerError("framing points must be finite fractions of the image (about 0 to 1)")
        if self.kind == "anime-box" and np.any(points[0, 2:] <= 0.01):
            raise FacesteerError("a framing box needs a positive width and height")
        if self.kind == "landmarks" and np.min(np.linalg.norm(points[:, None] - points[None], axis=-1)
                                               + np.eye(len(points))) < 0.01:  # fmt: skip
            raise FacesteerError("framing key points must be distinct")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (self.images, self.found)):
            raise FacesteerError("a framing's images and found must be counts")
        if not numbers(self.spread) or not math.isfinite(self.spread):
            raise FacesteerError(f"a framing's spread must be a number, got {self.spread!r:.40}")

    def save(self, path: str | os.PathLike[str]) -> Path:
        return write_json(path, asdict(self))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Framing:
        path = Path(path)
        if not path.is_file():
            raise FacesteerError(f"framing file {path} not found")
        try:
            content = json.loads(path.read_text())
            return cls(**{field: content[field] for field in ("kind", "points", "spread", "source", "images", "found")})
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise FacesteerError(f"{path} is not a framing file: {error}") from None


def framing_path(generator: str) -> Path:
    """Where the shipped framing of ``generator`` lives (it may not exist)."""
    return shipped.framing_file(generator)


def load_framing(generator: str, path: str | os.PathLike[str] | None = None) -> Framing:
    """The framing of ``generator``: the file at ``path``, else the shipped one."""
    if path is not None:
        return Framing.load(path)
    packaged = framing_path(generator)
    if not packaged.is_file():
        raise FacesteerError(
            f"no framing for {generator}: learn one with `facesteer learn-framing --generator {generator} --data "
            "FOLDER_OF_ITS_TRAINING_IMAGES --out FILE.json` and pass it with --framing"
        )
    return Framing.load(packaged)


class LandmarkDetector:
    """MediaPipe's Face Landmarker, for the key points only. Use as a context manager (it holds native state)."""

    def __init__(self, models: str | os.PathLike[str] | None = None) -> None:
        import mediapipe
        from mediapipe.tasks.python import BaseOptions, vision

        model = require_model_file("face_landmarker.task", models)
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(model)), running_mode=vision.RunningMode.IMAGE, num_faces=1
        )
        self._mediapipe = mediapipe
        with native_stderr_silenced():
            self._landmarker = vision.FaceLandmarker.create_from_options(options)

    def key_points(self, image: np.ndarray) -> np.ndarray | None:
        """(5, 2) key points (x, y) in pixels of ``image`` (H, W, 3) uint8, or None if no face is found."""
        big = np.ascontiguousarray(upscale_for_detection(image))
        with native_stderr_silenced():
            found = self._landmarker.detect(self._mediapipe.Image(image_format=self._mediapipe.ImageFormat.SRGB,
                                                                  data=big))  # fmt: skip
        if not found.face_landmarks:
            return None
        scale = np.array([image.shape[1], image.shape[0]], np.float64)
        landmarks = np.array([(p.x, p.y) for p in found.face_landmarks[0]], np.float64) * scale
        return np.stack([landmarks[list(indices)].mean(axis=0) for indices in KEY_POINTS.values()])

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def __enter__(self) -> LandmarkDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 matrix M of the rotation + uniform scale + shift that best maps ``source`` (K, 2) onto ``target``
    (K, 2) in least squares (Umeyama 1991, no reflection): target ~ M @ [x, y, 1]."""
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    if source.shape != target.shape or source.ndim != 2 or source.shape[1] != 2 or len(source) < 2:
        raise FacesteerError(f"need two matching (K >= 2, 2) point sets, got {source.shape} and {target.shape}")
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    source_centred, target_centred = source - source_mean, target - target_mean
    variance = (source_centred**2).sum() / len(source)
    if variance == 0:
        raise FacesteerError("the source points all coincide: no transform")
    covariance = target_centred.T @ source_centred / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rotation = u @ sign @ vt
    scale = np.trace(np.diag(singular) @ sign) / variance
    shift = target_mean - scale * rotation @ source_mean
    return np.hstack([scale * rotation, shift[:, None]])


def warp(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Warp ``image`` (H, W, 3) uint8 by the 2x3 ``matrix`` (pixels of the image -> pixels of a ``size`` square):
    bicubic at :data:`SUPERSAMPLE` times ``size`` with mirrored borders, then shrunk (antialiased)."""
    import cv2  # mediapipe's OpenCV; only warping needs it

    big = size * SUPERSAMPLE
    scaled = np.asarray(matrix, np.float64) * np.array([[SUPERSAMPLE], [SUPERSAMPLE]])
    warped = cv2.warpAffine(np.ascontiguousarray(image), scaled, (big, big), flags=cv2.INTER_CUBIC,
                            borderMode=cv2.BORDER_REFLECT_101)  # fmt: skip
    return np.asarray(Image.fromarray(warped).resize((size, size), Image.Resampling.LANCZOS))


def photo_matrix(points: np.ndarray, framing: Framing, size: int) -> np.ndarray:
    """The similarity transform taking a photo's key points (5, 2) onto ``framing``'s at ``size`` px."""
    return similarity_transform(points, np.asarray(framing.points) * size)


def anime_matrix(box: tuple[float, float, float, float], framing: Framing, size: int) -> np.ndarray:
    """The scale + shift taking a detected face ``box`` (x, y, w, h) onto ``framing``'s box at ``size`` px."""
    x, y, width, height = box
    fx, fy, fw, fh = (np.asarray(framing.points[0]) * size).tolist()
    scale = (fw / width + fh / height) / 2
    return np.array([[scale, 0.0, fx - scale * x], [0.0, scale, fy - scale * y]])


class Aligner:
    """Aligns pictures to one generator's framing; use as a context manager.

    Args:
        framing: the generator's :class:`Framing`.
        size: output side in pixels (the generator's resolution).
        models: models folder (MediaPipe's face_landmarker.task, for real photos).
    """

    def __init__(self, framing: Framing, size: int, models: str | os.PathLike[str] | None = None) -> None:
        self.framing, self.size = framing, size
        self._detector = LandmarkDetector(models) if framing.kind == "landmarks" else None

    def matrix(self, image: np.ndarray, name: str = "the picture") -> np.ndarray:
        """The 2x3 warp of ``image`` onto the framing; FacesteerError naming ``name`` if no face is found (or the
        picture is too small or thin to hold one)."""
        check_face_sized(image.shape[1], image.shape[0], name)
        if self._detector is not None:
            points = self._detector.key_points(image)
            if points is None:
                raise FacesteerError(f"no face found in {name}")
            return photo_matrix(points, self.framing, self.size)
        face = detect_anime_face(image)
        if face is None:
            raise FacesteerError(f"no anime face found in {name}")
        return anime_matrix(face.box, self.framing, self.size)

    def align(self, image: np.ndarray, name: str = "the picture") -> np.ndarray:
        """(H, W, 3) uint8 -> (size, size, 3) uint8 in the generator's framing."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise FacesteerError(f"{name} must be an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
        return warp(image, self.matrix(image, name), self.size)

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()

    def __enter__(self) -> Aligner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def learn_framing(
    images: list[np.ndarray],
    kind: str,
    source: str,
    models: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> Framing:
    """The mean framing of ``images`` (each (H, W, 3) uint8, any size): key points (``landmarks``) or face box
    (``anime-box``) as fractions of each image's width and height, averaged over the images with a face."""
    if kind not in FRAMING_KINDS:
        raise FacesteerError(f"unknown framing kind {kind!r}; expected one of {', '.join(FRAMING_KINDS)}")
    found: list[np.ndarray] = []
    detector = LandmarkDetector(models) if kind == "landmarks" else None
    try:
        for image in tqdm(images, desc="finding faces", unit="img", disable=not progress):
            side = np.array([image.shape[1], image.shape[0]], np.float64)
            if detector is not None:
                points = detector.key_points(image)
                if points is not None:
                    found.append(points / side)
            else:
                face = detect_anime_face(image)
                if face is not None:
                    found.append((np.array(face.box) / np.concatenate([side, side]))[None])
    finally:
        if detector is not None:
            detector.close()
    if len(found) < 10:
        raise FacesteerError(f"faces found in only {len(found)} of {len(images)} images: need at least 10")
    stacked = np.stack(found)
    mean = stacked.mean(axis=0)
    spread = float(np.linalg.norm(stacked - mean, axis=-1).mean())
    return Framing(kind, mean.round(5).tolist(), round(spread, 5), source, len(images), len(found))


def framing_kind_for(generator: str) -> str:
    """The framing kind a generator needs by default: ``anime-box`` if its name says anime, else ``landmarks``."""
    return "anime-box" if "anime" in generator else "landmarks"


def default_framing_out(generator: str, force: bool = False) -> Path:
    """Where ``learn-framing`` writes without --out: the package's framing of a registered generator, which
    it replaces only when forced."""
    if generator not in registry():
        raise FacesteerError(f"{generator} is not a registered generator: give --out FILE.json")
    target = framing_path(generator)
    if target.exists() and not force:
        raise FacesteerError(f"{generator} ships a framing ({target}): give --out FILE.json, or --force to replace it")
    return target
