"""Decoding uploads: what a small hostile picture may cost before it is refused (or decoded)."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from facesteer.errors import FacesteerError
from facesteer.images import MAX_DECODED_PIXELS, MAX_JPEG_SCANS, decode_image
from tests.conftest import deep_png


def jpeg(width: int, height: int, **options) -> bytes:
    buffer = io.BytesIO()
    ramp = np.linspace(0, 255, width, dtype=np.uint8)[None, :, None].repeat(height, 0).repeat(3, 2)
    Image.fromarray(ramp).save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def segments(data: bytes) -> list[bytes]:
    """A JPEG cut before each marker segment (SOI, tables, frame, each scan with its coded data, EOI)."""
    cuts = [0]
    position = 2
    while position < len(data):
        marker = data[position + 1]
        if marker == 0xD9:  # EOI
            cuts.append(position)
            break
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        end = position + 2 + length
        if marker == 0xDA:  # a scan: its coded data runs to the next marker that is not FF00 or a restart
            while not (data[end] == 0xFF and data[end + 1] not in (0x00, *range(0xD0, 0xD8))):
                end += 1
        cuts.append(position)
        position = end
    return [data[a:b] for a, b in zip(cuts, [*cuts[1:], len(data)], strict=True)]


def test_a_jpeg_of_too_many_scans_is_refused_before_it_is_decoded():
    """A 363 KB progressive JPEG of 10,000 scans held the upload lock for 16 s: each scan is a pass over it all."""
    progressive = jpeg(64, 64, progressive=True)
    assert decode_image(progressive).shape == (64, 64, 3)  # a normal progressive photo (about 10 scans) decodes
    parts = segments(progressive)
    last_scan = next(p for p in reversed(parts) if p[1] == 0xDA)
    hostile = b"".join(parts[:-1]) + last_scan * MAX_JPEG_SCANS + parts[-1]  # its last refinement, again and again
    with pytest.raises(FacesteerError, match=rf"JPEG of \d+ scans; at most {MAX_JPEG_SCANS}"):
        decode_image(hostile)


def test_a_jpeg_too_short_for_the_size_it_declares_is_truncated():
    """A 631-byte JPEG declaring 6,300 x 6,300 pixels was decoded (libjpeg pads what is missing with grey, +478 MiB)
    and answered "no face found"."""
    small = jpeg(64, 64)
    frame = small.index(b"\xff\xc0")  # baseline frame header: FF C0, length, precision, height, width
    declared = bytearray(small)
    declared[frame + 5 : frame + 9] = (6300).to_bytes(2, "big") * 2
    with pytest.raises(FacesteerError, match=r"truncated or corrupt: .* bytes cannot hold 39,690,000 pixels"):
        decode_image(bytes(declared))


def test_a_large_jpeg_is_decoded_at_a_reduced_scale():
    photo = jpeg(4800, 3200, quality=50)  # 15.4 MP
    image = decode_image(photo)
    assert image.shape == (1600, 2400, 3)  # libjpeg's 1/2 scale: 3.8 MP
    assert image.shape[0] * image.shape[1] <= MAX_DECODED_PIXELS


def test_a_phone_photo_is_turned_upright():
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    picture = np.zeros((30, 40, 3), np.uint8)
    picture[:, :20] = 255  # white on the left
    Image.fromarray(picture).save(buffer, format="PNG", exif=exif)
    upright = decode_image(buffer.getvalue())
    assert upright.shape == (40, 30, 3)
    assert upright[:20].mean() > 200 and upright[20:].mean() < 50  # the left half is now on top


def test_sixteen_bit_pixels_are_scaled_not_clipped():
    buffer = io.BytesIO()
    grey = np.array([[0, 257, 32896, 65535] * 8] * 32, np.uint16)
    Image.fromarray(grey).save(buffer, format="PNG")
    image = decode_image(buffer.getvalue())
    assert image[0, :4, 0].tolist() == [0, 1, 128, 255]


def test_a_large_sixteen_bit_png_costs_little_memory(tmp_path):
    """An 88 KB 16-bit 40-megapixel PNG peaked at +1.1 GiB (a float64 copy of every pixel)."""
    path = tmp_path / "deep.png"
    path.write_bytes(deep_png(6600, 6000))  # 39.6 MP, grey, 16 bits
    assert path.stat().st_size < 1_000_000
    script = (
        "import resource, sys\n"
        "from facesteer.images import decode_image\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "image = decode_image(data)\n"
        "print(image.shape, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=300)
    shape, growth_mib = result.stdout.strip().rsplit(" ", 1)
    assert shape == "(3000, 3300, 3)"  # reduced by 2, to at most MAX_DECODED_PIXELS
    assert int(growth_mib) < 256, growth_mib  # the goal for any picture within the size limit
