"""PNG encoding of one 64 px face, as the editor does once per edit: facesteer's encoder (Sub filter in numpy,
zlib level 1) against Pillow's (adaptive filters, levels 6 and 1), in one run.

    python bench/png.py
"""

from __future__ import annotations

import io
import time

from PIL import Image

from facesteer.generators import load_generator
from facesteer.images import encode_png

ROUNDS = 2000


def pillow(image, level: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=level)
    return buffer.getvalue()


def main() -> None:
    generator = load_generator("dcgan-digiface64")
    image = generator.synthesize(generator.sample_z(1, 0))[0]
    results = {}
    for name, encode in (("Pillow, level 6 (its default)", lambda: pillow(image, 6)),
                         ("Pillow, level 1", lambda: pillow(image, 1)),
                         ("facesteer encode_png", lambda: encode_png(image))):  # fmt: skip
        encode()
        started = time.perf_counter()
        for _ in range(ROUNDS):
            data = encode()
        results[name] = (time.perf_counter() - started) / ROUNDS * 1000
        print(f"{name:30s} {results[name]:.3f} ms  {len(data):,} bytes")
    ratio = results["Pillow, level 6 (its default)"] / results["facesteer encode_png"]
    print(f"facesteer vs Pillow's default: {ratio:.1f}x")


if __name__ == "__main__":
    main()
