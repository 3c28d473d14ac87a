"""Writing files so that nothing half-written is ever left behind."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from facesteer.errors import FacesteerError


def current_umask() -> int:
    """The process's umask, read from /proc/self/status where there is one (setting it to read it, the only
    portable way, would change it for every thread for a moment)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``, on failure delete it.

    Readers see the old file or the complete new one, never a partial write. Missing parent folders are
    created. The file gets the permissions a plain ``open`` would give a new file (0666 less the umask), not the
    temporary file's 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # unique per writer
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~current_umask())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def check_out_folder(out: str | os.PathLike[str]) -> None:
    """Refuse an output folder that is an existing file, before any work."""
    if Path(out).exists() and not Path(out).is_dir():
        raise FacesteerError(f"`out` {out} is a file, not a folder")


def copy_file(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Copy ``source`` over ``target`` atomically (:func:`atomic_path`): a reader never sees half a copy."""
    with atomic_path(target) as temporary:
        shutil.copyfile(source, temporary)
    return Path(target)


@contextmanager
def staged_folder(out: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty folder beside ``out`` to write a set of files into; on success move each into ``out``
    (created if missing), on failure leave ``out`` as it was. Either way the staging folder is removed.

    A command writing many files (PNGs, multi-MB generators, then the codes and a summary) that fails midway
    thus never leaves new files beside a previous run's: only the final renames, each atomic, stand between.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".staging", dir=out.parent))
    try:
        yield staging
        out.mkdir(exist_ok=True)
        for written in sorted(staging.iterdir()):
            os.replace(written, out / written.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def strict_json(content: Any, indent: int | None = 2) -> str:
    """``content`` as JSON that any strict parser reads: NaN and infinities (not JSON) become ``null``."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    return json.dumps(clean(content), indent=indent, allow_nan=False)


def write_json(path: str | os.PathLike[str], content: Any) -> Path:
    """Write ``content`` as indented JSON via a temporary file, fsync'd, then renamed over ``path``: readers
    see the old file or the whole new one. Missing parent folders are created."""
    path = Path(path)
    with atomic_path(path) as temporary, temporary.open("w") as handle:
        json.dump(content, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    return path


def write_safetensors(
    path: str | os.PathLike[str], tensors: dict[str, Any], metadata: dict[str, str] | None = None
) -> Path:
    """Write torch ``tensors`` and string ``metadata`` as a safetensors file, atomically, the same content giving
    the same bytes: the safetensors library writes the metadata's keys in an order that changes from process to
    process, and a file's sha256 identifies the weights a run was made with, so the header is written again with
    its metadata sorted (the tensors' offsets count from the end of the header, so they stay valid)."""
    from safetensors.torch import save

    data = save(tensors, metadata=metadata)
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)  # the format pads its header to 8 bytes
    with atomic_path(path) as temporary:
        temporary.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + length :])
    return Path(path)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes, read 1 MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
