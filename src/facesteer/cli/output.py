"""How commands print: tables, strict JSON, and the reports several commands share."""

from __future__ import annotations

import sys
from typing import Any

from rich.table import Table

from facesteer.cli.app import console
from facesteer.files import strict_json


def print_json(content: Any) -> None:
    sys.stdout.write(strict_json(content) + "\n")  # NaN (a score with no face) is null: --json parses strictly


def table_of(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    return table


def print_evaluation(result: dict[str, Any]) -> None:
    attributes, spaces = result["attributes"], result.get("spaces", ["z"])
    by_space = result.get("by_space", {spaces[0]: result})

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    accuracy = [
        [a, *(fmt(by_space[s]["accuracy"][a][k]) for s in spaces for k in ("validation", "all"))] for a in attributes
    ]
    columns = ["attribute", *(f"{s} {k}" for s in spaces for k in ("validation", "all"))]
    console.print(table_of("Boundary accuracy", columns, accuracy))
    for space in spaces:
        for name in ("plain", "conditioned"):
            matrix = by_space[space]["edit_effects_standardized"][name]
            console.print(
                table_of(
                    f"Edit effects in {space}, {name} boundaries (std units per unit step; rows edited, columns "
                    "measured)",
                    ["", *attributes],
                    [[f"edit {a}", *(f"{v:+.3f}" for v in row)] for a, row in zip(attributes, matrix, strict=True)],
                )
            )


def print_agreement(metrics: dict[str, float]) -> None:
    console.print(
        table_of(
            "Agreement with the teachers",
            ["metric", "value"],
            [[k, f"{v:.3f}" if isinstance(v, float) else v] for k, v in metrics.items()],
        )
    )
