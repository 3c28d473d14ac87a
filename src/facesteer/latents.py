"""LatentDataset: a resumable on-disk store of latent codes and their attribute scores.

A dataset is a directory::

    manifest.json   what was sampled (generator, seed, scorer, sizes) and how far the run got
    z.npy           float32 (num, z_dim): the latent codes, row i drawn from (seed, i)
    w.npy           float32 (num, w_dim): style-based generators only, mapping(z) before truncation
    wp.npy          float32 (num, num_ws, w_dim): on request, W+ after truncation
    scores.npy      float32 (num, k): one column per attribute, NaN where the scorer found no face

``sample_dataset`` writes it chunk by chunk into preallocated ``.npy`` files. After each chunk the arrays are
flushed and the manifest is replaced atomically with the new ``rows_complete``, so a run killed at any moment
(even with SIGKILL) and started again recomputes only the unfinished chunk and ends with files byte-identical
to an uninterrupted run. The manifest holds no timestamps for the same reason.
"""

from __future__ import annotations

import errno
import json
import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from facesteer.attributes import check_scorer_fits
from facesteer.attributes.base import AttributeScorer
from facesteer.engines import Chunk, Engine, LocalEngine
from facesteer.errors import FacesteerError
from facesteer.files import write_json
from facesteer.generators.base import Generator

FORMAT = "facesteer-latents"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SCORES = "scores.npy"
DEFAULT_CHUNK_SIZE = 512

