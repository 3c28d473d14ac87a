"""Shared fixtures. The teachers' model files ship in the package (or come from $FACESTEER_MODELS); tests needing
them skip, naming the folder, if they are absent."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from facesteer.cli import main
from facesteer.generators import load_generator
from facesteer.modelfiles import MODEL_FILES, file_status, models_dir

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
UTKFACE = SHARED / "data" / "utkface-crop-part1"


def models_ready() -> bool:
    folder = models_dir()
    return all(file_status(name, folder) == "ok" for name in MODEL_FILES)


requires_models = pytest.mark.skipif(
    not models_ready(), reason=f"teacher model files ({', '.join(MODEL_FILES)}) not found in {models_dir()}"
)
requires_utkface = pytest.mark.skipif(not UTKFACE.is_dir(), reason=f"UTKFace photos not found at {UTKFACE}")


@pytest.fixture(scope="session")
def generator():
    return load_generator("dcgan-digiface64")


@pytest.fixture(scope="session")
def teachers():
    if not models_ready():
        pytest.skip(f"teacher model files not found in {models_dir()}")
    from facesteer.attributes.teachers import TeacherScorer

    with TeacherScorer() as scorer:
        yield scorer


@dataclass
class Result:
    """What a CLI run returned and printed."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run(capsys):
    """Run the CLI in this process (as the console script would) and capture what it prints."""

    def invoke(*args: str) -> Result:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


def one_line_error(result: Result, *fragments: str) -> None:
    """Assert a user error: exit status 2 and one line on stderr holding every fragment."""
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("facesteer: error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def deep_png(width: int = 6600, height: int = 6000) -> bytes:
    """A 16-bit grey PNG of width x height (39.6 megapixels by default) in under 100 KB: every row alike."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    rows = zlib.compressobj(9)
    data = b"".join(rows.compress(b"\0" + b"\x80\x00" * width) for _ in range(height)) + rows.flush()
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([16, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
