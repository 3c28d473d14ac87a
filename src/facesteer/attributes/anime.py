"""The ``anime`` scorer: hair colour, hair length and eye colour of anime faces, with no network at run time.

No anime tagger with embedded weights installs offline, so the scores are pixel statistics of the hair and the
eyes, located by PyPI's ``animeface`` (the animeface-2009 detector: face box, eye boxes with their colours)
and by the framing of anime-faces-64, which ``stylegan2-anime64`` reproduces and alignment
(:mod:`facesteer.alignment`) gives any picture:

1. **Hair colour**: the median colour of the top band of the image (rows 2-22 % of the height, columns
   12-88 % of the width: the fringe, in anime-faces-64's framing). No face needed.
2. **Hair length**: the share of the regions beside and below the face (below three quarters of the face box,
   left and right of its middle 80 %) whose colour lies within 20 CIELAB units of the hair colour. Long hair
   frames the face down to the bottom edge; short hair ends near the chin. The face box is animeface's where it
   finds a face, else anime-faces-64's mean box.
3. **Eye colour**: animeface's colour of each eye, averaged over both. NaN where it finds no face.

Colour scores are hue projections: for a named colour with hue angle h_c (HSV, degrees, from the CSS colour
named in :data:`HAIR_HUES` and :data:`EYE_HUES`), ``score = chroma * cos(hue - h_c)`` where chroma =
(max(R, G, B) - min(R, G, B)) / 255. Range -1 to 1: 1 = a fully saturated colour of exactly that hue, 0 = grey
(or a hue at right angles), negative = the opposite hue. Continuous, so InterFaceGAN can rank by it.

Checked against 120 anime faces labelled by eye (``facesteer/weights/anime-labels-anime-faces-64.csv``): ``facesteer
check-anime`` prints the AUROC of each score against those labels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from facesteer.attributes.base import ATTRIBUTES, Attribute, check_images
from facesteer.detection import ANIME_DETECTION_SIZE, detect_anime_face, require_working_pillow

#: hair colour name -> (CSS colour it is named after, its HSV hue in degrees)
HAIR_HUES: dict[str, tuple[str, float]] = {
    "blonde": ("gold", 51.0),
    "red": ("orangered", 16.0),
    "pink": ("hotpink", 330.0),
    "purple": ("darkviolet", 282.0),
    "blue": ("royalblue", 225.0),
    "green": ("mediumaquamarine", 160.0),
}
#: eye colour name -> (CSS colour, HSV hue in degrees)
EYE_HUES: dict[str, tuple[str, float]] = {
    "blue": ("royalblue", 225.0),
    "red": ("crimson", 348.0),
    "purple": ("darkviolet", 282.0),
    "green": ("mediumaquamarine", 160.0),
    "brown": ("chocolate", 25.0),
}

#: anime-faces-64's framing, as fractions of the image (x, y, width, height): animeface's mean face box on
#: 115 of the 120 labelled anime-faces-64 images (it found no face on the other 5)
MEAN_FACE_BOX = (0.137, 0.232, 0.735, 0.735)
#: the fringe: rows and columns (fractions) whose median colour is the hair colour
HAIR_BAND = ((0.02, 0.22), (0.12, 0.88))
#: CIELAB distance under which a pixel counts as hair-coloured
HAIR_COLOUR_DISTANCE = 20.0
ANIME_ATTRIBUTES: tuple[str, ...] = (
    "hair_lightness",
    *(f"hair_{name}" for name in HAIR_HUES),
    "hair_length",
    *(f"eye_{name}" for name in EYE_HUES),
)


def _hue_attribute(part: str, name: str, css: str, hue: float) -> Attribute:
    return Attribute(
        f"{part}_{name}",
        "chroma along a hue",
        "-1 to 1",
        f"how {name} the {part} is: chroma x cos(hue - {hue:g} deg), {hue:g} deg = the hue of CSS {css}; "
        f"1 = saturated {name}, 0 = grey or a hue at right angles, < 0 = the opposite hue",
    )


ATTRIBUTES |= {
    a.name: a
    for a in [
        Attribute("hair_lightness", "CIELAB L* / 100", "0 to 1",
                  "lightness of the hair colour (the fringe's median); 0 = black, 1 = white"),
        *(_hue_attribute("hair", name, css, hue) for name, (css, hue) in HAIR_HUES.items()),
        Attribute("hair_length", "fraction of the regions beside the face below the cheeks", "0 to 1",
                  "share of the image beside and below the face coloured like the hair; long hair about 0.4-0.9, "
                  "short hair about 0-0.3"),
        *(_hue_attribute("eye", name, css, hue) for name, (css, hue) in EYE_HUES.items()),
    ]
}  # fmt: skip


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 sRGB -> (..., 3) float64 CIELAB (D65): L* 0-100, a*, b* about -128 to 127."""
    linear = np.asarray(rgb, np.float64) / 255.0
    linear = np.where(linear > 0.04045, ((linear + 0.055) / 1.055) ** 2.4, linear / 12.92)
    to_xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = linear @ to_xyz.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def hue_projection(rgb: np.ndarray, hue_degrees: float) -> float:
    """chroma x cos(hue - hue_degrees) of one RGB colour (3,) in 0-255; -1 to 1."""
    r, g, b = np.asarray(rgb, np.float64) / 255.0
    high, low = max(r, g, b), min(r, g, b)
    chroma = high - low
    if chroma == 0:
        return 0.0
    if high == r:
        hue = 60.0 * (((g - b) / chroma) % 6)
    elif high == g:
        hue = 60.0 * ((b - r) / chroma + 2)
    else:
        hue = 60.0 * ((r - g) / chroma + 4)
    return float(chroma * np.cos(np.radians(hue - hue_degrees)))


