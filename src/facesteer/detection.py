"""Face detectors that alignment and the scorers share: animeface's anime faces, and quiet native start-ups.

- :func:`detect_anime_face`: PyPI ``animeface`` (the animeface-2009 detector): the most likely anime face in a
  picture, with its eye boxes and colours.
- :func:`native_stderr_silenced`: MediaPipe and LiteRT print start-up chatter from C++ that Python's logging
  cannot reach; this sends it to /dev/null while they start.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL
from PIL import Image

from facesteer.errors import FacesteerError

#: the detector sees the picture padded by a quarter on each side and scaled to this size: on the 120 labelled
#: anime-faces-64 images it finds 107 faces at 256 px (45 ms each), 115 at 160 px (27 ms), 116 at 128 px (17 ms)
ANIME_DETECTION_SIZE = 160
ANIME_DETECTION_MARGIN = 0.25


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the duration: MediaPipe and LiteRT print start-up chatter
    ("Created TensorFlow Lite XNNPACK delegate", glog warnings) from C++ that Python logging cannot reach."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@dataclass(frozen=True)
class AnimeFace:
    """One face animeface found, in the image's pixel coordinates.

    Attributes:
        box: face box (x, y, width, height).
        left_eye, right_eye: eye boxes (x, y, width, height).
        eye_colours: (2, 3) uint8 RGB, the detector's colour of each eye.
        likelihood: the detector's confidence, 0 to 1.
    """

    box: tuple[float, float, float, float]
    left_eye: tuple[float, float, float, float]
    right_eye: tuple[float, float, float, float]
    eye_colours: np.ndarray
    likelihood: float


def require_working_pillow() -> None:
    if int(PIL.__version__.split(".")[0]) >= 12:
        raise FacesteerError(
            f"animeface finds no face with Pillow {PIL.__version__} (its C extension reads Pillow's image struct, "
            "changed in 12): install pillow<12"
        )


def detect_anime_face(image: np.ndarray) -> AnimeFace | None:
    """The most likely anime face in ``image`` (H, W, 3) uint8, or None.

    animeface misses faces that fill the whole picture (as in anime-faces-64), so the picture is padded by a
    quarter of its size on each side (edge pixels repeated) and scaled to :data:`ANIME_DETECTION_SIZE` px on its
    longer side.
    """
    import animeface  # the C extension loads only when an anime face is wanted

    require_working_pillow()
    height, width = image.shape[:2]
    margin = round(ANIME_DETECTION_MARGIN * max(height, width))
    padded = np.pad(image, ((margin, margin), (margin, margin), (0, 0)), mode="edge")
    scale = ANIME_DETECTION_SIZE / max(padded.shape[:2])
    size = (max(1, round(padded.shape[1] * scale)), max(1, round(padded.shape[0] * scale)))
    faces = animeface.detect(Image.fromarray(padded).resize(size, Image.Resampling.BICUBIC))
    if not faces:
        return None
    face = max(faces, key=lambda found: found.likelihood)
    sx, sy = padded.shape[1] / size[0], padded.shape[0] / size[1]

    def box(part: Any) -> tuple[float, float, float, float]:
        return (part.x * sx - margin, part.y * sy - margin, part.width * sx, part.height * sy)

    colours = np.array([[eye.color.r, eye.color.g, eye.color.b] for eye in (face.left_eye, face.right_eye)], np.uint8)
    return AnimeFace(box(face.face.pos), box(face.left_eye.pos), box(face.right_eye.pos), colours,
                     float(face.likelihood))  # fmt: skip
