"""The ``anime`` scorer against labels made by eye: AUROC of each score for the class it is named after.

The labels (:data:`facesteer.shipped.ANIME_LABELS`, shipped: file, hair_colour, hair_length, eye_colour; empty =
could not tell) were made by looking at 120 distinct anime-faces-64 images drawn at random (seed 17) at 3x size. The
scorer's regions, detection size and colour distance were chosen on those 120, so their AUROCs are in-sample;
``tests/fixtures/anime_labels_heldout.csv`` labels 60 more (seed 18), looked at only after the scorer was
fixed: their AUROCs are the honest ones. Hair
colours: black, brown, blonde, orange, red, pink, purple, blue, green, white; lengths: long (hair down the sides
to the bottom edge), short; eyes: blue, red (with pink), purple, green, brown (with amber and orange).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from facesteer.attributes.base import AttributeScorer
from facesteer.errors import FacesteerError
from facesteer.images import load_image
from facesteer.stats import auroc

LABEL_COLUMNS = ("hair_colour", "hair_length", "eye_colour")
LABEL_VALUES: dict[str, tuple[str, ...]] = {
    "hair_colour": ("black", "brown", "blonde", "orange", "red", "pink", "purple", "blue", "green", "white"),
    "hair_length": ("long", "short"),
    "eye_colour": ("blue", "red", "purple", "green", "brown"),
}


@dataclass(frozen=True)
class LabelCheck:
    """One row of the check: ``score`` should rank the images whose ``column`` is in ``positive`` highest."""

    score: str
    column: str
    positive: tuple[str, ...]


CHECKS: tuple[LabelCheck, ...] = (
    LabelCheck("hair_lightness", "hair_colour", tuple(v for v in LABEL_VALUES["hair_colour"] if v != "black")),
    LabelCheck("hair_blonde", "hair_colour", ("blonde",)),
    LabelCheck("hair_red", "hair_colour", ("red", "orange")),
    LabelCheck("hair_pink", "hair_colour", ("pink",)),
    LabelCheck("hair_purple", "hair_colour", ("purple",)),
    LabelCheck("hair_blue", "hair_colour", ("blue",)),
    LabelCheck("hair_green", "hair_colour", ("green",)),
    LabelCheck("hair_length", "hair_length", ("long",)),
    *(LabelCheck(f"eye_{colour}", "eye_colour", (colour,)) for colour in LABEL_VALUES["eye_colour"]),
)


def read_anime_labels(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """Rows of the labels CSV (file + :data:`LABEL_COLUMNS`; '' = unlabelled), checked value by value."""
    path = Path(path)
    if not path.is_file():
        raise FacesteerError(f"labels file {path} not found")
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (UnicodeDecodeError, csv.Error) as error:
        raise FacesteerError(f"{path} is not a UTF-8 CSV file: {error}") from None
    if not rows or set(rows[0]) != {"file", *LABEL_COLUMNS}:
        raise FacesteerError(f"{path} must have the columns file, {', '.join(LABEL_COLUMNS)}")
    for number, row in enumerate(rows, start=2):
        if not row["file"] or "/" in row["file"] or "\\" in row["file"]:
            raise FacesteerError(f"{path} line {number}: file must be a plain file name, got {row['file']!r}")
        for column in LABEL_COLUMNS:
            if row[column] and row[column] not in LABEL_VALUES[column]:
                raise FacesteerError(f"{path} line {number}: unknown {column} {row[column]!r}")
    return rows


def check_anime_scorer(
    scorer: AttributeScorer, labels: str | os.PathLike[str], data: str | os.PathLike[str], progress: bool = True
) -> dict[str, Any]:
    """Score the labelled images of ``data`` and return the AUROC of every :data:`CHECKS` row.

    Returns:
        ``{"images": N, "no_face": n, "checks": [{"score", "positive", "auroc", "positives", "negatives"}]}``;
        an image the scorer gives NaN for a score (eyes without a face) is left out of that row.
    """
    rows = read_anime_labels(labels)
    missing = [name for name in {check.score for check in CHECKS} if name not in scorer.attributes]
    if missing:
        raise FacesteerError(f"scorer {scorer.name} has no {', '.join(sorted(missing))}")
    folder = Path(data)
    images = [folder / row["file"] for row in rows]
    absent = [str(path) for path in images if not path.is_file()]
    if absent:
        raise FacesteerError(f"{len(absent)} labelled images are not in {folder}, e.g. {absent[0]}")
    scores = np.stack(
        [scorer.score(load_image(path)[None])[0] for path in tqdm(images, desc="scoring", disable=not progress)]
    )
    results = []
    for check in CHECKS:
        values = scores[:, scorer.attributes.index(check.score)]
        labelled = np.array([bool(row[check.column]) for row in rows]) & ~np.isnan(values)
        positive = np.array([row[check.column] in check.positive for row in rows])
        left_out = [value for value in LABEL_VALUES[check.column] if value not in check.positive]
        described = f"not {', '.join(left_out)}" if len(left_out) < len(check.positive) else ", ".join(check.positive)
        results.append({
            "score": check.score,
            "positive": f"{check.column}: {described}",
            "auroc": auroc(positive[labelled], values[labelled]),
            "positives": int(positive[labelled].sum()),
            "negatives": int((~positive[labelled]).sum()),
        })  # fmt: skip
    first_eye = scorer.attributes.index("eye_blue")
    return {"images": len(rows), "no_face": int(np.isnan(scores[:, first_eye]).sum()), "checks": results}
