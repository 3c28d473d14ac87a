"""InterFaceGAN's evaluation of a sampled run: accuracies, cosines, correlations, edit effects, report."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from facesteer.attributes import check_scorer_fits
from facesteer.attributes.base import AttributeScorer
from facesteer.attributes.identity import calibrated_threshold
from facesteer.boundaries import Boundary, project_boundary
from facesteer.engines import Engine, EngineFactory
from facesteer.errors import FacesteerError
from facesteer.evaluation.metrics import (
    cosine_matrix,
    diagonal_dominance,
    edit_effects,
    identity_kept,
    score_correlation,
)
from facesteer.evaluation.report import report_markdown
from facesteer.files import atomic_path
from facesteer.generators import Generator, load_generator_for
from facesteer.latents import LatentDataset
from facesteer.training.run_boundaries import boundary_path, train_run_boundary
from facesteer.visualize import save_edit_grid, save_heatmap, save_identity_plot


@dataclass(frozen=True)
class IdentityOptions:
    """How ``evaluate`` measures identity preservation.

    Attributes:
        embedder: the ``identity`` scorer (dlib embeddings).
        codes: held-out faces moved along each boundary (the first of the edit-effect codes).
        threshold: same-person distance; None: the calibrated one for the generator's resolution
            (:func:`facesteer.attributes.identity.calibrated_threshold`).
    """

    embedder: AttributeScorer
    codes: int = 100
    threshold: float | None = None


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
    identity: IdentityOptions | None = None,
    engine: Engine | None = None,
) -> dict[str, Any]:
    """Boundaries (trained if missing), accuracies, cosines, edit effects, identity kept and grids for one
    latent space.

    Boundaries live at :func:`boundary_path` in ``RUN/boundaries`` (``ATTRIBUTE.npy`` for z, ``ATTRIBUTE_w.npy``
    for w, InterFaceGAN's naming), and each must have been trained in ``space``; figures of a space other
    than z carry its name as a suffix.
    """
    root, attributes = dataset.root, dataset.attributes
    suffix = "" if space == "z" else f"_{space}"
    boundary_dir = root / "boundaries"
    for attribute in attributes:
        if not boundary_path(boundary_dir, attribute, space).is_file():
            boundary = train_run_boundary(dataset, attribute, space=space, ratio=ratio, split=split, seed=seed)
            boundary.save(boundary_path(boundary_dir, attribute, space))
    boundaries = {a: Boundary.load(boundary_path(boundary_dir, a, space)) for a in attributes}
    for boundary in boundaries.values():
        boundary.check_applies_to(generator, space)
    conditioned = {
        a: project_boundary(boundaries[a].normal, *(boundaries[b].normal for b in attributes if b != a))
        for a in attributes
    }
    held_out, faces = generator.map(held_out_z, space), generator.map(grid_z, space)
    spread = np.nanstd(dataset.scores(), axis=0)
    normals = {a: b.normal for a, b in boundaries.items()}
    plain = edit_effects(generator, scorer, held_out, normals, alpha, space, progress, engine)
    projected = edit_effects(generator, scorer, held_out, conditioned, alpha, space, progress, engine)
    plain_std, projected_std = plain / spread, projected / spread
    cosines = cosine_matrix(list(normals.values()))
    figures = root / "figures"
    kept = None
    if identity is not None:
        codes = held_out[: identity.codes]
        kept = {
            kind: identity_kept(generator, identity.embedder, codes, directions, identity.threshold, space=space,
                                progress=progress)
            for kind, directions in (("plain", normals), ("conditioned", conditioned))
        }  # fmt: skip
        save_identity_plot(figures / f"identity_kept{suffix}.png", kept, identity.threshold,
                           f"identity kept along {space} boundaries ({len(codes)} faces, both signs)")  # fmt: skip

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
        "identity_kept": kept,
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
    identity: IdentityOptions | None = None,
    force_scorer: bool = False,
    engine: EngineFactory | None = None,
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

    ``engine`` makes and scores the edited faces elsewhere (:func:`facesteer.engines.engine_factory`, say on a
    Ray cluster; the same numbers); by default they are made here and scored by ``scorer``.
    """
    dataset = LatentDataset(run).require_complete()
    if not dataset.attributes:
        raise FacesteerError(f"{run} has no attribute scores to evaluate")
    if tuple(scorer.attributes) != tuple(dataset.attributes):  # the edit effects' columns are the run's attributes
        recorded = (dataset.manifest.get("scorer") or {}).get("name", "its own labels")
        raise FacesteerError(f"{run} was scored for {', '.join(dataset.attributes)} ({recorded}), but scorer "
                             f"{scorer.name} measures {', '.join(scorer.attributes)}: evaluate it with the scorer it "
                             "was sampled with (`scorer`)")  # fmt: skip
    root = Path(run)
    scorer_warning = check_scorer_fits(dataset.manifest["generator"], scorer, force_scorer)
    generator = load_generator_for(dataset.manifest["generator"])
    spaces = list(spaces or [s for s in dataset.spaces if s in ("z", "w")])
    unknown = [s for s in spaces if s not in dataset.spaces or s == "wp"]
    if unknown:
        raise FacesteerError(f"cannot evaluate space(s) {unknown}: {run} stores {dataset.spaces} (wp is not supported)")
    if identity is not None and identity.threshold is None:
        identity = replace(identity, threshold=calibrated_threshold(generator.resolution, fallback=True))
    held_out = generator.sample_z(edit_codes, dataset.manifest["seed"], start=dataset.num)
    grid_z = generator.sample_z(grid_faces, dataset.manifest["seed"], start=dataset.num)
    cluster = engine(generator) if engine is not None else None
    try:
        by_space = {}
        for space in spaces:
            by_space[space] = _evaluate_space(dataset, generator, scorer, space, held_out, grid_z, alpha, ratio,
                                              split, seed, progress, identity, cluster)  # fmt: skip
    finally:
        if cluster is not None:
            cluster.close()
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
        "identity": None
        if identity is None
        else {"codes": min(identity.codes, edit_codes), "threshold": identity.threshold},
        "alpha": alpha,
        "by_space": by_space,
        "warnings": [scorer_warning] if scorer_warning else [],
    }
    with atomic_path(root / "report.md") as temporary:
        temporary.write_text(report_markdown(result))
    return result
