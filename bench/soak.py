"""A soak of the editor (loopback only, bounded in time): the 50-client edit load alone, then mixed with every
attack of bench/attacks.py, round after round; one row per minute.

One `facesteer serve` process. Its clients (each from a loopback address of its own, as in bench/serve.py) open
a session each and move random sliders for the whole run; after --baseline-minutes, the attacks start, all at
once, from their own addresses, and start again as soon as the last of a round has ended. Every minute: the
clients' edits, p95 latency and errors, the server's peak resident memory, and the attacks' answers. At the end:
p95 under attack against the load alone, the clients' errors, and the memory from the first minute of attacks
to the last.

    python bench/soak.py [--generator dcgan-digiface64] [--clients 50] [--baseline-minutes 5] [--minutes 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from collections import Counter

import httpx
import numpy as np
from attacks import server_attacks
from serve import Connection, client_address, rss_mib, start_server


async def edit_load(url: str, index: int, stop: float, sliders: list[str], edits: list) -> None:
    """One client: a session, then slider moves until ``stop``; each edit as (time, seconds, ok)."""
    rng = random.Random(index)
    connection = Connection(url, client_address(index))
    await connection.open()
    try:
        status, body = await connection.post("/api/sessions", {"seed": index})
        if status != 200:
            edits.append((time.monotonic(), 0.0, False))
            return
        session = json.loads(body)["session"]
        while time.monotonic() < stop:
            request = {"name": rng.choice(sliders), "value": round(rng.uniform(-3, 3), 1)}
            started = time.perf_counter()
            try:
                status, body = await connection.post(f"/api/sessions/{session}/slider", request)
                ok = status == 200 and b'"image":"' in body
            except (OSError, asyncio.IncompleteReadError, ValueError):
                ok = False
                await connection.open()
            edits.append((time.monotonic(), time.perf_counter() - started, ok))
    finally:
        connection.close()


async def attack_rounds(url: str, start: float, stop: float, answers: list) -> None:
    """Every attack at once, round after round from ``start`` until ``stop``; answers as (time, name, Counter)."""
    attacks = server_attacks()
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    while time.monotonic() < stop:

        async def run(name: str, attack) -> None:
            answers.append((time.monotonic(), name, await attack(url)))

        await asyncio.gather(*(run(name, attack) for name, attack in attacks.items()))


async def soak(url: str, pid: int, args: argparse.Namespace) -> None:
    sliders = [s["name"] for s in httpx.get(f"{url}/api/info").json()["sliders"]]
    began = time.monotonic()
    attacks_from = began + args.baseline_minutes * 60
    stop = attacks_from + args.minutes * 60
    edits: list = []
    answers: list = []
    memory: list[tuple[float, float]] = []

    async def watch() -> None:
        while time.monotonic() < stop:
            memory.append((time.monotonic(), rss_mib(pid)))
            await asyncio.sleep(1.0)

    async def report() -> None:
        print("| minute | attacks | edits | p95 ms | errors | server RSS MiB (peak) | attack answers |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        minute = 0
        while (end := began + (minute + 1) * 60) <= stop + 1:
            await asyncio.sleep(max(0.0, end - time.monotonic()))
            lo = end - 60
            window = [(s, ok) for t, s, ok in edits if lo <= t < end]
            ok_seconds = [s for s, ok in window if ok]
            rss = max((m for t, m in memory if lo <= t < end), default=float("nan"))
            seen = Counter()
            for t, _, counter in answers:
                if lo <= t < end:
                    seen.update(counter)
            p95 = np.percentile(ok_seconds, 95) * 1000 if ok_seconds else float("nan")
            shown = ", ".join(f"{n} {a}" for a, n in seen.most_common(6))
            print(f"| {minute + 1} | {'yes' if lo >= attacks_from else 'no'} | {len(ok_seconds)} | {p95:.0f} | "
                  f"{sum(not ok for _, ok in window)} | {rss:.0f} | {shown} |", flush=True)  # fmt: skip
            minute += 1

    clients = (edit_load(url, k, stop, sliders, edits) for k in range(args.clients))
    await asyncio.gather(watch(), report(), attack_rounds(url, attacks_from, stop, answers), *clients)

    def p95(lo: float, hi: float) -> float:
        return float(np.percentile([s for t, s, ok in edits if lo <= t < hi and ok], 95)) * 1000

    alone, mixed = p95(began + 60, attacks_from), p95(attacks_from, stop)  # the first minute is the warm-up
    errors = sum(not ok for _, _, ok in edits)
    first = max(m for t, m in memory if attacks_from <= t < attacks_from + 60)
    last = max(m for t, m in memory if stop - 60 <= t)
    print(f"\np95 alone {alone:.0f} ms, under attack {mixed:.0f} ms: x{mixed / alone:.2f}; the clients' errors: "
          f"{errors} of {len(edits)} edits; server RSS first minute of attacks {first:.0f} MiB, last {last:.0f} MiB; "
          f"{len(answers)} attacks answered", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", default="dcgan-digiface64")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--baseline-minutes", type=float, default=5.0)
    parser.add_argument("--minutes", type=float, default=30.0)
    args = parser.parse_args()
    print(f"# {args.generator}, {args.clients} clients, {args.baseline_minutes:g} min alone then {args.minutes:g} "
          f"min with every attack, loopback, {os.cpu_count()} cores")  # fmt: skip
    process, url, _ = start_server(args.generator, 32, None)
    try:
        asyncio.run(soak(url, process.pid, args))
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
