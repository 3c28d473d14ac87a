"""Image helpers: grids of faces and PNG files written atomically."""

from __future__ import annotations

import io
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image

from facesteer.errors import FacesteerError
from facesteer.files import atomic_path

#: face detectors (MediaPipe, dlib) miss small faces: images are upscaled to this shorter side first
DETECTION_SIZE = 256
#: uploads with more pixels are refused from their header, before any decoding (a 30,000 x 30,000 picture, a
#: decompression bomb): 40 MP is a large phone photo
MAX_UPLOAD_PIXELS = 40_000_000
#: larger uploads are reduced by a whole factor while they are decoded: a face is cropped from them and resized
#: to a few hundred pixels, and a 40 MP picture in RGB is 120 MB
MAX_DECODED_PIXELS = 12_000_000
#: the formats uploads may come in (others, such as ICO, decode while their header is read)
UPLOAD_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
#: a JPEG with more scans is refused: each scan is a pass over every pixel (a progressive photo has about 10; a
#: 363 KB file with 10,000 took 16 s to decode). libjpeg-turbo's own tools suggest a limit of this order.
MAX_JPEG_SCANS = 100
#: every 8 x 8 block of a JPEG costs at least one bit (its DC coefficient's Huffman code), so a JPEG smaller
#: than this many bytes per pixel cannot hold the pixels its header declares: it is truncated, and libjpeg
#: would pad it with grey (a 631-byte file declaring 6,300 x 6,300 pixels cost 478 MiB)
MIN_JPEG_BYTES_PER_PIXEL = 1 / (64 * 8)
#: 16- and 32-bit pixels are scaled to 8 bits this many rows at a time (a float copy of a 40 MP picture is
#: 320 MB)
_ROWS_PER_CHUNK = 256


