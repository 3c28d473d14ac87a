"""The editing service (no HTTP): sessions, history, conditions, batching, bounds and uploads."""

from __future__ import annotations

import io
import platform
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facesteer.discovery.directions import Directions, load_direction_set
from facesteer.errors import FacesteerError
from facesteer.images import decode_image, encode_png
from facesteer.service import (
    Control,
    EditorService,
    ServiceBusyError,
    SessionStore,
    UnknownSessionError,
    load_controls,
)
from facesteer.service.batching import RenderQueue, padded_size
from facesteer.service.sessions import SESSION_ID, EditState, Entry
from tests.conftest import deep_png, requires_models

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CELEBA = SHARED / "data" / "celeba-sample"


@pytest.fixture(scope="module")
def service(generator):
    # the shipped named directions of the default generator, as attributes, so they can also be conditions
    directions = load_direction_set(None, generator.name)
    service = EditorService(generator, load_controls(generator, directions, None))
    yield service
    service.close()


def open_session(service: EditorService, seed: int):
    """A new session's state object (operations change it in place)."""
    return service.sessions.get(service.new_session(seed).session)


def test_same_seed_same_bytes_and_ids_are_unguessable(service):
    first, second, other = service.new_session(5), service.new_session(5), service.new_session(6)
    assert first.png == second.png and first.png != other.png
    assert first.session != second.session
    assert all(SESSION_ID.fullmatch(s.session) for s in (first, second, other))
    assert first.png == encode_png(service.generator.synthesize(service.generator.sample_z(1, 5))[0])


def test_slider_moves_the_code_along_its_direction_and_undo_reset_restore_bytes(service):
    session = open_session(service, 11)
    original = session.png
    service.set_slider(session.id, "smile", 2.0)
    moved = session.png
    assert moved != original and session.state.slider("smile") == 2.0
    expected = session.code + 2.0 * service.controls["smile"].vector.astype(np.float32)
    np.testing.assert_allclose(service.code_for(session, session.state), expected, atol=1e-6)
    service.set_slider(session.id, "age", -1.5)
    service.undo(session.id)
    assert session.png == moved
    service.reset(session.id)
    assert session.png == original and session.state == EditState()
    service.undo(session.id)  # reset is a step of its own
    assert session.png == moved
    service.undo(session.id)
    service.undo(session.id)  # nothing left to undo: not an error
    assert session.png == original and len(session.history) == 1


def test_conditions_project_other_sliders_off_them(generator):
    shipped = load_direction_set(None, generator.name)  # orthonormal: make two that are not
    smile, age = (shipped.vectors[shipped.index(name)].astype(np.float64) for name in ("smile", "age"))
    mixed = Directions(np.stack([smile, 0.6 * smile + 0.8 * age]), "test", generator.name, "z", names=["smile", "mix"])
    service = EditorService(generator, load_controls(generator, mixed, None))
    try:
        session = open_session(service, 3)
        mix = service.controls["mix"].vector
        service.set_condition(session.id, "mix", True)
        service.set_slider(session.id, "smile", 3.0)
        offset = service.code_for(session, session.state) - session.code
        assert abs(float(offset @ mix)) < 1e-4 and float(offset @ smile) > 0  # smile moved, mix kept
        service.set_slider(session.id, "mix", 1.0)  # a condition never applies to its own slider
        offset = service.code_for(session, session.state) - session.code
        assert float(offset @ mix) == pytest.approx(1.0, abs=1e-4)
        service.set_condition(session.id, "mix", False)
        offset = service.code_for(session, session.state) - session.code
        assert float(offset @ mix) == pytest.approx(1.0 + 3.0 * 0.6, abs=1e-4)
    finally:
        service.close()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("smile", 3.5, "in [-3, 3]"),
        ("smile", float("nan"), "in [-3, 3]"),
        ("../../etc/passwd", 1.0, "no slider"),
        ("smile", "1", "in [-3, 3]"),
        ("smile", 10**400, "in [-3, 3]"),  # too large for a float: refused, not an OverflowError
        ("smile", True, "in [-3, 3]"),
    ],
)
def test_bad_slider_values_are_refused_and_change_nothing(service, name, value, message):
    session = open_session(service, 1)
    with pytest.raises(FacesteerError, match=message.replace("[", r"\[").replace("]", r"\]")):
        service.set_slider(session.id, name, value)
    assert len(session.history) == 1


