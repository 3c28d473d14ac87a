"""InterFaceGAN at the paper's scale on this machine: sample + score, five boundaries, evaluation.

Runs the documented commands as separate processes and prints each stage's wall time and peak resident memory
(of the stage's main process; the teachers' worker processes of the evaluation are listed on their own):

    facesteer sample --num N --seed 0 --scorer predictor --out DIR
    facesteer train-boundary DIR --all
    facesteer evaluate DIR --scorer teachers          # edit effects verified by the teachers, not the predictor

    python bench/paper_scale.py [--num 500000] [--out runs/paper]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

FACESTEER = [sys.executable, "-m", "facesteer.cli"]


def run_stage(name: str, arguments: list[str]) -> tuple[float, float]:
    """Run one facesteer command; return (seconds, peak RSS of its main process in MiB)."""
    print(f"--- {name}: facesteer {' '.join(arguments)}", flush=True)
    start = time.perf_counter()
    process = subprocess.Popen([*FACESTEER, *arguments])
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name} failed with exit status {os.waitstatus_to_exitcode(status)}")
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num", type=int, default=500_000)
    parser.add_argument("--out", type=Path, default=Path("runs/paper"))
    parser.add_argument("--edit-codes", type=int, default=500)
    parser.add_argument("--fresh", action="store_true", help="delete --out first (otherwise a finished run is reused)")
    args = parser.parse_args()
    if args.fresh and args.out.exists():
        shutil.rmtree(args.out)

    stages = [
        (
            "sample + score (predictor)",
            [
                "sample",
                "--num",
                str(args.num),
                "--seed",
                "0",
                "--scorer",
                "predictor",
                "--batch-size",
                "256",
                "--chunk-size",
                "4096",
                "-q",
                "--out",
                str(args.out),
            ],
        ),
        ("train 5 boundaries", ["train-boundary", str(args.out), "--all"]),
        (
            "evaluate (teachers)",
            ["evaluate", str(args.out), "--scorer", "teachers", "--edit-codes", str(args.edit_codes)],
        ),
    ]
    results = []
    for name, arguments in stages:
        results.append((name, *run_stage(name, arguments)))

    print(f"\npaper-scale run: {args.num} samples, {os.cpu_count()} cores")
    for name, seconds, rss in results:
        print(f"{name:30s} {seconds / 60:7.2f} min   peak RSS {rss:7.0f} MiB")
    total = sum(seconds for _, seconds, _ in results)
    print(f"{'total':30s} {total / 60:7.2f} min   peak RSS {max(r for *_, r in results):7.0f} MiB (largest stage)")


if __name__ == "__main__":
    main()
