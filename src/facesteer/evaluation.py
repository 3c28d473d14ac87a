"""Evaluations: a scorer against real labels, and InterFaceGAN's evaluation of boundaries."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from facesteer.attributes.base import AttributeScorer
from facesteer.boundaries import Boundary, as_unit_row, project_boundary, train_boundary
from facesteer.datasets import utkface_faces
from facesteer.editing import shift
from facesteer.errors import FacesteerError
from facesteer.generators import Generator, load_generator_for
from facesteer.images import load_image
from facesteer.latents import LatentDataset
from facesteer.visualize import save_edit_grid, save_heatmap


def check_scorer_on_utkface(
    scorer: AttributeScorer,
    folder: str | os.PathLike[str],
    num: int = 500,
    seed: int = 0,
    min_age: int = 15,
    progress: bool = True,
) -> dict[str, Any]:
    """Gender accuracy and age MAE of ``scorer`` on a fixed random subset of UTKFace photos.

    The subset is ``num`` photos drawn without replacement by ``numpy.random.default_rng(seed)`` from the
    well-labelled files sorted by name. Faces the scorer cannot find are counted and left out.

    Returns:
        ``{"adults": {...}, "all": {...}}``, each with ``faces``, ``gender_accuracy`` and ``age_mae``
        (years), ``adults`` being the faces aged ``min_age`` or more; plus ``num``, ``no_face``.
    """
    for needed in ("age", "gender"):
        if needed not in scorer.attributes:
            raise FacesteerError(f"scorer {scorer.name} does not predict {needed}")
    faces = utkface_faces(folder)
    if num > len(faces):
        raise FacesteerError(f"asked for {num} photos but {folder} has only {len(faces)}")
    chosen = sorted(np.random.default_rng(seed).choice(len(faces), size=num, replace=False))
    age_col, gender_col = scorer.attributes.index("age"), scorer.attributes.index("gender")
    rows = []
    for index in tqdm(chosen, desc="scoring photos", unit="img", disable=not progress):
        face = faces[index]
        scores = scorer.score(load_image(face.path)[None])[0]
        rows.append((face.age, face.male, scores[age_col], scores[gender_col]))
    table = np.array(rows, dtype=np.float64)
    found = table[~np.isnan(table[:, 3])]

    def summary(subset: np.ndarray) -> dict[str, float | int]:
        return {
            "faces": len(subset),
            "gender_accuracy": float(np.mean((subset[:, 3] >= 0.5) == (subset[:, 1] == 1))),
            "age_mae": float(np.mean(np.abs(subset[:, 2] - subset[:, 0]))),
        }

    return {
        "num": num,
        "seed": seed,
        "no_face": int(len(table) - len(found)),
        "min_age": min_age,
        "adults": summary(found[found[:, 0] >= min_age]),
        "all": summary(found),
    }


# --- InterFaceGAN evaluation: accuracies, boundary cosines, score correlations, edit effects ---------------


def train_run_boundary(
    dataset: LatentDataset,
    attribute: str,
    scores: np.ndarray | None = None,
    space: str = "z",
    ratio: float = 0.02,
    split: float = 0.7,
    seed: int = 0,
    info: dict[str, Any] | None = None,
) -> Boundary:
    """Train one boundary on a run's codes: on its scores for ``attribute``, or on the given ``scores``
    (N,) or (N, 1) for a custom attribute. The returned Boundary carries counts and accuracies.

    W+ codes (N, num_ws, w_dim) are flattened: a W+ boundary has num_ws * w_dim entries, one direction per layer.
    """
    codes = dataset.codes(space)
    fit = train_boundary(
        codes.reshape(len(codes), -1),
        dataset.scores(attribute) if scores is None else scores,
        ratio=ratio,
        split=split,
        seed=seed,
    )
    return Boundary(
        normal=fit.normal,
        attribute=attribute,
        space=space,
        generator=dataset.manifest["generator"]["name"],
        info={
            "validation_accuracy": fit.validation_accuracy,
            "all_accuracy": fit.all_accuracy,
            "counts": fit.counts,
            "ratio": ratio,
            "split": split,
            "seed": seed,
            "run": str(dataset.root),
            **(info or {}),
        },
    )


def train_all_boundaries(
    dataset: LatentDataset,
    out_dir: str | os.PathLike[str],
    attributes: Sequence[str] | None = None,
    space: str = "z",
    ratio: float = 0.02,
    split: float = 0.7,
    seed: int = 0,
) -> dict[str, Boundary]:
    """Train and save one boundary per attribute of ``dataset`` as ``out_dir/ATTRIBUTE.npy`` (+ .json)."""
    boundaries = {}
    for attribute in attributes or dataset.attributes:
        boundary = train_run_boundary(dataset, attribute, space=space, ratio=ratio, split=split, seed=seed)
        boundary.save(Path(out_dir) / f"{attribute}.npy")
        boundaries[attribute] = boundary
    return boundaries


def cosine_matrix(normals: Sequence[np.ndarray]) -> np.ndarray:
    """(k, k) cosines between directions, each (1, d) or (d,)."""
    stacked = np.concatenate([as_unit_row(n) for n in normals])
    return stacked @ stacked.T


def score_correlation(scores: np.ndarray) -> np.ndarray:
    """(k, k) Pearson correlation of score columns (N, k), each pair over the rows where both are known."""
    scores = np.asarray(scores, dtype=np.float64)
    count = scores.shape[1]
    matrix = np.eye(count)
    for i in range(count):
        for j in range(i + 1, count):
            both = ~np.isnan(scores[:, i]) & ~np.isnan(scores[:, j])
            a, b = scores[both, i], scores[both, j]
            value = np.corrcoef(a, b)[0, 1] if both.sum() > 2 and a.std() > 0 and b.std() > 0 else np.nan
            matrix[i, j] = matrix[j, i] = value
    return matrix


def edit_effects(
    generator: Generator,
    scorer: AttributeScorer,
    codes: np.ndarray,
    directions: dict[str, np.ndarray],
    alpha: float = 2.0,
    space: str = "z",
    progress: bool = True,
) -> np.ndarray:
    """Mean change of every attribute per unit step along each direction, by central differences.

    Each code moves to z + alpha*n and z - alpha*n; both faces are scored and the effect is the mean over codes
    (with a face found both times) of (score(z + alpha*n) - score(z - alpha*n)) / (2 alpha).

    Args:
        codes: (M, d) held-out codes.
        directions: name -> (1, d) direction.

    Returns:
        (len(directions), len(scorer.attributes)) float64, in each attribute's own units per unit step.
    """
    effects = np.full((len(directions), len(scorer.attributes)), np.nan)
    bar = tqdm(total=len(directions) * 2 * len(codes), desc="edit effects", unit="img", disable=not progress)
    for row, direction in enumerate(directions.values()):
        scores = []
        for sign in (1.0, -1.0):
            images = generator.synthesize(shift(codes, direction, sign * alpha), space)
            scores.append(scorer.score(images))
            bar.update(len(codes))
        difference = (scores[0] - scores[1]) / (2 * alpha)
        with np.errstate(invalid="ignore"):
            effects[row] = np.nanmean(difference, axis=0)
    bar.close()
    return effects


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _matrix_table(matrix: np.ndarray, rows: Sequence[str], columns: Sequence[str], fmt: str = "{:+.2f}") -> str:
    body = [
        [name] + ["-" if np.isnan(v) else fmt.format(v) for v in values]
        for name, values in zip(rows, matrix, strict=True)
    ]
    return _markdown_table(["", *columns], body)


def diagonal_dominance(effects: np.ndarray) -> dict[str, float]:
    """Summaries of a square standardized effect matrix: is each edit mostly about its own attribute?"""
    diagonal = np.abs(np.diag(effects))
    off = np.abs(effects - np.diag(np.diag(effects)))
    return {
        "mean_abs_diagonal": float(diagonal.mean()),
        "mean_abs_off_diagonal": float(off.sum() / (off.size - len(diagonal))),
        "rows_where_diagonal_is_largest": int(np.sum(diagonal >= off.max(axis=1))),
    }


def _evaluate_space(
    dataset: LatentDataset,
    generator: Generator,
    scorer: AttributeScorer,
    space: str,
    held_out_z: np.ndarray,
    grid_z: np.ndarray,
    alpha: float,
    ratio: float,
    split: float,
    seed: int,
    progress: bool,
) -> dict[str, Any]:
    """Boundaries (trained if missing), accuracies, cosines, edit effects and grids for one latent space.

    Boundaries live in ``RUN/boundaries/ATTRIBUTE.npy`` for z and ``ATTRIBUTE_w.npy`` for w (InterFaceGAN's
    naming); figures of a space other than z carry its name as a suffix.
    """
    root, attributes = dataset.root, dataset.attributes
    suffix = "" if space == "z" else f"_{space}"
    boundary_dir = root / "boundaries"
    missing = [a for a in attributes if not (boundary_dir / f"{a}{suffix}.npy").is_file()]
    for attribute in missing:
        boundary = train_run_boundary(dataset, attribute, space=space, ratio=ratio, split=split, seed=seed)
        boundary.save(boundary_dir / f"{attribute}{suffix}.npy")
    boundaries = {a: Boundary.load(boundary_dir / f"{a}{suffix}.npy") for a in attributes}
    dimension = generator.space_shape(space)[0]
    for boundary in boundaries.values():
        boundary.check_matches(dimension, space, generator.name)
    conditioned = {
        a: project_boundary(boundaries[a].normal, *(boundaries[b].normal for b in attributes if b != a))
        for a in attributes
    }
    to_space = (lambda z: z) if space == "z" else (lambda z: generator.map(z, space))
    held_out, faces = to_space(held_out_z), to_space(grid_z)
    spread = np.nanstd(dataset.scores(), axis=0)
    normals = {a: b.normal for a, b in boundaries.items()}
    plain = edit_effects(generator, scorer, held_out, normals, alpha, space=space, progress=progress)
    projected = edit_effects(generator, scorer, held_out, conditioned, alpha, space=space, progress=progress)
    plain_std, projected_std = plain / spread, projected / spread
    cosines = cosine_matrix(list(normals.values()))

    figures = root / "figures"
    save_heatmap(figures / f"boundary_cosines{suffix}.png", cosines, attributes, attributes,
                 f"cosine between {space} boundaries")  # fmt: skip
    for name, matrix in [("plain", plain_std), ("conditioned", projected_std)]:
        save_heatmap(
            figures / f"edit_effects_{name}{suffix}.png",
            matrix,
            [f"edit {a}" for a in attributes],
            attributes,
            f"{name} {space} boundaries: change per unit step (std units)",
        )
    for attribute in attributes:
        save_edit_grid(figures / f"edit_{attribute}{suffix}.png", generator, faces, normals[attribute], space=space)
        save_edit_grid(
            figures / f"edit_{attribute}{suffix}_conditioned.png", generator, faces, conditioned[attribute], space=space
        )
    return {
        "space": space,
        "accuracy": {
            a: {
                "validation": b.info.get("validation_accuracy"),
                "all": b.info.get("all_accuracy"),
                "counts": b.info.get("counts"),
            }
            for a, b in boundaries.items()
        },
        "boundary_cosines": cosines.tolist(),
        "score_std": spread.tolist(),
        "edit_effects": {"plain": plain.tolist(), "conditioned": projected.tolist()},
        "edit_effects_standardized": {"plain": plain_std.tolist(), "conditioned": projected_std.tolist()},
        "dominance": {"plain": diagonal_dominance(plain_std), "conditioned": diagonal_dominance(projected_std)},
    }


def evaluate_run(
    run: str | os.PathLike[str],
    scorer: AttributeScorer,
    edit_codes: int = 500,
    alpha: float = 2.0,
    grid_faces: int = 4,
    ratio: float = 0.02,
    split: float = 0.7,
    seed: int = 0,
    progress: bool = True,
    spaces: Sequence[str] | None = None,
) -> dict[str, Any]:
    """InterFaceGAN's evaluation of a sampled run, written to ``RUN/report.md`` with PNG figures.

    Uses the boundaries in ``RUN/boundaries`` (trained there first if missing) and their conditioned versions
    (each projected off all the others), in every single-vector space the run stores (z, and w for style-based
    generators) unless ``spaces`` says otherwise. The held-out codes are rows ``num .. num + edit_codes - 1``
    of the run's seed (mapped to w for the w space): never sampled into the run, so never used for training.

    Returns:
        The report's numbers. Top level: the first space (z), as accuracies, cosine matrix, plain and
        conditioned edit effects (raw and standardized by each attribute's std over the run) and dominance
        summaries, plus the score correlations; ``by_space`` holds the same per space, for side-by-side tables.
    """
    dataset = LatentDataset(run).require_complete()
    if not dataset.attributes:
        raise FacesteerError(f"{run} has no attribute scores to evaluate")
    root = Path(run)
    generator = load_generator_for(dataset.manifest["generator"])
    spaces = list(spaces or [s for s in dataset.spaces if s in ("z", "w")])
    unknown = [s for s in spaces if s not in dataset.spaces or s == "wp"]
    if unknown:
        raise FacesteerError(f"cannot evaluate space(s) {unknown}: {run} stores {dataset.spaces} (wp is not supported)")
    held_out = generator.sample_z(edit_codes, dataset.manifest["seed"], start=dataset.num)
    grid_z = generator.sample_z(grid_faces, dataset.manifest["seed"], start=dataset.num)
    by_space = {
        space: _evaluate_space(dataset, generator, scorer, space, held_out, grid_z, alpha, ratio, split, seed, progress)
        for space in spaces
    }
    correlations = score_correlation(dataset.scores())
    save_heatmap(root / "figures" / "score_correlations.png", correlations, dataset.attributes, dataset.attributes,
                 "correlation of scores")  # fmt: skip
    result = {
        "run": str(root),
        "generator": generator.name,
        "samples": dataset.num,
        "labelled_by": (dataset.manifest["scorer"] or {}).get("name"),
        "scorer": scorer.name,
        "attributes": dataset.attributes,
        "spaces": spaces,
        **{k: v for k, v in by_space[spaces[0]].items() if k != "space"},
        "score_correlations": correlations.tolist(),
        "edit_codes": edit_codes,
        "alpha": alpha,
        "by_space": by_space,
    }
    (root / "report.md").write_text(_report_markdown(result))
    return result


def _spaces_section(result: dict[str, Any]) -> str:
    """Accuracy and edit-effect summaries of every evaluated space side by side (empty for one space)."""
    spaces = result.get("spaces", ["z"])
    if len(spaces) < 2:
        return ""
    by_space, attributes = result["by_space"], result["attributes"]
    header = ["attribute"] + [f"{space} {kind}" for space in spaces for kind in ("validation", "all")]
    rows = []
    for a in attributes:
        row = [a]
        for space in spaces:
            entry = by_space[space]["accuracy"][a]
            row += [f"{entry['validation']:.3f}", "-" if entry["all"] is None else f"{entry['all']:.3f}"]
        rows.append(row)
    summary = [
        [space, kind, d["rows_where_diagonal_is_largest"], f"{d['mean_abs_diagonal']:.3f}",
         f"{d['mean_abs_off_diagonal']:.3f}"]
        for space in spaces
        for kind, d in by_space[space]["dominance"].items()
    ]  # fmt: skip
    matrices = "\n\n".join(
        f"Edit effects in {space}, {kind} boundaries (std units per unit step):\n\n"
        + _matrix_table(
            np.array(by_space[space]["edit_effects_standardized"][kind]),
            [f"edit {a}" for a in attributes],
            attributes,
            "{:+.3f}",
        )
        for space in spaces[1:]
        for kind in ("plain", "conditioned")
    )
    return f"""### Spaces side by side

Boundaries trained on the same samples in each latent space (InterFaceGAN: W is more disentangled than Z).

{_markdown_table(header, rows)}

Edit effects by space (rows: edit kind; diagonal largest = how many edits change their own attribute most):

{_markdown_table(["space", "boundaries", "diagonal largest", "mean abs diagonal", "mean abs off-diagonal"], summary)}

{matrices}

"""


def _report_markdown(result: dict[str, Any]) -> str:
    attributes = result["attributes"]
    accuracy_rows = []
    for a in attributes:
        entry = result["accuracy"][a]
        counts = entry["counts"] or {}
        all_accuracy = "-" if entry["all"] is None else f"{entry['all']:.3f}"
        accuracy_rows.append(
            [
                a,
                f"{entry['validation']:.3f}",
                all_accuracy,
                counts.get("train_per_side", "-"),
                counts.get("validation_per_side", "-"),
                counts.get("remaining", "-"),
            ]
        )
    plain, conditioned = (np.array(result["edit_effects_standardized"][k]) for k in ("plain", "conditioned"))
    raw = np.array(result["edit_effects"]["plain"])
    dominance = result["dominance"]
    edits = [f"edit {a}" for a in attributes]
    grids = "\n".join(
        f"**{a}** (plain, then conditioned on the others)\n\n![](figures/edit_{a}.png)\n\n"
        f"![](figures/edit_{a}_conditioned.png)\n"
        for a in attributes
    )
    return f"""# facesteer evaluation of `{result["run"]}`

Generator `{result["generator"]}`, {result["samples"]} samples labelled by `{result["labelled_by"]}`; edit
effects measured by `{result["scorer"]}`.

## 1. Boundary accuracy (InterFaceGAN Table 1)

Validation: held-out confident samples. All: the remaining middle samples, labelled by the mid-range cut.

{_markdown_table(["attribute", "validation", "all", "train / side", "validation / side", "remaining"], accuracy_rows)}

{_spaces_section(result)}
## 2. Cosine between boundaries (Table 2)

{_matrix_table(np.array(result["boundary_cosines"]), attributes, attributes)}

![](figures/boundary_cosines.png)

## 3. Correlation of the attribute scores over the sampled set (Table 3)

{_matrix_table(np.array(result["score_correlations"]), attributes, attributes)}

![](figures/score_correlations.png)

## 4. Edit effects: does a boundary edit what it claims?

{result["edit_codes"]} held-out codes moved by ±{result["alpha"]} along each boundary and re-scored by
`{result["scorer"]}`. Entries: mean change of the measured attribute (columns) per unit step along the edited
boundary (rows), divided by that attribute's standard deviation over the sampled set.

Plain boundaries (diagonal largest in {dominance["plain"]["rows_where_diagonal_is_largest"]} of {len(attributes)}
rows; mean |diagonal| {dominance["plain"]["mean_abs_diagonal"]:.3f}, mean |off-diagonal|
{dominance["plain"]["mean_abs_off_diagonal"]:.3f}):

{_matrix_table(plain, edits, attributes, "{:+.3f}")}

Conditioned boundaries, each projected off all the others (diagonal largest in
{dominance["conditioned"]["rows_where_diagonal_is_largest"]} of {len(attributes)} rows; mean |diagonal|
{dominance["conditioned"]["mean_abs_diagonal"]:.3f}, mean |off-diagonal|
{dominance["conditioned"]["mean_abs_off_diagonal"]:.3f}):

{_matrix_table(conditioned, edits, attributes, "{:+.3f}")}

![](figures/edit_effects_plain.png) ![](figures/edit_effects_conditioned.png)

The same plain effects in each attribute's own units per unit step (pose: degrees, age: years, others: 0-1):

{_matrix_table(raw, edits, attributes, "{:+.3f}")}

## 5. Edit grids

Rows: held-out faces; first column: the original (red frame); then signed distances -3 to +3 from the boundary.

{grids}"""
