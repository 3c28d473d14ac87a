"""The two-stage paper's Table 1 and more: per attribute, the best |r| of each method's directions and the
largest off-target |r| of that same direction, from the sidecars `facesteer label` wrote.

    python bench/discovery_compare.py runs/disc-dcgan [--methods sefa ganspace sdd shp hdp dth dtj interfacegan]

Reads FOLDER/METHOD/labelled/directions.json for each method. ``au12`` and ``smile`` are one measurement (the
mean of MediaPipe's mouthSmile blendshapes), so neither counts as the other's off-target attribute.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from facesteer.discovery.traversal import SAME_MEASURE, UNSIGNED


def best_and_off_target(correlation: np.ndarray, attributes: list[str], attribute: str) -> tuple[float, float, int]:
    """(best |r| for ``attribute``, the largest |r| of another attribute along that direction, the direction),
    as ``TraversalTable.best`` counts them."""
    column = attributes.index(attribute)
    magnitude = np.abs(correlation)
    if np.isnan(magnitude[:, column]).all():
        return float("nan"), float("nan"), -1
    direction = int(np.nanargmax(magnitude[:, column]))
    others = [i for i, name in enumerate(attributes) if i != column and name not in UNSIGNED
              and frozenset({name, attribute}) not in SAME_MEASURE]  # fmt: skip
    return float(magnitude[direction, column]), float(np.nanmax(magnitude[direction, others])), direction


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--methods", nargs="+",
                        default=["sefa", "ganspace", "sdd", "shp", "hdp", "dth", "dtj", "interfacegan"])  # fmt: skip
    args = parser.parse_args()
    tables = {}
    for method in args.methods:
        sidecar = args.folder / method / "labelled" / "directions.json"
        if sidecar.is_file():
            content = json.loads(sidecar.read_text())
            tables[method] = (content, np.array(content["traversal"]["correlation"], dtype=float))
    if not tables:
        raise SystemExit(f"no labelled direction sets under {args.folder}")
    attributes = next(iter(tables.values()))[0]["traversal"]["attributes"]
    print(f"{args.folder}: best |r| / largest off-target |r| of that direction")
    header = "| attribute | " + " | ".join(tables) + " |"
    print(header)
    print("|" + " --- |" * (len(tables) + 1))
    means = {method: [] for method in tables}
    for attribute in attributes:
        cells = []
        for method, (content, correlation) in tables.items():
            if attribute not in content["traversal"]["attributes"]:
                cells.append("-")
                continue
            best, off, _ = best_and_off_target(correlation, content["traversal"]["attributes"], attribute)
            cells.append("-" if np.isnan(best) else f"{best:.2f} / {off:.2f}")
            if not np.isnan(best):
                means[method].append((best, off))
        print(f"| {attribute} | " + " | ".join(cells) + " |")
    mean_cells = [f"{np.mean([b for b, _ in v]):.3f} / {np.mean([o for _, o in v]):.3f}" if v else "-"
                  for v in means.values()]  # fmt: skip
    print("| **mean** | " + " | ".join(mean_cells) + " |")
    details = ", ".join(
        f"{method}: {str(content['steps']) + ' steps' if 'steps' in content else 'closed form'}, "
        f"{content.get('num')} walks, K {content['count']}"
        for method, (content, _) in tables.items()
    )
    print(details)


if __name__ == "__main__":
    main()
