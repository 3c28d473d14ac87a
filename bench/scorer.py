"""Scoring speed: the distilled ``predictor`` vs the ``teachers``, on the same generated faces, one run.

The teachers are timed in one process and in one process per core (``ParallelScorer``), the predictor at
several batch sizes with torch's default threads; each rate is the best of ``--rounds`` timings.

    python bench/scorer.py [--teacher-images 256] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from facesteer.attributes import load_scorer
from facesteer.generators import load_generator


def best_rate(function, count: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return count / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teacher-images", type=int, default=256)
    parser.add_argument("--predictor-images", type=int, default=8192)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    generator = load_generator()
    images = generator.synthesize(generator.sample_z(args.predictor_images, seed=0))
    few = images[: args.teacher_images]
    workers = os.cpu_count() or 1

    with load_scorer("teachers") as teachers:
        teachers.score(few[:8])
        serial = best_rate(lambda: teachers.score(few), len(few), 1)
    with load_scorer("teachers", workers=workers) as parallel:
        parallel.score(few[:8])
        parallel_rate = best_rate(lambda: parallel.score(few), len(few), 1)

    predictor = load_scorer("predictor")
    rates = {}
    for batch in (64, 256, 1024):
        predictor.batch_size = batch
        predictor.score(images[:batch])
        rates[batch] = best_rate(lambda: predictor.score(images), len(images), args.rounds)
    batch = max(rates, key=rates.get)

    print(f"cores: {os.cpu_count()}, torch threads: {torch.get_num_threads()}")
    print(f"teachers, 1 process:         {serial:8.1f} img/s  ({len(few)} images)")
    print(f"teachers, {workers} processes:       {parallel_rate:8.1f} img/s")
    for size, rate in rates.items():
        print(f"predictor, batch {size:5d}:     {rate:8.1f} img/s  ({len(images)} images)")
    print(
        f"predictor best: batch {batch}, {rates[batch]:.0f} img/s = {rates[batch] / parallel_rate:.0f}x the "
        f"teachers on {workers} processes ({rates[batch] / serial:.0f}x one teacher process)"
    )


if __name__ == "__main__":
    main()
