"""Face photo folders from ``../shared/data``: listing images and reading UTKFace's labels."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from facesteer.errors import FacesteerError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
# AGE_GENDER_RACE_DATE.jpg.chip.jpg; gender 0 = male, 1 = female
UTKFACE_NAME = re.compile(r"^(?P<age>\d+)_(?P<gender>[01])_(?P<race>\d)_\d+\.jpg\.chip\.jpg$")


@dataclass(frozen=True)
class LabelledFace:
    """One UTKFace photo and its labels."""

    path: Path
    age: int
    male: bool


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FacesteerError(f"image folder {folder} not found")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def utkface_faces(folder: str | os.PathLike[str]) -> list[LabelledFace]:
    """All UTKFace photos in ``folder`` whose file names carry well-formed labels, sorted by name."""
    faces = []
    for path in list_images(folder):
        match = UTKFACE_NAME.match(path.name)
        if match:
            faces.append(LabelledFace(path, int(match["age"]), match["gender"] == "0"))
    if not faces:
        raise FacesteerError(f"{folder} holds no UTKFace-named photos (AGE_GENDER_RACE_DATE.jpg.chip.jpg)")
    return faces
