"""The AttributeScorer protocol and what each attribute means.

A scorer turns a batch of face images into one float per attribute: ``score(images) -> (N, k)`` float32,
columns in the order of ``scorer.attributes``. NaN marks an attribute the scorer could not measure, usually
because no face was found in that image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from facesteer.errors import FacesteerError


@dataclass(frozen=True)
class Attribute:
    """An attribute's unit, range and the meaning of its sign."""

    name: str
    unit: str
    value_range: str
    meaning: str


ATTRIBUTES: dict[str, Attribute] = {
    a.name: a
    for a in [
        Attribute(
            "pose",
            "degrees",
            "about -90 to 90 (generated faces: about -35 to 35)",
            "yaw of the head; positive = the face turns toward the image's right edge (its nose points "
            "right), negative = toward the left; 0 = frontal. Mirroring an image flips the sign.",
        ),
        Attribute(
            "smile",
            "probability-like",
            "0 to 1",
            "mean of MediaPipe's mouthSmileLeft and mouthSmileRight blendshapes; 0 = neutral mouth, 1 = broad smile",
        ),
        Attribute("age", "years", "0 to about 100", "apparent age; larger = older"),
        Attribute("gender", "probability", "0 to 1", "probability that the face is male; 0 = female, 1 = male"),
        Attribute(
            "eyeglasses",
            "probability",
            "0 to 1",
            "probability that the face wears eyeglasses (sigmoid of the glasses model's negated logit); "
            "on generated faces rank by it rather than trusting 0.5 as the threshold",
        ),
    ]
}


#: the column order of the teachers' and the predictor's scores (scores.npy of runs they label)
FACE_ATTRIBUTES: tuple[str, ...] = tuple(ATTRIBUTES)


def _blendshape(name: str, blendshapes: str, action: str) -> Attribute:
    return Attribute(name, "blendshape score", "0 to 1", f"FACS {action}: MediaPipe's {blendshapes}; 0 = at rest")


ATTRIBUTES |= {
    a.name: a
    for a in [
        Attribute("face_width", "fraction of the image width", "0 to about 1 (UTKFace-like crops: 0.8 to 0.95)",
                  "width of MediaPipe's 478 face landmarks' bounding box over the image's width"),
        Attribute("face_height", "fraction of the image height", "0 to about 1 (above 1: landmarks past the edge)",
                  "height of MediaPipe's 478 face landmarks' bounding box over the image's height"),
        *(Attribute(f"race_{race}", "probability", "0 to 1",
                    f"probability that UTKFace's annotators would label the face {race.title()} (the race network, "
                    "trained on UTKFace; the fifth group, Others, takes the rest)")
          for race in ("white", "black", "asian", "indian")),
        _blendshape("au1", "browInnerUp", "AU1 inner brow raiser"),
        _blendshape("au6", "mean of cheekSquintLeft and cheekSquintRight", "AU6 cheek raiser"),
        _blendshape("au9", "mean of noseSneerLeft and noseSneerRight", "AU9 nose wrinkler"),
        _blendshape("au12", "mean of mouthSmileLeft and mouthSmileRight (the same number as smile)",
                    "AU12 lip corner puller"),
        _blendshape("au25_26", "jawOpen", "AU25/26 lips part, jaw drop"),
    ]
}  # fmt: skip

#: the columns the ``extended`` scorer adds to :data:`FACE_ATTRIBUTES` (the two-stage paper's attribute set)
EXTENDED_ATTRIBUTES: tuple[str, ...] = tuple(name for name in ATTRIBUTES if name not in FACE_ATTRIBUTES)


@runtime_checkable
class AttributeScorer(Protocol):
    """Anything that scores face images.

    Attributes:
        name: registry name (``"teachers"``, ...).
        attributes: names of the score columns, in order.
    """

    name: str
    attributes: tuple[str, ...]

    def score(self, images: np.ndarray) -> np.ndarray:
        """Score a batch of images.

        Args:
            images: uint8 RGB array (N, H, W, 3).

        Returns:
            float32 array (N, len(attributes)); NaN where an attribute could not be measured.
        """
        ...

    def config(self) -> dict[str, Any]:
        """What identifies this scorer in a dataset manifest."""
        ...

    def close(self) -> None:
        """Release native resources (model sessions)."""
        ...


def check_images(images: np.ndarray) -> np.ndarray:
    """Return ``images`` as a uint8 (N, H, W, 3) array, or raise a clear error."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise FacesteerError(f"images must be an RGB batch of shape (N, H, W, 3), got {images.shape}")
    if images.dtype != np.uint8:
        raise FacesteerError(f"images must be uint8 (0-255), got {images.dtype}")
    return images
