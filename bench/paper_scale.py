"""InterFaceGAN at the paper's scale on this machine: sample + score, five boundaries, evaluation.

Runs the documented commands as separate processes and prints, for each stage, its wall time and two peaks of
resident memory that include the scorer worker processes (multiprocessing "spawn") a stage may start:

- tree RSS peak: the highest value over the stage of the summed RSS (VmRSS) of the stage's process and all its
  live descendants, sampled every ``--rss-interval`` seconds (0.2) by a thread of this script from /proc. Pages
  shared between processes (libraries) count once per process, and a peak shorter than the interval can be
  missed (so this can read below the next figure); "procs" is the most processes that were alive at once;
- largest process: the kernel's high-water RSS of the single largest process of the tree (ru_maxrss from
  ``wait4`` on the stage's process, which covers that process and the descendants it reaped), exact but not a
  sum.

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
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from machine import detect_cpu  # bench/machine.py (this script's folder is on sys.path)

FACESTEER = [sys.executable, "-m", "facesteer.cli"]
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
MIB = 2**20
# /proc/PID/task/TID/children exists when the kernel has CONFIG_PROC_CHILDREN; otherwise every /proc/*/stat is read
HAVE_CHILDREN_FILES = Path(f"/proc/self/task/{os.getpid()}/children").exists()


def _children(pid: int) -> list[int]:
    """Child process ids of ``pid`` (of all its threads: a child belongs to the thread that started it)."""
    children = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for tid in threads:
        try:
            children += [int(child) for child in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
        except OSError:
            continue
    return children


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process, from /proc/*/stat (field 4, after the parenthesised name)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return parents


def process_tree(root: int) -> list[int]:
    """``root`` and all its live descendants."""
    if HAVE_CHILDREN_FILES:
        tree, frontier = [root], [root]
        while frontier:
            frontier = [child for pid in frontier for child in _children(pid)]
            tree += frontier
        return tree
    parents = _parents()
    tree, members = [root], {root}
    grown = True
    while grown:
        new = [pid for pid, parent in parents.items() if parent in members and pid not in members]
        tree += new
        members.update(new)
        grown = bool(new)
    return tree


def rss_bytes(pid: int) -> int:
    """Resident set size of one process (0 once it has exited)."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return 0


class TreeRssSampler:
    """Samples the summed RSS of a process and its live descendants every ``interval`` seconds, in a thread."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        self.root, self.interval = root, interval
        self.peak_bytes = 0
        self.most_processes = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        tree = process_tree(self.root)
        rss = [rss_bytes(pid) for pid in tree]
        alive = sum(1 for value in rss if value > 0)
        self.samples += 1
        self.most_processes = max(self.most_processes, alive)
        self.peak_bytes = max(self.peak_bytes, sum(rss))

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> TreeRssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass(frozen=True)
class StageResult:
    name: str
    seconds: float
    tree_peak_mib: float  # peak of the sampled sum of RSS over the process tree
    most_processes: int  # most processes of the tree alive at one sample
    largest_process_mib: float  # ru_maxrss of wait4: the largest single process of the tree


def run_stage(name: str, arguments: list[str], interval: float = 0.2) -> StageResult:
    """Run one facesteer command; return its time and the memory peaks of its process tree."""
    print(f"--- {name}: facesteer {' '.join(arguments)}", flush=True)
    start = time.perf_counter()
    process = subprocess.Popen([*FACESTEER, *arguments])
    with TreeRssSampler(process.pid, interval) as sampler:
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: tell Popen, so it does not wait again
    if process.returncode != 0:
        raise SystemExit(f"{name} failed with exit status {process.returncode}")
    # ru_maxrss is in KiB on Linux
    return StageResult(name, seconds, sampler.peak_bytes / MIB, sampler.most_processes, usage.ru_maxrss / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num", type=int, default=500_000)
    parser.add_argument("--out", type=Path, default=Path("runs/paper"))
    parser.add_argument("--edit-codes", type=int, default=500)
    parser.add_argument("--fresh", action="store_true", help="delete --out first (otherwise a finished run is reused)")
    parser.add_argument("--rss-interval", type=float, default=0.2, help="seconds between RSS samples of the tree")
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
    results = [run_stage(name, arguments, args.rss_interval) for name, arguments in stages]

    print(f"\npaper-scale run: {args.num} samples")
    print(f"machine: {detect_cpu().describe()}")
    print(f"{'stage':30s} {'time':>11s}   {'tree RSS peak (procs)':>21s}   {'largest process':>15s}")
    for r in results:
        print(
            f"{r.name:30s} {r.seconds / 60:7.2f} min   {r.tree_peak_mib:11.0f} MiB ({r.most_processes:3d})"
            f"   {r.largest_process_mib:11.0f} MiB"
        )
    total = sum(r.seconds for r in results)
    tree, procs = max(r.tree_peak_mib for r in results), max(r.most_processes for r in results)
    largest = max(r.largest_process_mib for r in results)
    label = "total (memory: max of stages)"
    print(f"{label:30s} {total / 60:7.2f} min   {tree:11.0f} MiB ({procs:3d})   {largest:11.0f} MiB")
    print(
        "tree RSS peak: highest sum of VmRSS over the stage's process and its live descendants, sampled every"
        f" {args.rss_interval:g} s\n  (shared pages count once per process; a shorter peak can be missed);"
        " procs: most processes alive at once"
    )
    print(
        "largest process: kernel high-water RSS of the single largest process of the tree\n"
        "  (ru_maxrss of wait4 on the stage's process: it and the descendants it reaped; exact, not a sum)"
    )


if __name__ == "__main__":
    main()