#: manifest fields that must match for a run to resume into an existing directory
IDENTITY_FIELDS = ("format", "format_version", "generator", "seed", "num", "chunk_size", "spaces", "scorer")


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("facesteer", "torch", "numpy", "mediapipe", "onnxruntime", "dlib-bin", "ai-edge-litert"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise FacesteerError(f"{root} is not a facesteer latent dataset (no {MANIFEST})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise FacesteerError(f"{path} is corrupt: {error}") from None
    if manifest.get("format") != FORMAT:
        raise FacesteerError(f"{path} is not a facesteer latent dataset manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise FacesteerError(f"{path} has format version {manifest.get('format_version')}, expected {FORMAT_VERSION}")
    return manifest


class LatentDataset:
    """Read access to a dataset directory written by :func:`sample_dataset`.

    Arrays are memory-mapped, so a 500,000-row dataset costs no RAM until rows are touched.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.manifest = _read_manifest(self.root)

    @property
    def num(self) -> int:
        """Rows the run was asked for."""
        return int(self.manifest["num"])

    @property
    def rows_complete(self) -> int:
        """Rows written so far (``num`` once the run has finished)."""
        return int(self.manifest["rows_complete"])

    @property
    def is_complete(self) -> bool:
        return self.rows_complete == self.num

    def require_complete(self) -> LatentDataset:
        """Return self, or raise a clear error if sampling stopped before ``num`` rows."""
        if not self.is_complete:
            raise FacesteerError(
                f"{self.root} is incomplete ({self.rows_complete} of {self.num} rows); run its sample command again"
            )
        return self

    @property
    def attributes(self) -> list[str]:
        return list(self.manifest["attributes"])

    @property
    def spaces(self) -> list[str]:
        return list(self.manifest["spaces"])

    def codes(self, space: str = "z") -> np.ndarray:
        """Memory-mapped codes of ``space``, float32 (rows_complete, *code_shape)."""
        if space not in self.manifest["spaces"]:
            raise FacesteerError(f"{self.root} stores no {space!r} codes; it has {self.spaces}")
        return self._array(f"{space}.npy")

    def _array(self, name: str) -> np.ndarray:
        """The complete rows of ``ROOT/name``, memory-mapped; a one-line error for a missing or damaged file."""
        path = self.root / name
        try:
            array = np.load(path, mmap_mode="r")  # (allow_pickle stays off: a .npy holding objects is refused)
        except (OSError, ValueError) as error:
            raise FacesteerError(
                f"{path} is missing or damaged ({error}); sample the run again into a new folder"
            ) from None
        if array.ndim < 1 or len(array) < self.rows_complete:
            raise FacesteerError(f"{path} holds {len(array) if array.ndim else 0} rows, not the {self.rows_complete} "
                                 "its manifest records: the run is damaged")  # fmt: skip
        return array[: self.rows_complete]

    def scores(self, attribute: str | None = None) -> np.ndarray:
        """Memory-mapped scores, float32 (rows_complete, k), or one attribute's column (rows_complete,)."""
        if not self.attributes:
            raise FacesteerError(f"{self.root} was sampled without a scorer, so it has no scores")
        scores = self._array(SCORES)
        if attribute is None:
            return scores
        if attribute not in self.attributes:
            raise FacesteerError(f"{self.root} has no attribute {attribute!r}; it has {', '.join(self.attributes)}")
        return scores[:, self.attributes.index(attribute)]


def _reserve_disk(paths: list[Path]) -> None:
    """Allocate the disk blocks of freshly preallocated arrays now: they are sparse files, and a disk that fills up
    during the run would end the process with SIGBUS when a memory-mapped page is first written."""
    for path in paths:
        size = path.stat().st_size
        with open(path, "r+b") as handle:
            try:
                os.posix_fallocate(handle.fileno(), 0, size)
            except OSError as error:
                if error.errno == errno.ENOSPC:
                    raise FacesteerError(f"not enough disk space for {path} ({size / 2**20:.0f} MiB)") from None
                # a filesystem that cannot reserve space (EOPNOTSUPP, EINVAL): write as before


def _check_resumable(root: Path, wanted: dict[str, Any]) -> dict[str, Any] | None:
    """The existing manifest if ``root`` holds the same run, None if ``root`` is new or empty; else refuse."""
    if root.exists() and not root.is_dir():
        raise FacesteerError(f"{root} exists and is not a directory")
    if not (root / MANIFEST).exists():
        leftovers = [p.name for p in root.iterdir() if not p.name.endswith(".tmp")] if root.exists() else []
        if leftovers:
            examples = ", ".join(sorted(leftovers)[:3])
            raise FacesteerError(
                f"{root} is not empty and is not a facesteer dataset (it holds {examples}); "
                "refusing to write into it: choose another `out`"
            )
        return None
    existing = _read_manifest(root)
    for field in IDENTITY_FIELDS:
        if existing.get(field) != wanted[field]:
            raise FacesteerError(
                f"{root} holds a different run ({field}: {json.dumps(existing.get(field))}, asked for "
                f"{json.dumps(wanted[field])}); refusing to overwrite it: choose another `out` or delete it"
            )
    return existing


@contextmanager
def _progress(total: int, initial: int, enabled: bool) -> Iterator[tqdm]:
    bar = tqdm(total=total, initial=initial, unit="img", desc="sampling", disable=not enabled, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()


def sample_dataset(
    generator: Generator,
    scorer: AttributeScorer | None,
    out: str | os.PathLike[str],
    num: int,
    seed: int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    batch_size: int = 64,
    progress: bool = True,
    store_wp: bool = False,
    force_scorer: bool = False,
    engine: Engine | None = None,
) -> LatentDataset:
    """Sample ``num`` codes, synthesize and score them, and store everything in ``out``; resumable.

    ``z.npy`` always; for style-based generators also ``w.npy`` (the mapping network's output, before
    truncation) and, with ``store_wp``, ``wp.npy`` (W+, after truncation: num x num_ws x w_dim floats).

    Starting again with the same arguments after an interruption continues from the last complete chunk.
    A directory holding a different run (generator, seed, num, chunk size or scorer) is refused.

    Args:
        generator: the face generator; codes are drawn with ``generator.sample_z(rows, seed, start)``.
        scorer: attribute scorer, or None to store codes only.
        out: dataset directory (created if needed).
        num: number of samples, >= 1.
        seed: random seed (>= 0); row i depends only on (seed, i).
        chunk_size: rows per commit; a kill loses at most one chunk of work.
        batch_size: images synthesized and scored per step (synthesis itself runs in the generator's
            ``preferred_batch_size``).
        progress: show a progress bar (rate, ETA) on stderr.
        store_wp: also store the W+ codes (style-based generators only).
        force_scorer: score with a scorer made for another generator's faces (the predictor) anyway; without
            it such a scorer is refused (:func:`facesteer.attributes.check_scorer_fits`).
        engine: where the chunks are computed (:mod:`facesteer.engines`): by default in this process, with
            ``generator`` and ``scorer``; a Ray engine built for the same generator and scorer gives the same
            bytes.

    Returns:
        The finished dataset.
    """
    if num < 1:
        raise FacesteerError(f"`num` must be at least 1, got {num}")
    if chunk_size < 1 or batch_size < 1:
        raise FacesteerError("chunk size and batch size must be at least 1")
    check_scorer_fits(generator, scorer, force_scorer)
    if store_wp and "wp" not in generator.spaces:
        raise FacesteerError(f"{generator.name} has no W+ space (spaces: {', '.join(generator.spaces)})")
    spaces = {"z": [generator.z_dim]}
    if "w" in generator.spaces:
        spaces["w"] = list(generator.space_shape("w"))
    if store_wp:
        spaces["wp"] = list(generator.space_shape("wp"))
    root = Path(out)
    attributes = list(scorer.attributes) if scorer is not None else []
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "generator": generator.config(),
        "seed": seed,
        "num": num,
        "chunk_size": chunk_size,
        "spaces": spaces,
        "scorer": scorer.config() if scorer is not None else None,
        "attributes": attributes,
        "rows_complete": 0,
        "rows_without_face": 0,
        "versions": _versions(),
    }
    existing = _check_resumable(root, manifest)
    if existing is not None:
        manifest = existing
    else:
        root.mkdir(parents=True, exist_ok=True)
        write_json(root / MANIFEST, manifest)

    # Preallocate the arrays on a fresh start; reopen them when resuming past row 0.
    arrays: dict[str, Path] = {space: root / f"{space}.npy" for space in spaces}
    shapes: dict[str, tuple[int, ...]] = {space: (num, *shape) for space, shape in spaces.items()}
    if scorer is not None:
        arrays["scores"], shapes["scores"] = root / SCORES, (num, len(attributes))
    mode = "w+" if manifest["rows_complete"] == 0 else "r+"
    try:
        maps = {
            key: np.lib.format.open_memmap(
                path, mode=mode, dtype=np.float32, shape=shapes[key] if mode == "w+" else None
            )
            for key, path in arrays.items()
        }
    except (OSError, ValueError) as error:
        raise FacesteerError(f"cannot open the arrays of {root} for resuming: {error}") from None
    for key, array in maps.items():
        if array.shape != shapes[key] or array.dtype != np.float32:
            raise FacesteerError(
                f"{arrays[key]} has shape {array.shape}, expected {shapes[key]}; the dataset is corrupt"
            )
    if mode == "w+":
        _reserve_disk(list(arrays.values()))

    stored = tuple(space for space in ("w", "wp") if space in maps)
    chunks = (Chunk(seed, start, min(start + chunk_size, num), stored, batch_size)
              for start in range(manifest["rows_complete"], num, chunk_size))  # fmt: skip
    engine = engine or LocalEngine(generator, scorer)
    with _progress(num, manifest["rows_complete"], progress) as bar:
        for chunk, rows in engine.map(chunks):  # in row order, whichever engine computed them
            for key, values in rows.items():
                maps[key][chunk.start : chunk.stop] = values
            if "scores" in rows:
                manifest["rows_without_face"] += int(np.isnan(rows["scores"]).all(axis=1).sum())
            for array in maps.values():
                array.flush()
            manifest["rows_complete"] = chunk.stop
            write_json(root / MANIFEST, manifest)
            bar.update(chunk.stop - chunk.start)
    del maps
    return LatentDataset(root)
