"""What CPU the benchmarks run on, and its theoretical fp32 FMA peak (no torch import: any bench can use it).

    peak GFLOP/s = cores x clock (GHz) x FMA units per core x fp32 lanes per vector x 2 (an FMA is 2 FLOPs)

- lanes, from the /proc/cpuinfo flags: ``avx512f`` -> 16, ``avx2`` and ``fma`` -> 8, otherwise 4 (SSE/NEON);
- clock: ``cpuinfo_max_freq`` from /sys/devices/system/cpu/cpu0/cpufreq when present (the top boost clock),
  otherwise the highest "cpu MHz" in /proc/cpuinfo. In a VM that is the nominal (TSC) clock, and the cores may
  boost above it, so a measured rate can exceed the computed peak: pass ``clock_ghz`` (``--clock-ghz``);
- FMA units per core: an assumption, 2 by default (``--fma-units``): right for Intel Haswell to Sapphire Rapids
  client/Gold 6xxx/Platinum cores and AMD Zen 2-4 at 256 bits; use 1 for AMD Zen 1 (128-bit units), Zen 4
  with avx512f (512-bit FMAs are split over its two 256-bit units) and Xeon Bronze/Silver/some Gold 5xxx
  (one 512-bit FMA unit);
- cores: the compute threads (``torch.get_num_threads()``), capped at the physical cores of the CPUs this
  process may run on, because hyperthreads of one core share its FMA units. Physical cores are the distinct
  (physical id, core id) pairs of /proc/cpuinfo over the affinity mask, otherwise lscpu's
  "Core(s) per socket" x "Socket(s)"; when neither is known the threads are counted as cores.

    python bench/machine.py [--threads N] [--clock-ghz G] [--fma-units U]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

DEFAULT_FMA_UNITS = 2
CPU_MHZ = "/proc/cpuinfo 'cpu MHz'"
CPU_MHZ_CAVEAT = "a VM reports its nominal clock there, the cores may boost above it"


@dataclass(frozen=True)
class Cpu:
    """The CPU as /proc/cpuinfo (and lscpu, /sys) describe it."""

    model: str
    isa: str  # "avx512f", "avx2+fma" or "sse"
    lanes: int  # fp32 lanes per vector register of that ISA
    clock_ghz: float | None
    clock_source: str
    logical_cpus: int  # that this process may run on (affinity mask)
    physical_cores: int | None  # among those logical CPUs
    cores_source: str

    def describe(self) -> str:
        clock = f"{self.clock_ghz:.2f} GHz ({self.clock_source})" if self.clock_ghz else "clock unknown"
        cores = f"{self.physical_cores} physical cores" if self.physical_cores else "physical cores unknown"
        return f"{self.model}, {self.logical_cpus} logical CPUs, {cores}, {self.isa} ({self.lanes} fp32 lanes), {clock}"


@dataclass(frozen=True)
class Peak:
    """Theoretical fp32 FMA peak of ``cores`` cores."""

    cores: int
    cores_note: str
    clock_ghz: float
    clock_source: str
    fma_units: int
    fma_units_source: str
    lanes: int
    isa: str

    @property
    def gflops(self) -> float:
        return self.cores * self.clock_ghz * self.fma_units * self.lanes * 2

    def formula(self) -> str:
        return (
            f"FMA peak {self.cores} cores x {self.clock_ghz:.2f} GHz x {self.fma_units} FMA units x {self.lanes} lanes"
            f" x 2 = {self.gflops:.1f} GFLOP/s ({self.isa})"
        )

    def sources(self) -> str:
        clock = f"{self.clock_source} ({CPU_MHZ_CAVEAT})" if self.clock_source == CPU_MHZ else self.clock_source
        return f"cores: {self.cores_note}; clock: {clock}; FMA units per core: {self.fma_units_source}"


def _cpuinfo_blocks(text: str) -> list[dict[str, str]]:
    blocks = []
    for chunk in text.strip().split("\n\n"):
        fields = {}
        for line in chunk.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        blocks.append(fields)
    return blocks


def _lscpu_cores() -> int | None:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    try:
        return int(fields["Core(s) per socket"]) * int(fields["Socket(s)"])
    except (KeyError, ValueError):
        return None


def detect_cpu(cpuinfo: str | None = None) -> Cpu:
    """Read /proc/cpuinfo (or the ``cpuinfo`` text given), /sys cpufreq and lscpu when needed; what cannot be
    read is left unknown."""
    try:
        blocks = _cpuinfo_blocks(Path("/proc/cpuinfo").read_text() if cpuinfo is None else cpuinfo)
    except OSError:
        blocks = []
    try:
        allowed = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        allowed = set(range(os.cpu_count() or 1))
    processors = [b for b in blocks if b.get("processor", "").isdigit() and int(b["processor"]) in allowed]
    first = processors[0] if processors else (blocks[0] if blocks else {})

    model = first.get("model name") or platform.processor() or platform.machine()
    flags = set((first.get("flags") or first.get("Features") or "").split())
    if "avx512f" in flags:
        isa, lanes = "avx512f", 16
    elif "avx2" in flags and "fma" in flags:
        isa, lanes = "avx2+fma", 8
    else:
        isa, lanes = "sse", 4

    clock_ghz, clock_source = None, "unknown"
    max_freq = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    try:
        clock_ghz, clock_source = int(max_freq.read_text()) / 1e6, "cpufreq cpuinfo_max_freq"
    except (OSError, ValueError):
        mhz = [float(b["cpu MHz"]) for b in processors if "cpu MHz" in b]
        if mhz:
            clock_ghz = max(mhz) / 1e3
            clock_source = CPU_MHZ

    pairs = {(b["physical id"], b["core id"]) for b in processors if "physical id" in b and "core id" in b}
    if pairs:
        physical, cores_source = len(pairs), "distinct (physical id, core id) of /proc/cpuinfo in the affinity mask"
    else:
        physical, cores_source = _lscpu_cores(), "lscpu Core(s) per socket x Socket(s), capped at the affinity mask"
        physical = physical and min(physical, len(allowed))
    return Cpu(model, isa, lanes, clock_ghz, clock_source, len(allowed), physical, cores_source)


def fma_peak(
    threads: int, cpu: Cpu | None = None, clock_ghz: float | None = None, fma_units: int | None = None
) -> Peak | None:
    """The fp32 FMA peak of ``threads`` compute threads; None when the clock is unknown and not given."""
    cpu = cpu or detect_cpu()
    if clock_ghz is not None:
        clock, clock_source = clock_ghz, "--clock-ghz"
    elif cpu.clock_ghz is not None:
        clock, clock_source = cpu.clock_ghz, cpu.clock_source
    else:
        return None
    if fma_units is not None:
        units, units_source = fma_units, "--fma-units"
    else:
        units, units_source = DEFAULT_FMA_UNITS, f"assumed {DEFAULT_FMA_UNITS} (override with --fma-units)"
    if cpu.physical_cores:
        cores = min(threads, cpu.physical_cores)
        note = f"{threads} threads on {cpu.physical_cores} physical cores ({cpu.cores_source})"
    else:
        cores, note = threads, f"{threads} threads, counted as cores (physical cores unknown)"
    return Peak(cores, note, clock, clock_source, units, units_source, cpu.lanes, cpu.isa)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="compute threads (default: all logical CPUs)")
    parser.add_argument("--clock-ghz", type=float, default=None)
    parser.add_argument("--fma-units", type=int, default=None)
    args = parser.parse_args()
    cpu = detect_cpu()
    print(f"machine: {cpu.describe()}")
    peak = fma_peak(args.threads or cpu.logical_cpus, cpu, args.clock_ghz, args.fma_units)
    if peak is None:
        print("ceiling: unknown (no clock found; pass --clock-ghz)")
    else:
        print(f"ceiling: {peak.formula()}")
        print(f"  {peak.sources()}")


if __name__ == "__main__":
    main()
