"""What each small hostile input costs facesteer before it is refused (loopback only, bounded in time).

Two kinds, each measured on its own:

- checkpoints: `facesteer generate -g FILE --num 1` on a hostile file; the peak resident memory and CPU time of
  that process (from wait4), against the same command on a file that does not exist (the imports' level);
- the editor: one `facesteer serve` process; each attack is sent to it alone, from its own loopback address,
  while its resident memory is sampled every 20 ms: the answers, the peak above the level before the attack,
  and the server's CPU seconds (from /proc) until it has answered.

    python bench/attacks.py [--generator dcgan-digiface64]

The attacks are built here (facesteer's own code makes none of them); bench/soak.py sends them under load.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from serve import rss_mib, start_server

from facesteer.generators.stylegan2 import SAFETENSORS_FORMAT

#: the attacks come from loopback addresses of their own (per-client limits apply to them, not to the load's
#: clients): requests and stalled bodies, the uploads' sessions, slow headers
ATTACKER, UPLOADER, SLOW = "127.0.0.2", "127.0.0.3", "127.0.0.4"
UPLOAD_LIMIT = 10 * 2**20  # `facesteer serve`'s upload size limit


# ------------------------------------------------------------------------------------------------ hostile files


def bytearray_pickle() -> bytes:
    """A 30-byte pickle that calls bytearray(3 GiB)."""
    return b"\x80\x02cbuiltins\nbytearray\n\x8a\x05\x00\x00\x00\xc0\x00\x85R."


def deflate_bomb_pt(path: Path) -> Path:
    """A .pt whose one tensor record is 2 GiB of zeros, deflated to about 2 MB (the record declares 2 GiB)."""
    torch.save({"w": torch.zeros(4)}, path.with_suffix(".plain"))
    with zipfile.ZipFile(path.with_suffix(".plain")) as old, zipfile.ZipFile(path, "w") as new:
        for info in old.infolist():
            if info.filename.endswith("data/0"):
                entry = zipfile.ZipInfo(info.filename)
                entry.compress_type = zipfile.ZIP_DEFLATED
                with new.open(entry, "w", force_zip64=True) as record:
                    for _ in range(2048):
                        record.write(b"\0" * 2**20)
            else:
                new.writestr(info.filename, old.read(info))
    path.with_suffix(".plain").unlink()
    return path


def huge_config_safetensors(path: Path) -> Path:
    """A few hundred bytes whose StyleGAN2 config sits at every limit (the network would be 5.7 GiB)."""
    channels = {str(2**i): 2048 for i in range(2, 11)}
    config = {"resolution": 1024, "channels": channels, "z_dim": 4096, "w_dim": 4096, "mapping_layers": 32}
    save_file({"x": torch.zeros(1)}, str(path), metadata={"format": SAFETENSORS_FORMAT, "config": json.dumps(config)})
    return path


def mismatched_safetensors(path: Path) -> Path:
    """A small StyleGAN2 config with tensors of the wrong shapes (torch's message is dozens of lines)."""
    config = {"resolution": 8, "channels": {"4": 8, "8": 8}, "z_dim": 4, "w_dim": 4, "mapping_layers": 1}
    save_file({"x": torch.zeros(1)}, str(path), metadata={"format": SAFETENSORS_FORMAT, "config": json.dumps(config)})
    return path


def checkpoint_files(folder: Path) -> dict[str, Path]:
    (folder / "bytearray.pkl").write_bytes(bytearray_pickle())
    return {
        "pickle building bytearray(3 GiB)": folder / "bytearray.pkl",
        ".pt with a deflated 2 GiB record": deflate_bomb_pt(folder / "bomb.pt"),
        "safetensors config at every limit": huge_config_safetensors(folder / "huge.safetensors"),
        "safetensors with tensors that do not fit": mismatched_safetensors(folder / "mismatch.safetensors"),
    }


def run_measured(command: list[str]) -> tuple[int, str, float, float]:
    """(exit code, last line of stderr+stdout, peak RSS MiB, CPU seconds) of a child process."""
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        output.seek(0)
        lines = output.read().decode(errors="replace").strip().splitlines()
    code = os.waitstatus_to_exitcode(status)
    return code, (lines[-1] if lines else ""), usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


# ------------------------------------------------------------------------------------------------ hostile uploads


def jpeg_bytes(size: int, **options) -> bytes:
    buffer = io.BytesIO()
    ramp = np.linspace(0, 255, size, dtype=np.uint8)[None, :, None].repeat(size, 0).repeat(3, 2)
    Image.fromarray(ramp).save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def many_scans_jpeg(scans: int = 10_000) -> bytes:
    """A progressive JPEG whose last scan is repeated ``scans`` times (each one a pass over every pixel)."""
    data = jpeg_bytes(256, progressive=True)
    last = data.rindex(b"\xff\xda")
    return data[:last] + data[last:-2] * scans + b"\xff\xd9"


def short_jpeg_declaring(width: int, height: int) -> bytes:
    """A small JPEG whose frame header declares ``width`` x ``height`` pixels."""
    data = bytearray(jpeg_bytes(32))
    frame = data.index(b"\xff\xc0")
    data[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def deep_png(width: int = 6600, height: int = 6000) -> bytes:
    """A 16-bit grey PNG of about 40 megapixels in under 100 KB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    rows = b"".join(packer.compress(b"\0" + b"\x80\x00" * width) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


class Client:
    """One HTTP/1.1 connection from a chosen loopback address, speaking just enough for the attacks."""

    def __init__(self, url: str, address: str = ATTACKER) -> None:
        self.host, port = url.removeprefix("http://").split(":")
        self.port, self.address = int(port), address

    async def __aenter__(self) -> Client:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, local_addr=(self.address, 0))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.writer.close()

    async def send(self, method: str, path: str, body: bytes = b"", kind: str = "application/json",
                   length: int | None = None, host: str = "127.0.0.1") -> None:  # fmt: skip
        size = len(body) if length is None else length
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {kind}\r\nContent-Length: {size}\r\n\r\n"
        self.writer.write(head.encode() + body)
        await self.writer.drain()

    async def status(self, timeout: float = 120.0) -> str:
        """The status code of the answer (its body read and dropped), or how the connection ended."""
        try:
            async with asyncio.timeout(timeout):
                line = await self.reader.readline()
                if not line:
                    return "closed"
                length = 0
                while (header := await self.reader.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                body = await self.reader.readexactly(length)
                code = line.split()[1].decode()
                return code if code != "200" else ("200 session" if b'"session"' in body else "200")
        except TimeoutError:
            return "no answer"
        except (ConnectionError, asyncio.IncompleteReadError):
            return "closed"

    async def request(self, method: str, path: str, body: bytes = b"", **options) -> str:
        await self.send(method, path, body, **options)
        return await self.status()


async def new_session(url: str, address: str = UPLOADER) -> str:
    async with Client(url, address) as client:
        await client.send("POST", "/api/sessions", b"{}")
        line = await client.reader.readline()
        while await client.reader.readline() not in (b"\r\n", b""):
            pass
        body = await client.reader.read(2**20)
        if b" 200 " not in line:
            raise RuntimeError(f"no session for the attacks: {line!r}")
        return json.loads(body)["session"]


async def upload(url: str, data: bytes, kind: str = "application/octet-stream") -> Counter:
    session = await new_session(url)
    async with Client(url) as client:
        return Counter([await client.request("POST", f"/api/sessions/{session}/upload", data, kind=kind)])


async def stalled_uploads(url: str, count: int = 30) -> Counter:
    """``count`` uploads announcing one byte short of the size limit, sending one byte, then nothing."""
    session = await new_session(url)

    async def one() -> str:
        async with Client(url) as client:
            path = f"/api/sessions/{session}/upload"
            await client.send("POST", path, b"\xff", kind="application/octet-stream", length=UPLOAD_LIMIT - 1)
            return await client.status()

    return Counter(await asyncio.gather(*(one() for _ in range(count))))


async def session_flood(url: str, count: int = 1000) -> Counter:
    async with Client(url) as client:
        return Counter([await client.request("POST", "/api/sessions", b"{}") for _ in range(count)])


async def cross_site_sessions(url: str, count: int = 20) -> Counter:
    """New-session POSTs as another site's page could send them without a preflight (text/plain)."""
    async with Client(url) as client:
        return Counter([await client.request("POST", "/api/sessions", b"{}", kind="text/plain") for _ in range(count)])


async def slowloris(url: str, count: int = 200, seconds: float = 30.0) -> Counter:
    """``count`` connections sending a request's headers one byte every 2 s for ``seconds``: how many stay."""

    async def one() -> str:
        try:
            async with Client(url, SLOW) as client:
                client.writer.write(b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                started = time.monotonic()
                while time.monotonic() - started < seconds:
                    client.writer.write(b"X")
                    await client.writer.drain()
                    try:
                        if await asyncio.wait_for(client.reader.read(1), 2.0) == b"":
                            return "closed by the server"
                    except TimeoutError:
                        continue
                return f"still open after {seconds:.0f} s"
        except ConnectionError:
            return "closed by the server"

    return Counter(await asyncio.gather(*(one() for _ in range(count))))


async def rebinding(url: str) -> Counter:
    async with Client(url) as client:
        return Counter([await client.request("GET", "/api/info", host="evil.example")])


def server_attacks() -> dict[str, Callable[[str], Awaitable[Counter]]]:
    scans, short, deep = many_scans_jpeg(), short_jpeg_declaring(6300, 6300), deep_png()
    return {
        f"30 uploads stalled 1 byte short of {UPLOAD_LIMIT // 2**20} MiB": stalled_uploads,
        f"progressive JPEG of 10,000 scans ({len(scans) // 1024} KB)": lambda url: upload(url, scans),
        f"16-bit grey PNG of 39.6 MP ({len(deep) // 1024} KB)": lambda url: upload(url, deep),
        f"{len(short)}-byte JPEG declaring 6,300 x 6,300": lambda url: upload(url, short),
        "1,000 new-session POSTs from one client": session_flood,
        "new-session POSTs sent as text/plain": cross_site_sessions,
        "200 slowloris connections (30 s)": slowloris,
        "Host: evil.example (DNS rebinding)": rebinding,
    }


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measured(attack: Callable[[str], Awaitable[Counter]], url: str, pid: int) -> tuple[Counter, float, float]:
    """The attack's answers, the server's peak RSS above its level before it (MiB), and its CPU seconds."""
    await asyncio.sleep(1.0)
    level, cpu = rss_mib(pid), cpu_seconds(pid)
    peak = level
    done = asyncio.Event()

    async def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mib(pid))
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    try:
        answers = await attack(url)
    finally:
        done.set()
        await watcher
    return answers, peak - level, cpu_seconds(pid) - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", default="dcgan-digiface64")
    args = parser.parse_args()
    print(f"# {os.cpu_count()} cores; checkpoints: `facesteer generate -g FILE --num 1`; editor: {args.generator}")
    print("| attack | answer | peak MiB above the level | CPU s |")
    print("| --- | --- | --- | --- |")
    facesteer = [sys.executable, "-m", "facesteer.cli", "generate", "--num", "1", "--out"]
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        _, _, level, level_cpu = run_measured([*facesteer, str(folder / "x.png"), "-g", str(folder / "none.pt")])
        print(f"| (the imports: a file that does not exist) | exit 2 | {level:.0f} MiB in all | {level_cpu:.1f} |")
        for name, path in checkpoint_files(folder).items():
            code, line, peak, cpu = run_measured([*facesteer, str(folder / "x.png"), "-g", str(path)])
            size = path.stat().st_size
            print(f"| {name} ({size:,} bytes) | exit {code}: {line[:90]} | {peak - level:+.0f} | {cpu:.1f} |",
                  flush=True)  # fmt: skip
    process, url, _ = start_server(args.generator, 32, False)
    try:
        for name, attack in server_attacks().items():
            answers, peak, cpu = asyncio.run(measured(attack, url, process.pid))
            shown = ", ".join(f"{count} x {answer}" for answer, count in answers.most_common())
            print(f"| {name} | {shown} | {peak:+.0f} | {cpu:.1f} |", flush=True)
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
