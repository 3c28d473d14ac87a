"""Load on the editor (loopback only, bounded in time): CLIENTS concurrent clients moving sliders for SECONDS.

For each generator, `facesteer serve` is started with request batching on (--max-batch 32) and off (--max-batch
1), and, for a generator the server compiles (StyleGAN2), once more with batching on and --no-compile; the same
load is sent to each: every client opens a session, then moves a random
slider to a random value, waits for the face, and does it again. Reported per server: edits/s, latency
p50/p95/p99, errors, and the server's resident memory (peak, after warm-up, at the end), then the throughput
ratios batched / unbatched and compiled / eager. The clients run in this process (asyncio, a minimal
keep-alive HTTP/1.1 client), on the same 2 cores as the server.

    python bench/serve.py [--generators dcgan-digiface64 stylegan2-utkface64] [--clients 50] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

WARM_UP = 5.0  # seconds of load before the memory baseline is read
START_TIMEOUT = 900.0  # a server that compiles its generator with a cold cache takes minutes to answer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mib(pid: int) -> float:
    """Resident memory of a process (MiB), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(generator: str, max_batch: int, compile_: bool | None) -> tuple[subprocess.Popen, str, dict]:
    """A `facesteer serve` process, its URL and its /api/info, once it answers."""
    port = free_port()
    command = [sys.executable, "-m", "facesteer.cli", "serve", "--generator", generator, "--port", str(port),
               "--max-batch", str(max_batch)]  # fmt: skip
    if compile_ is not None:
        command.append("--compile" if compile_ else "--no-compile")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            shown = " ".join(command[2:])
            raise SystemExit(f"the server stopped (exit {process.returncode}): run `{shown}` to see why")
        try:
            info = httpx.get(f"{url}/api/info", timeout=2)
            if info.status_code == 200:
                return process, url, info.json()
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit(f"the server did not come up in {START_TIMEOUT:.0f} s")


class Connection:
    """A keep-alive HTTP/1.1 connection speaking just enough to POST JSON: a load generator light enough that
    the cores go to the server (0.12 ms of its process's CPU per edit, measured from /proc; RESULTS)."""

    def __init__(self, url: str, address: str | None = None) -> None:
        self.host, self.port = url.removeprefix("http://").split(":")
        self.address = address

    async def open(self) -> None:
        local = (self.address, 0) if self.address else None
        self.reader, self.writer = await asyncio.open_connection(self.host, int(self.port), local_addr=local)

    async def post(self, path: str, body: dict) -> tuple[int, bytes]:
        data = json.dumps(body).encode()
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n\r\n")  # fmt: skip
        self.writer.write(head.encode() + data)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def client_address(index: int) -> str:
    """Each client comes from a loopback address of its own, as distinct users do (the server limits what one
    address may do: 30 new sessions a minute, 64 connections)."""
    return f"127.0.{1 + index // 250}.{1 + index % 250}"


async def client(url: str, sliders: list[str], stop: float, seed: int, latencies: list[float], errors: list[str]):
    rng = random.Random(seed)
    connection = Connection(url, client_address(seed))
    await connection.open()
    try:
        status, body = await connection.post("/api/sessions", {"seed": seed})
        if status != 200:
            errors.append(f"new session: {status}")
            return
        session = json.loads(body)["session"]
        while time.monotonic() < stop:
            request = {"name": rng.choice(sliders), "value": round(rng.uniform(-3, 3), 1)}
            started = time.perf_counter()
            try:
                status, body = await connection.post(f"/api/sessions/{session}/slider", request)
                ok = status == 200 and b'"image":"' in body
            except (OSError, asyncio.IncompleteReadError, ValueError) as error:
                ok, status = False, type(error).__name__
                await connection.open()
            latencies.append(time.perf_counter() - started)
            if not ok:
                errors.append(str(status))
    finally:
        connection.close()


async def load(url: str, clients: int, seconds: float, pid: int) -> dict:
    sliders = [s["name"] for s in httpx.get(f"{url}/api/info").json()["sliders"]]
    latencies: list[float] = []
    errors: list[str] = []
    memory: list[tuple[float, float]] = []
    started = time.monotonic()
    stop = started + seconds

    async def watch() -> None:
        while time.monotonic() < stop:
            memory.append((time.monotonic() - started, rss_mib(pid)))
            await asyncio.sleep(0.5)

    await asyncio.gather(watch(), *(client(url, sliders, stop, k, latencies, errors) for k in range(clients)))
    elapsed = time.monotonic() - started
    after_warm_up = [m for t, m in memory if t >= WARM_UP]
    return {
        "edits": len(latencies) - len(errors),
        "edits_per_s": (len(latencies) - len(errors)) / elapsed,
        "p50": float(np.percentile(latencies, 50)) * 1000,
        "p95": float(np.percentile(latencies, 95)) * 1000,
        "p99": float(np.percentile(latencies, 99)) * 1000,
        "errors": len(errors),
        "error_kinds": sorted(set(errors))[:5],
        "rss_peak": max(m for _, m in memory),
        "rss_warm": after_warm_up[0] if after_warm_up else float("nan"),
        "rss_end": memory[-1][1],
    }


def measure(
    generator: str, label: str, max_batch: int, compile_: bool | None, args: argparse.Namespace
) -> tuple[dict, bool]:
    """Start one server, send it the load, print its row; its results and whether it rendered compiled."""
    process, url, info = start_server(generator, max_batch, compile_)
    try:
        r = asyncio.run(load(url, args.clients, args.seconds, process.pid))
    finally:
        process.terminate()
        process.wait(timeout=30)
    compiled = bool(info.get("compiled"))
    print(f"{generator:20s} {label:8s} {'yes' if compiled else 'no':8s} {r['edits_per_s']:8.1f} {r['p50']:8.1f} "
          f"{r['p95']:8.1f} {r['p99']:8.1f} {r['errors']:7d}  "
          f"{r['rss_warm']:.0f}/{r['rss_end']:.0f}/{r['rss_peak']:.0f}"
          + (f"  {r['error_kinds']}" if r["errors"] else ""), flush=True)  # fmt: skip
    return r, compiled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generators", nargs="+", default=["dcgan-digiface64", "stylegan2-utkface64"])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    print(f"# {args.clients} clients x {args.seconds:.0f} s per server, loopback, {os.cpu_count()} cores")
    print("generator            batching compiled edits/s   p50 ms   p95 ms   p99 ms  errors  RSS MiB warm/end/peak")
    for generator in args.generators:
        batched, compiled = measure(generator, "on", 32, None, args)  # as `facesteer serve` runs by default
        unbatched, _ = measure(generator, "off", 1, None, args)
        ratio = batched["edits_per_s"] / unbatched["edits_per_s"]
        print(f"{generator:20s} batching on / off throughput: {ratio:.2f}x", flush=True)
        if compiled:
            eager, _ = measure(generator, "on", 32, False, args)
            ratio = batched["edits_per_s"] / eager["edits_per_s"]
            print(f"{generator:20s} compiled / eager throughput (batching on): {ratio:.2f}x", flush=True)


if __name__ == "__main__":
    main()