def _region(image: np.ndarray, rows: tuple[float, float], columns: tuple[float, float]) -> np.ndarray:
    height, width = image.shape[:2]
    r0, r1 = round(rows[0] * height), max(round(rows[1] * height), round(rows[0] * height) + 1)
    c0, c1 = round(columns[0] * width), max(round(columns[1] * width), round(columns[0] * width) + 1)
    return image[r0:r1, c0:c1].reshape(-1, 3)


def hair_colour(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (3,) uint8, the median colour of the fringe band (:data:`HAIR_BAND`)."""
    return np.median(_region(image, *HAIR_BAND), axis=0).round().astype(np.uint8)


def hair_length(image: np.ndarray, colour: np.ndarray, face_box: tuple[float, float, float, float]) -> float:
    """Share of the pixels left and right of ``face_box``'s middle 80 %, below three quarters of its height,
    whose CIELAB distance to ``colour`` is under :data:`HAIR_COLOUR_DISTANCE`; 0 to 1 (NaN if that region is empty)."""
    height, width = image.shape[:2]
    x, y, box_width, box_height = face_box
    top = int(np.clip(round(y + 0.75 * box_height), 0, height - 1))
    left = int(np.clip(round(x + 0.1 * box_width), 1, width - 1))
    right = int(np.clip(round(x + 0.9 * box_width), left, width - 1))
    beside = np.concatenate([image[top:, :left].reshape(-1, 3), image[top:, right:].reshape(-1, 3)])
    if len(beside) == 0:
        return float("nan")
    distance = np.linalg.norm(srgb_to_lab(beside) - srgb_to_lab(colour), axis=-1)
    return float(np.mean(distance < HAIR_COLOUR_DISTANCE))


def anime_scores(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 anime face in anime-faces-64's framing -> (len(ANIME_ATTRIBUTES),) float32."""
    face = detect_anime_face(image)
    height, width = image.shape[:2]
    colour = hair_colour(image)
    mean_x, mean_y, mean_w, mean_h = MEAN_FACE_BOX
    box = face.box if face is not None else (mean_x * width, mean_y * height, mean_w * width, mean_h * height)
    scores = [srgb_to_lab(colour)[0] / 100.0]
    scores += [hue_projection(colour, hue) for _, hue in HAIR_HUES.values()]
    scores.append(hair_length(image, colour, box))
    if face is None:
        scores += [float("nan")] * len(EYE_HUES)
    else:
        eyes = face.eye_colours.astype(np.float64).mean(axis=0)
        scores += [hue_projection(eyes, hue) for _, hue in EYE_HUES.values()]
    return np.asarray(scores, np.float32)


class AnimeScorer:
    """The ``anime`` scorer: :data:`ANIME_ATTRIBUTES` of anime faces framed like anime-faces-64."""

    name = "anime"
    attributes = ANIME_ATTRIBUTES

    def __init__(self) -> None:
        require_working_pillow()

    def score(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 -> (N, len(attributes)) float32; eye scores NaN where no face is found."""
        images = check_images(images)
        if len(images) == 0:
            return np.empty((0, len(self.attributes)), np.float32)
        return np.stack([anime_scores(image) for image in images])

    def config(self) -> dict[str, Any]:
        """Plain JSON types only: a sample run compares this with what its manifest read back."""
        return {"name": self.name, "attributes": list(self.attributes),
                "hair_hues": {name: list(hue) for name, hue in HAIR_HUES.items()},
                "eye_hues": {name: list(hue) for name, hue in EYE_HUES.items()},
                "hair_colour_distance": HAIR_COLOUR_DISTANCE, "detection_size": ANIME_DETECTION_SIZE}  # fmt: skip

    def close(self) -> None:
        """Nothing to release; present for the scorer protocol."""

    def __enter__(self) -> AnimeScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
