"""Face photo folders from ``../shared/data``: listing images and reading UTKFace's labels."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facesteer.errors import FacesteerError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
# AGE_GENDER_RACE_DATE.jpg.chip.jpg; gender 0 = male, 1 = female
UTKFACE_NAME = re.compile(r"^(?P<age>\d+)_(?P<gender>[01])_(?P<race>[0-4])_\d+\.jpg\.chip\.jpg$")


@dataclass(frozen=True)
class LabelledFace:
    """One UTKFace photo and its labels."""

    path: Path
    age: int
    male: bool
    race: int  #: UTKFace's code: 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FacesteerError(f"image folder {folder} not found")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def list_images_in(folders: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Image files of one folder or of several, each folder's sorted by name, in the order the folders are given."""
    folders = [folders] if isinstance(folders, (str, os.PathLike)) else list(folders)
    if not folders:
        raise FacesteerError("no image folder given")
    return [path for folder in folders for path in list_images(folder)]


def folders_name(folders: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> str:
    """``a`` or ``a+b``: the folders' names, for file names and messages."""
    folders = [folders] if isinstance(folders, (str, os.PathLike)) else list(folders)
    return "+".join(Path(folder).name for folder in folders)


def utkface_faces(folder: str | os.PathLike[str]) -> list[LabelledFace]:
    """All UTKFace photos in ``folder`` whose file names carry well-formed labels, sorted by name."""
    faces = []
    for path in list_images(folder):
        match = UTKFACE_NAME.match(path.name)
        if match:
            faces.append(LabelledFace(path, int(match["age"]), match["gender"] == "0", int(match["race"])))
    if not faces:
        raise FacesteerError(f"{folder} holds no UTKFace-named photos (AGE_GENDER_RACE_DATE.jpg.chip.jpg)")
    return faces


def evenly_spaced(paths: list[Path], count: int | None) -> list[Path]:
    """``count`` of ``paths`` spread evenly over the list (all of them when ``count`` is None or not smaller);
    deterministic, so a subset of a sorted folder is the same on every machine."""
    if count is None or count >= len(paths):
        return list(paths)
    return [paths[i] for i in np.linspace(0, len(paths) - 1, count).round().astype(int)]


def load_image_folder(
    folder: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    resolution: int,
    limit: int | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Every image in ``folder`` (sorted by name; several folders one after the other; the first ``limit`` if
    given), as RGB resized to ``resolution`` x ``resolution``; see :func:`load_images`.

    Returns:
        uint8 array (N, resolution, resolution, 3).

    Raises:
        FacesteerError: missing or empty folder, or an unreadable image (named).
    """
    paths = list_images_in(folder)[:limit]
    if not paths:
        raise FacesteerError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return load_images(paths, resolution, progress, desc=f"reading {folders_name(folder)}")


def load_images(paths: list[Path], resolution: int, progress: bool = True, desc: str = "reading") -> np.ndarray:
    """Images as RGB resized to ``resolution`` x ``resolution``.

    Non-square images are centre-cropped to a square first; downsizing uses PIL's Lanczos filter.

    Returns:
        uint8 array (len(paths), resolution, resolution, 3).

    Raises:
        FacesteerError: an unreadable image (named).
    """
    from PIL import Image, UnidentifiedImageError
    from tqdm import tqdm

    out = np.empty((len(paths), resolution, resolution, 3), dtype=np.uint8)
    for i, path in enumerate(tqdm(paths, desc=desc, unit="img", disable=not progress)):
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
                side = min(image.size)
                left, top = (image.width - side) // 2, (image.height - side) // 2
                image = image.crop((left, top, left + side, top + side))
                if image.size != (resolution, resolution):
                    image = image.resize((resolution, resolution), Image.Resampling.LANCZOS)
                out[i] = np.asarray(image)
        except (UnidentifiedImageError, OSError) as error:
            raise FacesteerError(f"cannot read image {path}: {error}") from None
    return out
