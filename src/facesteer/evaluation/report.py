"""The markdown report of ``facesteer evaluate`` (``RUN/report.md``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


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


def _accuracy(value: float | None) -> str:
    """A table cell: three decimals, or "-" for a boundary that records none (conditioned, or published)."""
    return "-" if value is None else f"{value:.3f}"


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
            row += [_accuracy(entry["validation"]), _accuracy(entry["all"])]
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


def identity_comparison(kept: dict[str, dict[str, list[dict[str, float]]]]) -> dict[str, int]:
    """InterFaceGAN's claim, counted: in how many (boundary, alpha) cells does the conditioned boundary keep
    identity at least as often as the plain one?"""
    cells = [
        (plain["kept"], conditioned["kept"])
        for name, rows in kept["plain"].items()
        for plain, conditioned in zip(rows, kept["conditioned"][name], strict=True)
    ]
    return {"cells": len(cells), "conditioned_at_least_as_good": sum(c >= p for p, c in cells)}


def _identity_section(result: dict[str, Any]) -> str:
    """Section 5: identity kept along plain and conditioned boundaries (empty when not measured)."""
    if not result.get("identity"):
        return ""
    threshold, codes = result["identity"]["threshold"], result["identity"]["codes"]
    parts = []
    for space in result.get("spaces", ["z"]):
        kept = result["by_space"][space]["identity_kept"]
        alphas = [row["alpha"] for row in next(iter(kept["plain"].values()))]
        header = ["boundary", "kind", *(f"kept at {a:g}" for a in alphas), *(f"lost at {a:g}" for a in alphas),
                  *(f"mean distance at {a:g}" for a in alphas)]  # fmt: skip
        rows = [
            [name, kind, *(f"{row['kept']:.3f}" for row in by_name[name]),
             *(f"{row['lost']:.3f}" for row in by_name[name]),
             *(f"{row['mean_distance']:.3f}" for row in by_name[name])]
            for name in kept["plain"]
            for kind, by_name in kept.items()
        ]  # fmt: skip
        counted = identity_comparison(kept)
        suffix = "" if space == "z" else f"_{space}"
        parts.append(
            f"**{space} space.** Conditioned boundaries keep identity at least as often as plain ones in "
            f"{counted['conditioned_at_least_as_good']} of {counted['cells']} (boundary, |alpha|) cells.\n\n"
            f"{_markdown_table(header, rows)}\n\n![](figures/identity_kept{suffix}.png)\n"
        )
    return f"""## 5. Identity kept: does an edit keep the person?

{codes} held-out faces moved by +alpha and -alpha along each boundary; an edited face keeps its identity when
the distance of its dlib face embedding to the original's is under {threshold:.3f} (the calibrated threshold
that keeps 95 % of same-person pairs of held-out photos at the generator's size, `facesteer check-identity`).
Shares are over the faces whose original has a face found; an edit that loses the face counts as not kept.
InterFaceGAN's claim: conditioned edits keep identity at least as well as plain ones.

{"".join(parts)}
"""


def report_markdown(result: dict[str, Any]) -> str:
    attributes = result["attributes"]
    accuracy_rows = []
    for a in attributes:
        entry = result["accuracy"][a]
        counts = entry["counts"] or {}
        accuracy_rows.append(
            [
                a,
                _accuracy(entry["validation"]),
                _accuracy(entry["all"]),
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
{"".join(f"{chr(10)}**Warning:** {w}{chr(10)}" for w in result.get("warnings", []))}

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

{_identity_section(result)}
## 6. Edit grids

Rows: held-out faces; first column: the original (red frame); then signed distances -3 to +3 from the boundary.

{grids}"""
