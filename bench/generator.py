"""Synthesis speed of the default generator, as a fraction of the cores' fp32 FMA peak and of torch.mm's rate.

The ceiling is the theoretical fp32 peak of the cores torch computes on (``bench/machine.py``):
cores x clock x FMA units per core x fp32 lanes x 2. The lanes come from /proc/cpuinfo (avx512f 16, avx2+fma 8,
otherwise 4), the clock from cpufreq's cpuinfo_max_freq or /proc/cpuinfo's "cpu MHz" (a VM's nominal clock:
boost can exceed it; ``--clock-ghz`` overrides), 2 FMA units per core is an assumption (``--fma-units``), and
the cores are torch's threads capped at the physical cores. torch.mm's measured rate is printed beside it: it
is not a ceiling (a review measured the generator at 1.45x torch.mm's rate on an AVX-512 machine).

Measured in one run, interleaved round by round so that all see the same machine:

- GEMM: torch.mm of two 2048x2048 float32 matrices (what torch's own GEMM reaches here);
- baseline: the DCGAN exactly as gan-face-generate runs it (the nn.Sequential in eval mode, torch.no_grad);
- ours: ``Generator.synthesize`` (folded BatchNorm, GEMM first layer, channels-last middle layers, GEMM +
  col2im last layer, inference mode), including the conversion to uint8 images.

FLOPs are counted from the layers: a transposed convolution costs 2 * Cin * Cout * k * k FLOPs per input
pixel. Each figure is the best of ``--rounds`` timings (throughput peaks, not averages: other processes only
ever slow a run down).

Each rate is printed as GFLOP/s, its fraction of the FMA peak ("peak") and of torch.mm's rate ("mm").

    python bench/generator.py [--batch-sizes 16 32 64 128] [--rounds 7] [--clock-ghz G] [--fma-units U]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from machine import detect_cpu, fma_peak  # bench/machine.py (this script's folder is on sys.path)
from torch import nn

from facesteer.generators.dcgan import DCGANFaceGenerator, DCGANNetwork


def flops_per_image(network: DCGANNetwork) -> int:
    """2 * MACs of every transposed convolution, for one image (input 1x1)."""
    total, size = 0, 1
    for layer in network.main:
        if isinstance(layer, nn.ConvTranspose2d):
            k, s, p = layer.kernel_size[0], layer.stride[0], layer.padding[0]
            total += 2 * layer.in_channels * layer.out_channels * k * k * size * size
            size = (size - 1) * s - 2 * p + k
    return total


def best_seconds(function, rounds: int = 1) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--clock-ghz", type=float, default=None, help="core clock for the peak (default: detected)")
    parser.add_argument(
        "--fma-units", type=int, default=None, help="FMA units per core for the peak (default: assumed 2)"
    )
    args = parser.parse_args()

    generator = DCGANFaceGenerator()
    baseline = generator.network  # the reference module, eval mode
    flops = flops_per_image(baseline)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    gemm_flops = 2 * 2048**3

    best_gemm = 0.0
    best_rate = {("baseline", n): 0.0 for n in args.batch_sizes} | {("ours", n): 0.0 for n in args.batch_sizes}
    codes = {n: generator.sample_z(n, seed=0) for n in args.batch_sizes}

    def run_baseline(z: np.ndarray) -> None:
        with torch.no_grad():
            baseline(torch.from_numpy(z).reshape(len(z), 100, 1, 1))

    for n in args.batch_sizes:  # warm-up: first calls allocate and pick kernels
        run_baseline(codes[n])
        generator.synthesize(codes[n], batch_size=n)
    for _ in range(args.rounds):
        best_gemm = max(best_gemm, gemm_flops / best_seconds(lambda: torch.mm(a, b), 3) / 1e9)
        for n in args.batch_sizes:
            z = codes[n]
            seconds = best_seconds(lambda z=z: run_baseline(z))
            best_rate["baseline", n] = max(best_rate["baseline", n], n / seconds)
            seconds = best_seconds(lambda z=z, n=n: generator.synthesize(z, batch_size=n))
            best_rate["ours", n] = max(best_rate["ours", n], n / seconds)

    cpu = detect_cpu()
    threads = torch.get_num_threads()
    peak = fma_peak(threads, cpu, args.clock_ghz, args.fma_units)
    print(f"machine: {cpu.describe()}, torch {torch.__version__}, {threads} threads")
    print(f"model: dcgan-digiface64, {flops / 1e6:.1f} MFLOP per image (transposed convolutions)")
    gemm = f"torch.mm fp32 2048^3 measured {best_gemm:.1f} GFLOP/s"
    if peak is None:
        print(f"ceiling: FMA peak unknown (no clock detected: pass --clock-ghz); {gemm}")
    else:
        print(f"ceiling: {peak.formula()}; {gemm} ({best_gemm / peak.gflops:.2f} of peak)")
        print(f"  {peak.sources()}")
        fastest = max(best_gemm, max(best_rate.values()) * flops / 1e9)
        if fastest > peak.gflops:
            print(
                f"  warning: a measured rate ({fastest:.1f} GFLOP/s) is above the computed peak: the cores run faster"
                f" than {peak.clock_ghz:.2f} GHz (boost) or have more FMA throughput than assumed;"
                " pass --clock-ghz / --fma-units"
            )

    def fractions(gflops: float) -> str:
        of_peak = f"{gflops / peak.gflops:.2f} peak" if peak else "- peak"
        return f"{gflops:5.1f} GFLOP/s, {of_peak}, {gflops / best_gemm:.2f} mm"

    for n in args.batch_sizes:
        line = [f"batch {n:4d}:"]
        for name in ("baseline", "ours"):
            rate = best_rate[name, n]
            line.append(f"{name} {rate:6.0f} img/s ({fractions(rate * flops / 1e9)})")
        print("  ".join(line))
    for name in ("baseline", "ours"):
        n = max(args.batch_sizes, key=lambda size: best_rate[name, size])
        rate = best_rate[name, n]
        print(f"{name} best: batch {n}, {rate:.0f} img/s, {fractions(rate * flops / 1e9).lstrip()}")
    ours = max(best_rate["ours", n] for n in args.batch_sizes)
    base = max(best_rate["baseline", n] for n in args.batch_sizes)
    print(f"speed-up ours/baseline: {ours / base:.2f}x")


if __name__ == "__main__":
    main()
