"""Shared fixtures. The real models come from ../shared/models; tests needing them skip, naming it, if absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from facesteer.generators import load_generator
from facesteer.modelfiles import MODEL_FILES, file_status, models_dir

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
UTKFACE = SHARED / "data" / "utkface-crop-part1"


def _models_ready() -> bool:
    folder = models_dir()
    return all(file_status(name, folder) == "ok" for name in MODEL_FILES)


requires_models = pytest.mark.skipif(
    not _models_ready(), reason=f"teacher model files ({', '.join(MODEL_FILES)}) not found in {models_dir()}"
)
requires_utkface = pytest.mark.skipif(not UTKFACE.is_dir(), reason=f"UTKFace photos not found at {UTKFACE}")


@pytest.fixture(scope="session")
def generator():
    return load_generator("dcgan-digiface64")


@pytest.fixture(scope="session")
def teachers():
    if not _models_ready():
        pytest.skip(f"teacher model files not found in {models_dir()}")
    from facesteer.attributes.teachers import TeacherScorer

    with TeacherScorer() as scorer:
        yield scorer