def test_unknown_malformed_and_expired_sessions(generator):
    now = [0.0]
    service = EditorService(generator, load_controls(generator, load_direction_set(None, generator.name), None),
                            store=SessionStore(ttl=60, clock=lambda: now[0]))  # fmt: skip
    try:
        session = open_session(service, 0)
        for bad in ("nope", "../" * 15, session.id[:-1] + ("A" if session.id[-1] != "A" else "B")):
            with pytest.raises(UnknownSessionError):
                service.undo(bad)
        now[0] = 59.0
        service.undo(session.id)  # a use keeps it alive
        now[0] = 118.0
        service.undo(session.id)
        now[0] = 179.0
        with pytest.raises(UnknownSessionError, match="expired"):
            service.undo(session.id)
        assert len(service.sessions) == 0
    finally:
        service.close()


def test_store_bounds_sessions_history_and_bytes():
    store = SessionStore(max_sessions=3, max_history=4, max_session_bytes=10_000, max_total_bytes=25_000)
    code = np.zeros(8, np.float32)
    sessions = [store.create(code, {}, b"x" * 1000) for _ in range(4)]
    assert len(store) == 3  # the least recently used went first
    with pytest.raises(UnknownSessionError):
        store.get(sessions[0].id)
    store.get(sessions[1].id)  # now the most recent: the next eviction takes sessions[2]
    store.create(code, {}, b"x" * 1000)
    with pytest.raises(UnknownSessionError):
        store.get(sessions[2].id)
    kept = sessions[1]
    for k in range(10):
        store.push(kept, Entry(EditState().with_slider("a", k + 1.0), b"y" * 1000))
    assert len(kept.history) == 4 and kept.history[0].png == b"x" * 1000  # the face as it came stays
    for k in range(10):
        store.push(kept, Entry(EditState().with_slider("a", -k - 1.0), b"z" * 3000))
    assert kept.nbytes() <= 10_000 + 3_128 and len(kept.history) >= 2
    for k in range(3):
        store.push(kept, Entry(EditState().with_slider("b", k + 1.0), b"w" * 4000))
    assert store.total_bytes() <= 25_000
    with store._lock:  # the running total is the sum over the sessions held
        assert store._total == sum(s.nbytes() for s in store._sessions.values())