def image_grid(images: np.ndarray, columns: int | None = None, padding: int = 2) -> np.ndarray:
    """Tile images (N, H, W, 3) uint8 into one (rows*(H+p)+p, columns*(W+p)+p, 3) uint8 picture.

    ``columns`` defaults to ceil(sqrt(N)); the gaps are white.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise FacesteerError(f"expected uint8 images of shape (N, H, W, 3), got {images.dtype} {images.shape}")
    count, height, width, _ = images.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = np.full((rows * (height + padding) + padding, columns * (width + padding) + padding, 3), 255, np.uint8)
    for index, image in enumerate(images):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        grid[top : top + height, left : left + width] = image
    return grid


def save_png(path: str | os.PathLike[str], image: np.ndarray) -> Path:
    """Write a uint8 (H, W, 3) picture as PNG via a temporary file, so no half-written file is left.

    Missing parent folders are created.
    """
    path = Path(path)
    try:
        with atomic_path(path) as temporary:
            Image.fromarray(image).save(temporary, format="PNG")
    except OSError as error:
        raise FacesteerError(f"cannot write {path}: {error.strerror or error} ({error.filename})") from None
    return path


def check_face_sized(width: int, height: int, name: str = "the picture") -> None:
    """Refuse a picture thinner than 16 px or longer than 8:1: it cannot hold a face, and upscaling it for a face
    detector (:func:`upscale_for_detection`) would not fit in memory, or past 32,767 px abort MediaPipe."""
    if min(width, height) < 16 or max(width, height) > 8 * min(width, height):
        raise FacesteerError(f"{name} is {width} x {height} pixels: too small or too thin to hold a face")


#: the EXIF orientation tag's values and the transpose that puts each picture upright (as ImageOps.exif_transpose)
_UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
            5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_90}  # fmt: skip


def _to_rgb(image: Image.Image, name: str, max_pixels: int | None = None) -> Image.Image:
    """``image`` as 8-bit RGB, upright (a phone photo's EXIF orientation applied), reduced by a whole factor to at
    most ``max_pixels`` (None: as it is).

    Pillow's own convert clips 16- and 32-bit integer pixels at 255 (a 16-bit grey photo would turn white), so
    those are scaled from their bit depth first, a slice of rows at a time; float pixels have no agreed range.
    The picture is reduced before it is turned and converted, so no full-size copy of it is made."""
    orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        width, height = image.size
        depth = 65535 if image.mode.startswith("I;16") or image.getextrema()[1] > 255 else 255
        grey = np.empty((height, width), np.uint8)
        for top in range(0, height, _ROWS_PER_CHUNK):  # in slices: a copy of it all in wider integers is 4-8x
            rows = np.asarray(image.crop((0, top, width, min(top + _ROWS_PER_CHUNK, height))), dtype=np.int64)
            grey[top : top + _ROWS_PER_CHUNK] = (np.clip(rows, 0, depth) * 255 + depth // 2) // depth  # rounded
        image = Image.fromarray(grey)
    elif image.mode == "F":
        raise FacesteerError(f"{name} has 32-bit float pixels, which have no agreed range: save it with 8 or 16 bits")
    if max_pixels is not None and image.width * image.height > max_pixels:
        if image.mode not in ("L", "LA", "RGB", "RGBA", "CMYK", "I"):  # the modes Image.reduce takes
            image = image.convert("RGBA" if "transparency" in image.info or "A" in image.mode else "RGB")
        image = image.reduce(math.ceil(math.sqrt(image.width * image.height / max_pixels)))
    if orientation in _UPRIGHT:
        image = image.transpose(_UPRIGHT[orientation])
    return image.convert("RGB")


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as uint8 RGB (H, W, 3), upright (phone photos' EXIF orientation applied), 16-bit
    pictures scaled to 8 bits; a clear error for a missing or corrupt file."""
    path = Path(path)
    if not path.is_file():
        raise FacesteerError(f"image {path} not found")
    try:
        with Image.open(path) as image:
            return np.asarray(_to_rgb(image, str(path)))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise FacesteerError(f"{path} is not a readable image: {error}") from None


def decode_image(
    data: bytes,
    name: str = "the upload",
    max_pixels: int = MAX_UPLOAD_PIXELS,
    max_decoded_pixels: int = MAX_DECODED_PIXELS,
) -> np.ndarray:
    """Decode an uploaded picture (JPEG, PNG, WebP, GIF, BMP or TIFF bytes) as uint8 RGB (H, W, 3), in memory,
    upright, reduced by a whole factor to at most ``max_decoded_pixels`` (a face needs no more; a JPEG is decoded
    at the reduced scale, which is also faster).

    The size is checked from the header before the pixels are decoded, so a huge picture or a decompression bomb
    costs nothing; formats that decode while the header is read (ICO, ICNS) are not accepted. Pictures thinner
    than 16 px or longer than 8:1 cannot hold a face (and upscaling them for the detector would not fit in
    memory). A truncated file is refused, not padded.

    Raises:
        FacesteerError: empty, not an image, truncated or corrupt, too many pixels, or too thin.
    """
    if not data:
        raise FacesteerError(f"{name} is empty")
    try:
        with Image.open(io.BytesIO(data), formats=UPLOAD_FORMATS) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise FacesteerError(f"{name} is {width} x {height} pixels; at most {max_pixels:,} are accepted")
            check_face_sized(width, height, name)
            if image.format == "JPEG":
                check_jpeg(data, width * height, name)
                if width * height > max_decoded_pixels:  # libjpeg decodes at 1/2, 1/4 or 1/8 scale for less
                    factor = math.sqrt(width * height / max_decoded_pixels)
                    image.draft("RGB", (math.ceil(width / factor), math.ceil(height / factor)))
            image.load()
            return np.asarray(_to_rgb(image, name, max_decoded_pixels))
    except FacesteerError:
        raise
    except Image.UnidentifiedImageError:
        raise FacesteerError(f"{name} is not an image (or not a format this server reads)") from None
    except Image.DecompressionBombError:  # Pillow's own limit, from the header
        raise FacesteerError(f"{name} declares too many pixels; at most {max_pixels:,} are accepted") from None
    except MemoryError:
        raise FacesteerError(f"{name} needs more memory to decode than this server gives a picture") from None
    except Exception as error:  # any decoder's complaint about broken bytes (OSError, EOFError, struct.error...)
        raise FacesteerError(f"{name} is truncated or corrupt: {type(error).__name__}: {error}") from None


def check_jpeg(data: bytes, pixels: int, name: str = "the upload") -> None:
    """Refuse a JPEG whose decoding would cost out of proportion to its bytes: more than MAX_JPEG_SCANS scans
    (start-of-scan markers: a 0xFF in the coded data is always followed by 0x00, so FF DA is only ever a marker),
    or fewer bytes than ``pixels`` need (truncated: libjpeg pads what is missing instead of failing)."""
    scans = data.count(b"\xff\xda")
    if scans > MAX_JPEG_SCANS:
        raise FacesteerError(f"{name} is a JPEG of {scans:,} scans; at most {MAX_JPEG_SCANS} are accepted")
    if len(data) < pixels * MIN_JPEG_BYTES_PER_PIXEL:
        raise FacesteerError(f"{name} is truncated or corrupt: {len(data):,} bytes cannot hold {pixels:,} pixels")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(image: np.ndarray) -> bytes:
    """A uint8 (H, W, 3) picture as PNG bytes (the same pixels give the same bytes).

    Written here rather than by Pillow because the editor encodes one per edit: every row with PNG's "Sub" filter
    (numpy, wrapping mod 256), one zlib pass at level 1 (which releases the GIL): 0.18 ms and 8.6 KB for a 64 px
    face against Pillow's 0.57 ms and 7.3 KB (bench/RESULTS.md). Any PNG reader decodes the exact pixels (tested).
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise FacesteerError(f"expected a uint8 (H, W, 3) picture, got {image.dtype} {image.shape}")
    height, width, _ = image.shape
    flat = image.reshape(height, width * 3)
    rows = np.empty((height, width * 3 + 1), np.uint8)
    rows[:, 0] = 1  # filter type Sub: each byte minus the byte one pixel to its left
    rows[:, 1:4] = flat[:, :3]
    rows[:, 4:] = flat[:, 3:] - flat[:, :-3]
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, truecolour, no interlace
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 1))
            + _png_chunk(b"IEND", b""))  # fmt: skip


def resize_shorter_side(image: np.ndarray, size: int) -> np.ndarray:
    """Resize (bicubic; antialiased when shrinking) so the shorter side is ``size`` px, keeping the aspect ratio."""
    height, width = image.shape[:2]
    scale = size / min(height, width)
    resized = Image.fromarray(image).resize((round(width * scale), round(height * scale)), Image.BICUBIC)
    return np.asarray(resized)


def upscale_for_detection(image: np.ndarray, size: int = DETECTION_SIZE) -> np.ndarray:
    """Resize (bicubic) so the shorter side is at least ``size``; larger images are returned unchanged."""
    return image if min(image.shape[:2]) >= size else resize_shorter_side(image, size)
