"""The same sample run on the local engine and on Ray, in one run: throughput of each and Ray's overhead.

For each scorer (the predictor: fast, so any overhead shows; the teachers: the slow Python loop Ray is for), the
run `sample -n NUM` of the default generator is timed four ways on this machine: the local engine with 1 and 2
scorer processes, and Ray with 1 and 2 actors of cores / actors CPUs each, so that both engines use the whole
machine (a local Ray started once, before the clock starts, as a cluster is). Reported: faces/s of each, and
Ray's time over the local engine's at the same number of workers (the overhead; the goal is at most 1.10).
Each engine's files are checked to be the same bytes. Run it on an idle machine:
`python bench/engines.py [--num-predictor 20000] [--num-teachers 600]`.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import tempfile
import time
from pathlib import Path

import ray

from facesteer.attributes import load_scorer
from facesteer.engines import ScorerSpec
from facesteer.engines.ray_cluster import RayEngine
from facesteer.generators import load_generator
from facesteer.latents import sample_dataset


def timed_run(generator, scorer_name: str, num: int, out: Path, workers: int, engine: str) -> float:
    """Seconds of one `sample` run (the scorer or the actors built before the clock starts)."""
    local_workers = workers if engine == "local" else 1
    with load_scorer(scorer_name, workers=local_workers) as scorer:
        # each engine has the whole machine: the local engine's generator runs on all cores' threads, so each
        # Ray actor gets cores / workers CPUs (its torch threads)
        cpus = max(1, (os.cpu_count() or 1) // workers)
        cluster = RayEngine(generator, ScorerSpec(scorer_name), workers, cpus=cpus) if engine == "ray" else None
        try:
            started = time.perf_counter()
            fast = scorer_name == "predictor"
            sample_dataset(generator, scorer, out, num, seed=0, chunk_size=256 if fast else 32,
                           batch_size=64 if fast else 16, progress=False, engine=cluster)  # fmt: skip
            return time.perf_counter() - started
        finally:
            if cluster is not None:
                cluster.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-predictor", type=int, default=20_000)
    parser.add_argument("--num-teachers", type=int, default=600)
    args = parser.parse_args()
    generator = load_generator()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="warning", log_to_driver=False)
    print(f"# {generator.name}, {os.cpu_count()} cores, local Ray {ray.__version__}")
    print("| scorer | faces | local 1 | local 2 | Ray 1 | Ray 2 | Ray / local, 1 worker | Ray / local, 2 workers |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    try:
        for scorer, num in (("predictor", args.num_predictor), ("teachers", args.num_teachers)):
            with tempfile.TemporaryDirectory() as folder:
                seconds = {}
                for engine in ("local", "ray"):
                    for workers in (1, 2):
                        out = Path(folder) / f"{engine}-{workers}"
                        seconds[engine, workers] = timed_run(generator, scorer, num, out, workers, engine)
                runs = [Path(folder) / name for name in ("local-1", "local-2", "ray-1", "ray-2")]
                same = all(filecmp.cmp(runs[0] / f, run / f, shallow=False)
                           for run in runs[1:] for f in ("z.npy", "scores.npy", "manifest.json"))  # fmt: skip
            rates = {key: num / value for key, value in seconds.items()}
            print(f"| {scorer} | {num:,} | {rates['local', 1]:.0f}/s | {rates['local', 2]:.0f}/s | "
                  f"{rates['ray', 1]:.0f}/s | {rates['ray', 2]:.0f}/s | "
                  f"{seconds['ray', 1] / seconds['local', 1]:.2f} | {seconds['ray', 2] / seconds['local', 2]:.2f} |"
                  + ("" if same else "  FILES DIFFER"), flush=True)  # fmt: skip
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