def render_together(queue: RenderQueue, codes: np.ndarray) -> list[object]:
    """Render every code from its own thread at once (the queue batches them): each one's result, or the
    RuntimeError its render raised."""
    results: dict[int, object] = {}

    def render(i: int) -> None:
        try:
            results[i] = queue.render(codes[i])
        except RuntimeError as error:
            results[i] = error

    threads = [threading.Thread(target=render, args=(i,)) for i in range(len(codes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [results[i] for i in range(len(codes))]


def test_render_queue_batches_concurrent_requests(generator):
    codes = generator.sample_z(12, 4)
    queue = RenderQueue(generator, "z", max_batch=12, max_wait=0.5)
    try:
        results = render_together(queue, codes)
        assert queue.rendered == 12 and queue.batches < 12
        alone = generator.synthesize(codes)
        for i in range(12):  # a batch's companions do not change a face beyond rounding
            assert np.abs(results[i].astype(int) - alone[i].astype(int)).max() <= 1
        with pytest.raises(FacesteerError, match="shape"):
            queue.render(np.zeros(3, np.float32))
    finally:
        queue.close()


def test_render_queue_finishes_each_image_on_its_worker_thread(generator):
    """The service encodes its PNGs in the queue's worker (one thread per batch, not one request thread per face)."""
    finished_on: list[str] = []

    def finish(image: np.ndarray) -> bytes:
        finished_on.append(threading.current_thread().name)
        return encode_png(image)

    queue = RenderQueue(generator, "z", max_batch=4, max_wait=0.0, finish=finish)
    try:
        code = generator.sample_z(1, 4)[0]
        assert queue.render(code) == encode_png(generator.synthesize(code[None])[0])
        assert finished_on == ["facesteer-render"]
    finally:
        queue.close()
    # a finish that fails on one face fails that request alone; its batch's companions and the worker carry on
    codes = generator.sample_z(3, 5)
    bad = generator.synthesize(codes[1:2])[0]
    refuse = lambda image: b"bad" if not np.array_equal(image, bad) else 1 / 0  # noqa: E731
    queue = RenderQueue(generator, "z", max_batch=3, max_wait=1.0, finish=refuse)  # one batch for the three
    try:
        outcomes = render_together(queue, codes)
        assert queue.batches == 1
        assert outcomes[0] == outcomes[2] == b"bad"
        assert str(outcomes[1]) == "finishing the image failed: ZeroDivisionError: division by zero"
        assert queue.render(codes[0]) == b"bad"  # the worker lives
    finally:
        queue.close()
    service = EditorService(generator, [Control("a", "attribute", np.eye(generator.z_dim)[0])], max_batch=4)
    try:  # the service's queue hands back PNG bytes, which it shows as they are
        view = service.new_session(seed=3)
        assert decode_image(view.png).shape == (generator.resolution, generator.resolution, 3)
        assert service.queue.finish is encode_png
    finally:
        service.close()


def test_batches_take_few_shapes():
    assert [padded_size(n, 32) for n in (1, 2, 3, 5, 8, 9, 17, 32)] == [1, 2, 4, 8, 8, 16, 32, 32]
    assert padded_size(7, 6) == 6 and padded_size(1, 1) == 1


def fake_png(width: int, height: int, rows: bytes | None = None) -> bytes:
    """A 1-bit greyscale PNG of any declared size; its pixel data is ``rows`` (zeros compress to almost nothing)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    data = rows if rows is not None else zlib.compress(b"\0" * ((width + 7) // 8 + 1) * min(height, 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def ico_holding_png(width: int, height: int) -> bytes:
    """An ICO file whose one entry is a PNG of the given size (Pillow decodes it while opening the file)."""
    inner = fake_png(width, height)
    entry = struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(inner), 6 + 16)
    return struct.pack("<HHH", 0, 1, 1) + entry + inner


def test_decode_image_refuses_bad_uploads_from_their_header():
    photo = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(photo, format="JPEG")
    assert decode_image(photo.getvalue()).shape == (30, 40, 3)
    for data, message in [
        (b"", "empty"),
        (b"GIF89a not really", "not an image|truncated or corrupt"),
        (b"just some text", "not an image"),
        (photo.getvalue()[: len(photo.getvalue()) // 2], "truncated or corrupt"),
        (fake_png(7_000, 7_000), "7000 x 7000 pixels; at most 40,000,000"),
        (fake_png(16, 2_500_000), "too small or too thin"),  # would be upscaled to 256 x 40,000,000 for detection
        (fake_png(1, 1000), "too small or too thin"),
        (ico_holding_png(2_000, 2_000), "not an image"),  # ICO decodes inside its header read: not accepted
        (fake_png(30_000, 30_000), "too many pixels; at most 40,000,000"),  # Pillow's bomb check, from the header
    ]:
        with pytest.raises(FacesteerError, match=message):
            decode_image(data)


def test_nudges_are_read_and_written_under_one_lock(service):
    view = service.new_session(8)
    threads = [threading.Thread(target=service.nudge_slider, args=(view.session, "smile", 1.0)) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert service.show(view.session).state.slider("smile") == 3.0  # five presses, clipped at the limit
    toggles = [threading.Thread(target=service.set_condition, args=(view.session, "age", None)) for _ in range(3)]
    for thread in toggles:
        thread.start()
    for thread in toggles:
        thread.join()
    assert service.show(view.session).state.conditions == {"age"}  # on, off, on


#: a server's pool: each hostile upload on a thread of its own that lives on; the memory is read once all are done
LARGE_UPLOADS_ON_MANY_THREADS = """
import os, sys, threading
from facesteer.errors import FacesteerError
from facesteer.service import EditorService

def rss_mib():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

service = EditorService.load("dcgan-digiface64")
session = service.new_session(0).session
picture = open(sys.argv[1], "rb").read()

def upload():
    try:
        service.upload(session, picture)
    except FacesteerError:  # decoded, then no face found
        pass

upload()  # the aligner's models load on the first upload
before = rss_mib()
turns = [threading.Event() for _ in range(17)]

def worker(index):
    turns[index].wait(timeout=300)
    try:
        upload()
    finally:
        turns[index + 1].set()
    turns[-1].wait(timeout=300)  # stay alive, as a pool's threads do, until every upload is done

threads = [threading.Thread(target=worker, args=(index,)) for index in range(16)]
for thread in threads:
    thread.start()
turns[0].set()
turns[-1].wait(timeout=300)
print(round(rss_mib() - before))
for thread in threads:
    thread.join()
"""


@requires_models
@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc arenas are glibc's (Linux)")
def test_large_uploads_on_many_threads_leave_the_memory_where_it_was(tmp_path):
    """Sixteen 84 KB 16-bit PNGs of 40 megapixels, one after another, each from a thread of its own that lives
    on: the editor kept +973 MiB for good (each thread's malloc arena kept its decoding peak; facesteer.memory)."""
    path = tmp_path / "deep.png"
    path.write_bytes(deep_png())
    result = subprocess.run([sys.executable, "-c", LARGE_UPLOADS_ON_MANY_THREADS, str(path)],
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    growth_mib = int(result.stdout.strip().splitlines()[-1])
    assert growth_mib < 128, growth_mib


def test_a_second_waiting_upload_is_refused_as_busy(service):
    view = service.new_session(9)
    release = threading.Event()
    original = service._get_aligner

    def slow_aligner():
        release.wait(10)
        return original()

    grey = io.BytesIO()
    Image.new("RGB", (100, 100), (128, 128, 128)).save(grey, format="JPEG")
    failures: list[str] = []

    def upload_grey() -> None:
        try:
            service.upload(view.session, grey.getvalue())
        except FacesteerError as error:
            failures.append(str(error))

    service._get_aligner = slow_aligner
    try:
        threads = [threading.Thread(target=upload_grey) for _ in range(2)]
        for thread in threads:
            thread.start()
        for _ in range(1000):  # until both uploads are counted (the first waits in the aligner)
            if service.uploads_busy():
                break
            time.sleep(0.01)
        assert service.uploads_busy()
        with pytest.raises(ServiceBusyError, match="another upload"):
            service.upload(view.session, b"whatever")
    finally:
        release.set()
        for thread in threads:
            thread.join()
        service._get_aligner = original
    assert not service.uploads_busy() and len(failures) == 2 and all("no face" in f for f in failures)


@pytest.mark.skipif(not CELEBA.is_dir(), reason=f"{CELEBA} not found")
def test_upload_inverts_a_photo_and_refuses_one_without_a_face(service, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # anything written to a temporary file lands here
    session = open_session(service, 2)
    photo = sorted(CELEBA.iterdir())[0].read_bytes()
    service.set_slider(session.id, "smile", 1.0)
    service.upload(session.id, photo, "photo.jpg")
    assert session.origin["kind"] == "upload" and len(session.history) == 1 and session.progress is None
    shown = np.asarray(Image.open(io.BytesIO(session.png)))
    assert shown.shape == (64, 64, 3)
    before = session.png
    blank = io.BytesIO()
    Image.new("RGB", (200, 200), (128, 128, 128)).save(blank, format="PNG")
    with pytest.raises(FacesteerError, match="no face"):
        service.upload(session.id, blank.getvalue(), "blank.png")
    assert session.png == before and session.progress is None
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # (torch may make an empty cache folder)


def test_encode_png_round_trips_exactly(generator):
    images = generator.synthesize(generator.sample_z(4, 2))
    odd = np.random.default_rng(0).integers(0, 256, (7, 13, 3), dtype=np.uint8)  # wrap-around in the Sub filter
    for image in [*images, odd]:
        data = encode_png(image)
        assert data == encode_png(image.copy())
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), image)
    with pytest.raises(FacesteerError, match="uint8"):
        encode_png(images[0].astype(np.float32))
