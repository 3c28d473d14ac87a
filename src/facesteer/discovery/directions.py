"""A set of editing directions found without labels (SeFa, GANSpace, latent discovery), and their files.

A set is K unit vectors in one latent space of one generator, strongest first, with what ranks them (SeFa's
eigenvalues, GANSpace's explained variance) and, once ``facesteer label`` has named them, a name each. On disk
a set is a folder: ``directions.npy`` (K, d) float32, one unit vector per row, and ``directions.json`` (method,
generator, space, W+ layers, values, names, and how it was made).

Each direction can be used like an InterFaceGAN boundary: :meth:`Directions.boundary` gives a
:class:`~facesteer.boundaries.Boundary` whose normal is the direction, so editing, grids and the generator and
space checks are shared with boundaries.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from facesteer import shipped
from facesteer.boundaries import Boundary, read_npy
from facesteer.errors import FacesteerError
from facesteer.files import atomic_path, write_json

VECTORS_FILE = "directions.npy"
SIDECAR_FILE = "directions.json"


@dataclass(frozen=True)
class Directions:
    """K editing directions in one latent space.

    Attributes:
        vectors: (K, d) float32, unit rows, strongest first.
        method: what found them (``"sefa"``, ``"ganspace"``, ``"sdd"``, ...).
        generator: the generator's name.
        space: ``"z"`` or ``"w"``.
        layers: the W+ rows the directions are meant for (SeFa's chosen layers), None = every row.
        values: (K,) what ranks them (eigenvalue, explained variance), or None.
        names: a name per direction (``facesteer label``), or None.
        info: everything else for the sidecar (samples, iterations, seed, timings).
    """

    vectors: np.ndarray
    method: str
    generator: str
    space: str
    layers: list[int] | None = None
    values: np.ndarray | None = None
    names: list[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        vectors = np.asarray(self.vectors, dtype=np.float64)
        if vectors.ndim != 2 or len(vectors) == 0:
            raise FacesteerError(f"directions must have shape (K, d) with K >= 1, got {vectors.shape}")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if not np.isfinite(vectors).all() or (norms == 0).any():
            raise FacesteerError("directions must be finite and non-zero")
        object.__setattr__(self, "vectors", (vectors / norms).astype(np.float32))
        if self.values is not None:
            values = np.asarray(self.values, dtype=np.float64).reshape(-1)
            if len(values) != len(vectors):
                raise FacesteerError(f"{len(values)} values for {len(vectors)} directions")
            object.__setattr__(self, "values", values)
        if self.names is not None and len(self.names) != len(vectors):
            raise FacesteerError(f"{len(self.names)} names for {len(vectors)} directions")

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def label(self, index: int) -> str:
        """The direction's name, or ``METHOD-INDEX`` when it has none."""
        if self.names is not None and self.names[index]:
            return self.names[index]
        return f"{self.method}-{index}"

    def index(self, name_or_index: str | int) -> int:
        """The row of a direction given by name (``smile``, ``sefa-3``) or index.

        Raises:
            FacesteerError: no such direction.
        """
        labels = [self.label(k) for k in range(len(self))]
        if isinstance(name_or_index, str) and name_or_index in labels:
            return labels.index(name_or_index)
        try:
            index = int(name_or_index)
        except ValueError:
            raise FacesteerError(f"no direction {name_or_index!r}; there are: {', '.join(labels)}") from None
        if not 0 <= index < len(self):
            raise FacesteerError(f"direction index {index} out of range 0..{len(self) - 1}")
        return index

    def boundary(self, name_or_index: str | int) -> Boundary:
        """A direction as a :class:`Boundary` (its normal), to edit with what edits boundaries."""
        index = self.index(name_or_index)
        info = {"method": self.method, "index": index, "layers": self.layers}
        if self.info.get("generator_weights"):
            info["generator_weights"] = self.info["generator_weights"]
        return Boundary(self.vectors[index : index + 1], self.label(index), self.space, self.generator, info=info)

    @classmethod
    def from_boundaries(cls, boundaries: list[Boundary]) -> Directions:
        """InterFaceGAN boundaries as a set (method ``interfacegan``, each named after its attribute), so they can
        be traversed and compared like discovered directions. The set records the weights its boundaries were made
        from (``generator_weights``) only when every one of them records them: one that records none cannot vouch
        for the set.

        Raises:
            FacesteerError: no boundaries, or boundaries of different generators or spaces, or made from different
                weights.
        """
        if not boundaries:
            raise FacesteerError("no boundaries given")
        first = boundaries[0]
        for boundary in boundaries[1:]:
            if (boundary.generator, boundary.space) != (first.generator, first.space):
                raise FacesteerError(
                    f"boundaries of {first.generator} in {first.space} and {boundary.generator} in "
                    f"{boundary.space} do not make one set"
                )
        vectors = np.concatenate([b.normal for b in boundaries])
        kept = ("run", "train_accuracy", "validation_accuracy", "all_accuracy", "counts", "ratio")
        sources = [{"attribute": b.attribute, "conditions": list(b.conditions),  # (the sidecar's, not in info)
                    **{k: b.info[k] for k in kept if k in b.info}} for b in boundaries]  # fmt: skip
        info: dict[str, Any] = {"boundaries": sources}
        weights = {b.info["generator_weights"] for b in boundaries if b.info.get("generator_weights")}
        if len(weights) > 1:
            made_from = ", ".join(sorted(weights))
            raise FacesteerError(
                f"boundaries of {first.generator} made from different weights ({made_from}) do not make one set"
            )
        if weights and all(b.info.get("generator_weights") for b in boundaries):
            info["generator_weights"] = weights.pop()  # what every boundary was made from
        return cls(vectors, "interfacegan", first.generator or "unknown", first.space,
                   names=[b.attribute for b in boundaries], info=info)  # fmt: skip

    def named(self, names: list[str]) -> Directions:
        """The same directions with these names."""
        return replace(self, names=list(names))

    def with_info(self, **info: Any) -> Directions:
        """The same directions with more in the sidecar."""
        return replace(self, info={**self.info, **info})

    def sidecar(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "generator": self.generator,
            "space": self.space,
            "count": len(self),
            "dim": self.dim,
            "layers": self.layers,
            "values": None if self.values is None else [float(v) for v in self.values],
            "names": self.names,
            **self.info,
        }

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write ``folder/directions.npy`` and ``folder/directions.json``, each atomically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / VECTORS_FILE) as temporary, temporary.open("wb") as handle:
            np.save(handle, self.vectors)
        write_json(folder / SIDECAR_FILE, self.sidecar())
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Directions:
        """Read a set from its folder (or its ``directions.npy``).

        Raises:
            FacesteerError: missing or corrupt files, or vectors that do not match the sidecar.
        """
        path = Path(path)
        folder = path.parent if path.name == VECTORS_FILE else path
        if not (folder / SIDECAR_FILE).is_file():
            raise FacesteerError(f"{folder} holds no directions ({SIDECAR_FILE} not found)")
        vectors = read_npy(folder / VECTORS_FILE, "directions file")
        try:
            sidecar = json.loads((folder / SIDECAR_FILE).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise FacesteerError(f"{folder / SIDECAR_FILE} is corrupt: {error}") from None
        if not isinstance(sidecar, dict) or not {"method", "generator", "space"} <= sidecar.keys():
            raise FacesteerError(f"{folder / SIDECAR_FILE} lacks method, generator or space")
        if vectors.ndim != 2 or not np.issubdtype(vectors.dtype, np.floating):
            raise FacesteerError(f"{folder / VECTORS_FILE} holds {vectors.dtype} {vectors.shape}, not (K, d) floats")
        layers, values, names = sidecar.get("layers"), sidecar.get("values"), sidecar.get("names")
        if layers is not None and not (isinstance(layers, list) and all(type(i) is int and i >= 0 for i in layers)):
            raise FacesteerError(f"{folder / SIDECAR_FILE}: layers must be a list of W+ row indices >= 0")
        if values is not None and not (isinstance(values, list) and all(isinstance(v, (int, float)) for v in values)):
            raise FacesteerError(f"{folder / SIDECAR_FILE}: values must be a list of numbers")
        if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise FacesteerError(f"{folder / SIDECAR_FILE}: names must be a list of strings")
        known = {"method", "generator", "space", "count", "dim", "layers", "values", "names"}
        return cls(
            vectors=vectors,
            method=str(sidecar["method"]),
            generator=str(sidecar["generator"]),
            space=str(sidecar["space"]),
            layers=layers,
            values=None if values is None else np.asarray(values, dtype=np.float64),
            names=names,
            info={k: v for k, v in sidecar.items() if k not in known},
        )


def shipped_directions_folder(generator: str) -> Path:
    """Where the package keeps the named directions of ``generator`` (``facesteer label`` output)."""
    return shipped.directions_folder(generator)


def load_direction_set(folder: str | os.PathLike[str] | None, generator: str) -> Directions:
    """The set in ``folder``, or the one shipped for ``generator`` when ``folder`` is None.

    Raises:
        FacesteerError: no set there (naming the generators that have one shipped).
    """
    if folder is not None:
        return Directions.load(folder)
    packaged = shipped_directions_folder(generator)
    if not (packaged / SIDECAR_FILE).is_file():
        have = shipped.shipped_for("directions")
        raise FacesteerError(
            f"no directions are shipped for {generator} (shipped for: {', '.join(have) or 'none'}); "
            "give `directions`, a folder made by `facesteer discover ...` and `facesteer label`"
        )
    return Directions.load(packaged)


def canonical_signs(vectors: np.ndarray) -> np.ndarray:
    """Flip each row so that its largest-magnitude entry is positive: eigenvectors and principal components are
    defined up to sign, and solvers differ in the sign they return; this makes the files the same everywhere."""
    vectors = np.asarray(vectors, dtype=np.float64)
    signs = np.sign(vectors[np.arange(len(vectors)), np.abs(vectors).argmax(axis=1)])
    return vectors * np.where(signs == 0, 1.0, signs)[:, None]
