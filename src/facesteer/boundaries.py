"""InterFaceGAN boundaries: train a linear SVM per attribute, store its unit normal, condition it on others.

A boundary is a hyperplane n . z = 0 in a latent space that separates faces with and without an attribute;
its unit normal n is the editing direction (z' = z + alpha * n). Files are InterFaceGAN's: ``NAME.npy`` holds
n with shape (1, d), float32, unit norm; facesteer adds ``NAME.json`` beside it (attribute, space,
generator, conditions, sample counts, accuracies). InterFaceGAN's published ``.npy`` files load as they are.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facesteer.errors import FacesteerError
from facesteer.files import atomic_path, write_json
from facesteer.generators.base import Generator, check_made_from
from facesteer.svm import fit_linear_svm


@dataclass(frozen=True)
class ConfidentSplit:
    """Which samples InterFaceGAN's protocol uses for what (indices into the valid rows).

    Attributes:
        train_positive, train_negative, validation_positive, validation_negative: index arrays.
        remaining: the middle samples (the "all" set), with ``remaining_labels`` (bool).
    """

    train_positive: np.ndarray
    train_negative: np.ndarray
    validation_positive: np.ndarray
    validation_negative: np.ndarray
    remaining: np.ndarray
    remaining_labels: np.ndarray


#: the share of an end the confident split lets hold a score the other end also holds
MAX_TIED_SHARE = 0.05


def chosen_count(num: int, ratio: float) -> int:
    """Samples taken at each end: ``int(num * ratio)`` for 0 < ratio <= 1, else ``int(ratio)``; <= num // 2."""
    if ratio <= 0:
        raise FacesteerError(f"ratio must be > 0 (a fraction in (0, 1] or a count), got {ratio}")
    chosen = int(num * ratio) if ratio <= 1 else int(ratio)
    return min(chosen, num // 2)


def confident_split(
    scores: np.ndarray, ratio: float = 0.02, split: float = 0.7, seed: int = 0, threshold: float | None = None
) -> ConfidentSplit:
    """InterFaceGAN's sample selection on valid (finite) scores.

    Sort by score, descending (ties keep index order); the top ``chosen`` are positives and the bottom
    ``chosen`` negatives; each group is shuffled by ``numpy.random.default_rng(seed)`` (positives first);
    the first ``int(chosen * split)`` of each group train, the rest validate. The middle samples form the
    "all" set, positive where score >= (max + min) / 2, or >= ``threshold`` when given.

    Args:
        scores: (N,) finite scores.

    Raises:
        FacesteerError: constant scores, too few samples for the ratio and split, or ends that share a score
            held by more than :data:`MAX_TIED_SHARE` of an end (a few distinct values, as labels have: samples of
            one score would be labelled both ways; a handful tied at the median of a continuous score is fine).
    """
    if not 0 < split < 1:
        raise FacesteerError(f"split must be in (0, 1), got {split}")
    num = len(scores)
    chosen = chosen_count(num, ratio)
    train = int(chosen * split)
    if train < 1 or chosen - train < 1:
        raise FacesteerError(
            f"too few valid samples: {num} valid scores with ratio {ratio} give {chosen} per side, "
            f"{train} to train and {chosen - train} to validate; need at least 1 of each (sample more or raise `ratio`)"
        )
    if scores.max() == scores.min():
        raise FacesteerError(f"all {num} scores are equal ({scores.max()}); a constant attribute has no boundary")
    order = np.argsort(-scores, kind="stable")
    positive, negative = order[:chosen].copy(), order[num - chosen :].copy()
    tied = scores[positive].min()
    if tied <= scores[negative].max():
        mislabelled = min(np.sum(scores[positive] == tied), np.sum(scores[negative] == tied))
        if mislabelled > MAX_TIED_SHARE * chosen:
            above, below = int(np.sum(scores > tied)), int(np.sum(scores < tied))
            raise FacesteerError(
                f"the top and bottom {chosen} scores share the value {tied:g} ({above} samples score above it, "
                f"{below} below): lower `ratio` to at most {max(above, below)} samples per side (a ratio above 1 is "
                "a count)"
            )
    rng = np.random.default_rng(seed)
    rng.shuffle(positive)
    rng.shuffle(negative)
    remaining = order[chosen : num - chosen]
    cut = (scores.max() + scores.min()) / 2 if threshold is None else threshold
    return ConfidentSplit(
        train_positive=positive[:train],
        train_negative=negative[:train],
        validation_positive=positive[train:],
        validation_negative=negative[train:],
        remaining=remaining,
        remaining_labels=scores[remaining] >= cut,
    )


@dataclass(frozen=True)
class BoundaryFit:
    """What :func:`train_boundary` returns.

    Attributes:
        normal: (1, d) float32 unit normal of the hyperplane, pointing to higher scores.
        intercept: the SVM's intercept (InterFaceGAN drops it; edits use hyperplanes through the origin).
        train_accuracy: accuracy on the confident samples it was fit on (NFE's table reports it beside validation).
        validation_accuracy: accuracy on the held-out confident samples.
        all_accuracy: accuracy on the remaining middle samples, None if there are none.
        counts: sample counts (valid, chosen per side, train per side, validation per side, remaining).
    """

    normal: np.ndarray
    intercept: float
    train_accuracy: float
    validation_accuracy: float
    all_accuracy: float | None
    counts: dict[str, int]


def _check_codes_and_scores(codes: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes = np.asarray(codes)
    scores = np.asarray(scores)
    if codes.ndim != 2:
        raise FacesteerError(f"codes must have shape (N, d), got {codes.shape}")
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.ndim != 1:
        raise FacesteerError(f"scores must have shape (N,) or (N, 1), got {scores.shape}")
    if len(codes) != len(scores):
        raise FacesteerError(f"codes and scores differ in length: {len(codes)} codes, {len(scores)} scores")
    if not np.issubdtype(scores.dtype, np.number):
        raise FacesteerError(f"scores must be numbers, got dtype {scores.dtype}")
    scores = scores.astype(np.float64)
    if np.isinf(scores).any():
        raise FacesteerError(f"scores contain {int(np.isinf(scores).sum())} infinite values")
    return codes, scores


def train_boundary(
    codes: np.ndarray,
    scores: np.ndarray,
    ratio: float = 0.02,
    split: float = 0.7,
    seed: int = 0,
    threshold: float | None = None,
) -> BoundaryFit:
    """Train an attribute boundary with InterFaceGAN's protocol.

    Rows whose score is NaN (no face) are dropped; then :func:`confident_split` picks the samples, a linear
    SVM with C = 1 (:func:`facesteer.svm.fit_linear_svm`, equivalent to ``SVC(kernel="linear")``) is fit on
    the training samples, and the accuracies are measured with its full decision function.

    Args:
        codes: (N, d) latent codes.
        scores: (N,) or (N, 1) attribute scores; NaN = unknown.
        ratio: fraction (0 < ratio <= 1) or count (> 1) of samples taken at each end.
        split: fraction of each confident group used for training.
        seed: seed of the shuffles.
        threshold: label of the middle samples: score >= threshold (default (max + min) / 2).

    Raises:
        FacesteerError: wrong shapes, infinite scores or codes, constant scores, too few valid samples.
    """
    codes, scores = _check_codes_and_scores(codes, scores)
    valid = np.flatnonzero(~np.isnan(scores))
    if len(valid) < 2:
        raise FacesteerError(f"only {len(valid)} of {len(scores)} scores are valid (not NaN); nothing to train on")
    chosen = confident_split(scores[valid], ratio, split, seed, threshold)

    def rows(indices: np.ndarray) -> np.ndarray:
        """Codes of valid-row ``indices``, float64; only these rows are read (codes may be memory-mapped)."""
        selected = np.asarray(codes[np.sort(valid[indices])] if len(indices) else codes[:0], dtype=np.float64)
        if not np.isfinite(selected).all():
            raise FacesteerError("codes contain NaN or infinite values")
        return selected

    def labelled(positive: np.ndarray, negative: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # rows() reads in file order; keep each code with its label by sorting positives and negatives apart
        x = np.concatenate([rows(positive), rows(negative)])
        return x, np.r_[np.ones(len(positive), bool), np.zeros(len(negative), bool)]

    train_x, train_y = labelled(chosen.train_positive, chosen.train_negative)
    weights, intercept = fit_linear_svm(train_x, train_y)
    norm = np.linalg.norm(weights)
    if norm == 0:
        raise FacesteerError("the SVM found no separating direction (all weights are zero)")

    train_accuracy = float(np.mean((train_x @ weights + intercept > 0) == train_y))
    validation_x, validation_y = labelled(chosen.validation_positive, chosen.validation_negative)
    validation_accuracy = float(np.mean((validation_x @ weights + intercept > 0) == validation_y))

    all_accuracy = None
    if len(chosen.remaining):
        correct = 0
        order = np.argsort(valid[chosen.remaining], kind="stable")  # read the middle rows in file order
        for lo in range(0, len(order), 65536):
            part = order[lo : lo + 65536]
            predicted = rows(chosen.remaining[part]) @ weights + intercept > 0
            correct += int(np.sum(predicted == chosen.remaining_labels[part]))
        all_accuracy = correct / len(chosen.remaining)

    return BoundaryFit(
        normal=(weights / norm).astype(np.float32)[None, :],
        intercept=intercept / norm,
        train_accuracy=train_accuracy,
        validation_accuracy=validation_accuracy,
        all_accuracy=all_accuracy,
        counts={
            "valid": len(valid),
            "chosen_per_side": len(chosen.train_positive) + len(chosen.validation_positive),
            "train_per_side": len(chosen.train_positive),
            "validation_per_side": len(chosen.validation_positive),
            "remaining": len(chosen.remaining),
        },
    )


def read_npy(path: str | os.PathLike[str], what: str = "file") -> np.ndarray:
    """Load a ``.npy`` array without unpickling; a clear error for a missing or unreadable file, for a file that
    is not a single ``.npy`` array (an ``.npz`` archive, say), and for a header promising more data than the file
    holds (which would otherwise try to allocate it)."""
    path = Path(path)
    if not path.is_file():
        raise FacesteerError(f"{what} {path} not found")
    try:
        with path.open("rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(handle)
            if dtype.hasobject or int(np.prod(shape, dtype=np.float64)) * dtype.itemsize > path.stat().st_size:
                raise ValueError(f"its header promises {shape} {dtype}, more than the file holds")
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, TypeError) as error:
        raise FacesteerError(f"{path} is not a readable .npy array: {error}") from None


def as_unit_row(vector: np.ndarray, what: str = "direction") -> np.ndarray:
    """A direction as a float64 (1, d) unit row; accepts (d,) or (1, d)."""
    vector = np.asarray(vector, dtype=np.float64)
    if vector.ndim == 1:
        vector = vector[None, :]
    if vector.ndim != 2 or vector.shape[0] != 1:
        raise FacesteerError(f"{what} must have shape (1, d) or (d,), got {vector.shape}")
    norm = np.linalg.norm(vector)
    if not np.isfinite(norm) or norm == 0:
        raise FacesteerError(f"{what} is zero or not finite")
    return vector / norm


def project_boundary(primal: np.ndarray, *conditions: np.ndarray) -> np.ndarray:
    """Remove from ``primal`` its components along ``conditions``: conditional manipulation.

    Solves (C C^T) x = C n for the k conditions C (k, d) and returns n - C^T x, normalised: the unit vector
    closest to n that is orthogonal to every condition. For one condition this is n - (n.c) c, and for two
    InterFaceGAN's closed form.

    Args:
        primal: (1, d) or (d,) direction n.
        conditions: any number of (1, d) or (d,) directions.

    Returns:
        (1, d) float32 unit vector.

    Raises:
        FacesteerError: dimensions differ, conditions are linearly dependent, or the primal lies in their span.
    """
    n = as_unit_row(primal, "primal boundary")
    if not conditions:
        return n.astype(np.float32)
    rows = [as_unit_row(c, f"condition {i + 1}") for i, c in enumerate(conditions)]
    for i, row in enumerate(rows):
        if row.shape[1] != n.shape[1]:
            raise FacesteerError(f"condition {i + 1} has dimension {row.shape[1]}, the primal {n.shape[1]}")
    c = np.concatenate(rows)
    gram = c @ c.T
    smallest = np.linalg.eigvalsh(gram)[0]
    if smallest < 1e-6:
        raise FacesteerError(
            f"the {len(rows)} conditions are linearly dependent (smallest Gram eigenvalue {smallest:.2e}); "
            "drop the redundant one"
        )
    x = np.linalg.solve(gram, c @ n[0])
    residual = n[0] - x @ c
    if np.linalg.norm(residual) < 1e-6:
        raise FacesteerError("the primal boundary lies in the span of the conditions (parallel); nothing is left")
    return (residual / np.linalg.norm(residual)).astype(np.float32)[None, :]


#: the latent spaces whose codes a boundary trained in each space may move
EDITABLE_SPACES: dict[str, tuple[str, ...]] = {"z": ("z",), "w": ("w", "wp"), "wp": ("wp",)}


def _check_sidecar(sidecar: Any, path: Path) -> None:
    """Refuse a sidecar whose fields have the wrong types, or an unknown space."""
    if not isinstance(sidecar, dict):
        raise FacesteerError(f"{path} is corrupt: a boundary sidecar is a JSON object")
    expected = {"attribute": str, "space": str, "generator": (str, type(None)), "conditions": list, "dim": int}
    for key, kind in expected.items():
        if key in sidecar and not isinstance(sidecar[key], kind):
            raise FacesteerError(f"{path} is corrupt: {key!r} is {type(sidecar[key]).__name__}")
    if sidecar.get("space", "z") not in EDITABLE_SPACES:
        raise FacesteerError(f"{path}: unknown space {sidecar['space']!r} (z, w or wp)")
    if not all(isinstance(c, str) for c in sidecar.get("conditions", [])):
        raise FacesteerError(f"{path} is corrupt: conditions must be attribute names")


@dataclass
class Boundary:
    """A boundary's unit normal and what it was trained on.

    Attributes:
        normal: (1, d) float32 unit vector.
        attribute: the attribute it edits (positive direction = more of it).
        space: latent space of the normal (``"z"``, ``"w"``).
        generator: generator name, or None when unknown (published files).
        conditions: attributes it was made orthogonal to.
        info: everything else for the sidecar (counts, accuracies, ratio, split, seed, source run).
    """

    normal: np.ndarray
    attribute: str
    space: str = "z"
    generator: str | None = None
    conditions: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.normal.shape[1])

    def sidecar(self) -> dict[str, Any]:
        return {
            "attribute": self.attribute,
            "space": self.space,
            "generator": self.generator,
            "conditions": self.conditions,
            "dim": self.dim,
            **self.info,
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``path`` (.npy, InterFaceGAN format) and its ``.json`` sidecar, each atomically."""
        path = Path(path)
        if path.suffix != ".npy":
            raise FacesteerError(f"boundary files end in .npy, got {path}")
        with atomic_path(path) as temporary, temporary.open("wb") as handle:
            np.save(handle, np.asarray(self.normal, dtype=np.float32).reshape(1, -1))
        write_json(path.with_suffix(".json"), self.sidecar())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Boundary:
        """Read a boundary ``.npy`` (ours or InterFaceGAN's) and its sidecar when there is one.

        Without a sidecar the attribute is taken from the file name (``stylegan_ffhq_age_boundary.npy`` ->
        ``stylegan_ffhq_age``) and the space and generator are unknown.
        """
        path = Path(path)
        array = read_npy(path, "boundary file")
        if array.ndim not in (1, 2) or (array.ndim == 2 and array.shape[0] != 1):
            raise FacesteerError(f"{path} holds shape {array.shape}; a boundary has shape (1, d)")
        if not np.issubdtype(array.dtype, np.floating):
            raise FacesteerError(f"{path} holds {array.dtype} values; a boundary is floating point")
        normal = as_unit_row(array, f"boundary {path.name}").astype(np.float32)
        sidecar_path = path.with_suffix(".json")
        if sidecar_path.is_file():
            try:
                sidecar = json.loads(sidecar_path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise FacesteerError(f"{sidecar_path} is corrupt: {error}") from None
            _check_sidecar(sidecar, sidecar_path)
            known = {"attribute", "space", "generator", "conditions", "dim"}
            return cls(
                normal=normal,
                attribute=sidecar.get("attribute", path.stem),
                space=sidecar.get("space", "z"),
                generator=sidecar.get("generator"),
                conditions=list(sidecar.get("conditions", [])),
                info={k: v for k, v in sidecar.items() if k not in known},
            )
        attribute = path.stem.removesuffix("_boundary")
        return cls(normal=normal, attribute=attribute, space="w" if attribute.endswith("_w") else "z")

    def conditioned_on(self, *conditions: Boundary, info: dict[str, Any] | None = None) -> Boundary:
        """This boundary projected off ``conditions`` (:func:`project_boundary`): it edits this attribute while
        leaving theirs alone. The result keeps this one's attribute, space, generator and the weights it was made
        from (``generator_weights``), and lists every condition's attribute.

        Raises:
            FacesteerError: a condition of another space, generator or of other weights of it (where both record
                theirs), a boundary already conditioned (projecting it off new
                conditions would undo its orthogonality to the old ones, whose normals it no longer has), or what
                :func:`project_boundary` refuses.
        """
        if self.conditions:
            raise FacesteerError(
                f"this {self.attribute} boundary is already conditioned on {', '.join(self.conditions)}: condition "
                "the plain boundary on all of them at once"
            )
        for condition in conditions:
            if None not in (condition.generator, self.generator) and condition.generator != self.generator:
                raise FacesteerError(
                    f"condition {condition.attribute!r} was trained on {condition.generator}, "
                    f"{self.attribute!r} on {self.generator}: both must come from one generator"
                )
            if condition.space != self.space:
                raise FacesteerError(
                    f"condition {condition.attribute!r} was trained in {condition.space!r} space, "
                    f"{self.attribute!r} in {self.space!r}: both must be in one space"
                )
            made_from = (condition.info.get("generator_weights"), self.info.get("generator_weights"))
            if None not in made_from and made_from[0] != made_from[1]:
                raise FacesteerError(
                    f"condition {condition.attribute!r} was made from other weights ({made_from[0]}) than "
                    f"{self.attribute!r} ({made_from[1]}): both must come from one generator's weights"
                )
        normal = project_boundary(self.normal, *(c.normal for c in conditions))
        names = [c.attribute for c in conditions]
        info = dict(info or {})
        if self.info.get("generator_weights"):
            info.setdefault("generator_weights", self.info["generator_weights"])
        return Boundary(normal, self.attribute, self.space, self.generator, self.conditions + names, info)

    def check_applies_to(self, generator: Generator, space: str) -> None:
        """Refuse to move codes of ``space`` of ``generator`` along this boundary unless it was trained there.

        A ``z`` boundary moves z codes; a ``w`` boundary moves w codes, and W+ codes on every (or some) layer;
        a ``wp`` boundary (num_ws * w_dim entries) moves W+ codes. The space is checked before the dimension:
        both shipped StyleGAN2s have z_dim = w_dim, so a W boundary has the size of a Z code.

        Raises:
            FacesteerError: the boundary was trained on another generator or other weights of it (when its sidecar
                says which), the
                generator has no such space, the boundary was trained in another space, or its dimension does
                not fit.
        """
        if self.generator is not None and self.generator != generator.name:
            raise FacesteerError(
                f"boundary {self.attribute!r} was trained on {self.generator}, not {generator.name}: a direction "
                "means something only in the latent space it was trained in"
            )
        check_made_from(self.info.get("generator_weights"), generator, f"boundary {self.attribute!r}")
        if space not in generator.spaces:
            raise FacesteerError(f"{generator.name} has no {space!r} space (it has {', '.join(generator.spaces)})")
        if space not in EDITABLE_SPACES.get(self.space, (self.space,)):
            raise FacesteerError(
                f"boundary {self.attribute!r} was trained in {self.space!r} space; it cannot move {space!r} codes"
                f"{' (train one in that space: train-boundary --space ' + space + ')' if space != 'wp' else ''}"
            )
        shape = generator.space_shape(space)
        allowed = {shape[-1], int(np.prod(shape))} if space == "wp" else {shape[0]}
        if self.dim not in allowed:
            raise FacesteerError(
                f"boundary {self.attribute!r} has dimension {self.dim} but the {space!r} space of {generator.name} "
                f"has dimension {' or '.join(map(str, sorted(allowed)))}"
            )
