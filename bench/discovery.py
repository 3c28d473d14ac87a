"""Discovery speed, ours against a straightforward baseline in the same run (compare the ratios, not the seconds).

1. SeFa: seconds to factorise every shipped generator (median of 5; the goal is under one second).
2. GANSpace: samples/s and peak traced memory of facesteer's incremental PCA against sampling every code first
   and fitting scikit-learn's full PCA (the memory that grows with the samples).
3. The Hessian penalty of c -> G(w + A c) with its k draws in one batch (ours) against k separate pairs of
   forward passes (the reference's loop), forward and backward, steps/s.
4. A discovery step of each method (steps/s at batch 32), to size CPU runs.

    python bench/discovery.py [--generator stylegan2-utkface64] [--ganspace-num 50000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import tracemalloc

import numpy as np
import torch
from sklearn.decomposition import PCA

from facesteer.discovery import ganspace, hessian_penalty, sefa
from facesteer.discovery.hessian_penalty import hessian_penalty_unbatched
from facesteer.discovery.latent import METHODS, DiscoveryOptions, LatentDiscovery
from facesteer.generators import load_generator, registry


def timed(function, repeats: int) -> float:
    """Median seconds of ``repeats`` calls."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def peak_traced(function) -> tuple[float, float]:
    """(seconds, peak traced MiB) of one call."""
    tracemalloc.start()
    start = time.perf_counter()
    function()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, peak


def bench_sefa(repeats: int) -> None:
    for name in registry():
        model = load_generator(name)
        seconds = timed(lambda model=model: sefa(model), repeats)
        print(f"sefa {name}: {seconds * 1000:.1f} ms ({len(sefa(model))} directions)")


def bench_ganspace(name: str, num: int) -> None:
    model = load_generator(name)
    components = min(64, model.w_dim if "w" in model.spaces else model.z_dim)

    def full_pca() -> None:
        codes = model.map(model.sample_z(num, 0), "w")
        PCA(components, svd_solver="full").fit(codes.astype(np.float64))

    ours_seconds, ours_peak = peak_traced(lambda: ganspace(model, num=num, components=components, progress=False))
    full_seconds, full_peak = peak_traced(full_pca)
    print(f"ganspace {name}, {num:,} W codes, {components} components: incremental {num / ours_seconds:,.0f} "
          f"samples/s, peak {ours_peak:.1f} MiB; all codes + full PCA {num / full_seconds:,.0f} samples/s, "
          f"peak {full_peak:.1f} MiB; memory ratio {full_peak / ours_peak:.1f}x, speed ratio "
          f"{(num / ours_seconds) / (num / full_seconds):.2f}x")  # fmt: skip


def bench_penalty(name: str, batch: int, directions: int, repeats: int) -> None:
    model = load_generator(name)
    space = "w" if "w" in model.spaces else "z"
    codes = torch.from_numpy(model.map(model.sample_z(batch, 0), space))
    matrix = torch.linalg.qr(torch.randn(codes.shape[1], directions))[0].requires_grad_(True)
    coefficients = torch.zeros(batch, directions)
    coefficients[:, 0] = 3.0

    def image(c: torch.Tensor) -> torch.Tensor:
        return model.synthesize_tensor(codes.repeat(len(c) // batch, 1) + c @ matrix.T, space)

    def step(penalty) -> None:
        matrix.grad = None
        penalty(image, coefficients, k=2, reduction="mean", generator=torch.Generator().manual_seed(0)).backward()

    step(hessian_penalty)  # warm-up
    ours = timed(lambda: step(hessian_penalty), repeats)
    loop = timed(lambda: step(hessian_penalty_unbatched), repeats)
    print(f"hessian penalty {name}, batch {batch}, k 2, forward + backward: batched {1 / ours:.2f} steps/s, "
          f"k separate passes {1 / loop:.2f} steps/s, ratio {loop / ours:.2f}x")  # fmt: skip


def bench_steps(name: str, repeats: int) -> None:
    model = load_generator(name)
    with tempfile.TemporaryDirectory() as folder:
        rates = []
        for method in METHODS:
            start = f"{folder}/sdd" if method in ("dth", "dtj") else None
            run = LatentDiscovery(model, DiscoveryOptions(method=method, steps=10**6, start=start),
                                  f"{folder}/{method}", progress=False)  # fmt: skip
            run.train_step()  # warm-up
            seconds = timed(run.train_step, repeats)
            rates.append(f"{method} {1 / seconds:.2f}")
            if method == "sdd":
                run.directions().save(f"{folder}/sdd")
    print(f"discovery steps/s at batch 32 on {name}: " + ", ".join(rates))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generator", default="stylegan2-utkface64")
    parser.add_argument("--ganspace-num", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    bench_sefa(args.repeats)
    bench_ganspace(args.generator, args.ganspace_num)
    for name in ("dcgan-digiface64", args.generator):
        bench_penalty(name, 32, 32, args.repeats)
        bench_steps(name, args.repeats)


if __name__ == "__main__":
    main()
