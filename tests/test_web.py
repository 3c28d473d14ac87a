"""The editor's HTTP API in-process: every kind of bad input gets a 4xx with a one-line reason, and nothing stays."""

from __future__ import annotations

import base64
import gc
import io
import struct
import tempfile
import tracemalloc
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from facesteer.discovery.directions import load_direction_set
from facesteer.service import EditorService, RateLimitedError, load_controls
from facesteer.service.limits import RateLimit
from facesteer.web.app import LOOPBACK_HOSTS, MAX_JSON_BYTES, allowed_hosts_for, create_app
from tests.test_service import CELEBA, fake_png, ico_holding_png


@pytest.fixture(scope="module")
def service(generator):
    service = EditorService(generator, load_controls(generator, load_direction_set(None, generator.name), None))
    service.new_session_limit = RateLimit(10_000, 60.0)  # these tests start many; the limit has its own test
    yield service
    service.close()


@pytest.fixture(scope="module")
def client(service):
    return TestClient(create_app(service, max_upload_bytes=2 * 2**20))


@pytest.fixture
def session(client):
    return client.post("/api/sessions", json={"seed": 1}).json()["session"]


def jpeg(size=(60, 60), colour=(128, 128, 128)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def gif_bomb() -> bytes:
    """A 65,535 x 65,535 GIF in 30 bytes."""
    screen = struct.pack("<HHBBB", 65535, 65535, 0, 0, 0)
    return b"GIF89a" + screen + b"," + struct.pack("<HHHHB", 0, 0, 65535, 65535, 0) + b"\x02\x02\x44\x01\x00;"


def webp(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height)).save(buffer, format="WEBP", lossless=True)
    return buffer.getvalue()


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def bad_requests(session: str) -> list[tuple[str, str, dict, int, str]]:
    """(method, path, request kwargs, expected status, expected words in the reason)."""
    upload = f"/api/sessions/{session}/upload"
    slider = f"/api/sessions/{session}/slider"
    return [
        ("post", upload, {"content": b"%PDF-1.4 not a picture"}, 400, "not an image"),
        ("post", upload, {"content": jpeg()[:300]}, 400, "truncated or corrupt"),
        ("post", upload, {"content": fake_png(30_000, 30_000)}, 400, "too many pixels"),
        ("post", upload, {"content": fake_png(7_000, 7_000)}, 400, "7000 x 7000 pixels"),
        ("post", upload, {"content": jpeg()}, 400, "no face found"),
        ("post", upload, {"content": gif_bomb()}, 400, "too many pixels"),
        ("post", upload, {"content": webp(8_000, 8_000)}, 400, "8000 x 8000 pixels"),
        ("post", upload, {"content": ico_holding_png(12_000, 12_000)}, 400, "not an image"),
        ("post", upload, {"content": fake_png(16, 2_500_000)}, 400, "too thin"),
        ("post", upload, {"content": b"\xff" * (2 * 2**20 + 1)}, 413, "over 2,097,152 bytes"),
        ("post", upload, {"content": iter([b"\xff" * 2**20] * 3)}, 413, "over 2,097,152 bytes"),  # chunked
        ("post", upload, {"content": b""}, 400, "empty"),
        ("post", slider, {"content": b"{" + b" " * MAX_JSON_BYTES + b"}"}, 413, "over 4,096 bytes"),
        ("post", slider, {"json": {"name": "smile", "value": 3.01}}, 400, "in [-3, 3]"),
        ("post", slider, {"json": {"name": "smile", "value": -1e308}}, 400, "in [-3, 3]"),
        ("post", slider, {"content": b'{"name": "smile", "value": ' + b"9" * 400 + b"}"}, 400, "in [-3, 3]"),
        ("post", slider, {"json": {"name": "smile", "value": "NaN"}}, 422, "value"),
        ("post", slider, {"content": b'{"name": "smile", "value": NaN}'}, 400, "got nan"),
        ("post", slider, {"json": {"name": "../../etc/passwd", "value": 1}}, 400, "no slider"),
        ("post", slider, {"json": {"name": "smile"}}, 422, "value: Field required"),
        ("post", slider, {"json": {"name": "smile", "value": 1, "path": "/etc/passwd"}}, 422, "path"),
        ("post", slider, {"content": b"not json"}, 422, "json"),
        ("post", f"/api/sessions/{session}/condition", {"json": {"name": "smile", "on": "yes"}}, 422, "on"),
        ("post", f"/api/sessions/{session}/random", {"json": {"seed": -1}}, 400, "seed must be"),
        ("post", f"/api/sessions/{session}/random", {"json": {"seed": "../../x"}}, 422, "seed"),
        ("post", f"/api/sessions/{session}/random", {"json": {"seed": 2**40}}, 400, "seed must be"),
        ("post", "/api/sessions/not-a-session/undo", {}, 404, "unknown session"),
        ("post", "/api/sessions/" + "A" * 43 + "/undo", {}, 404, "unknown or expired"),
        ("post", "/api/sessions/..%2F..%2Fetc%2Fpasswd/undo", {}, 404, ""),
        ("get", "/api/sessions/" + "A" * 43 + "/image.png", {}, 404, "unknown or expired"),
        ("post", "/api/sessions/" + "A" * 43 + "/upload", {"content": jpeg()}, 404, "unknown or expired"),
        ("get", "/static/..%2Fapp.py", {}, 404, ""),
        ("get", "/static/app.py", {}, 404, "no such file"),
        # what another site's page may send without a preflight: form and text types, or no type at all
        (
            "post",
            "/api/sessions",
            {"content": b"{}", "headers": {"content-type": "text/plain"}},
            415,
            "application/json",
        ),
        ("post", "/api/sessions", {}, 415, "application/json"),
        (
            "post",
            slider,
            {"content": b'{"name": "smile", "value": 1}', "headers": {"content-type": "text/plain"}},
            415,
            "application/json",
        ),
        ("post", upload, {"content": jpeg(), "headers": {"content-type": "multipart/form-data"}}, 415, "octet-stream"),
        ("post", upload, {"content": jpeg(), "headers": {"content-type": "text/plain"}}, 415, "octet-stream"),
    ]


def typed(path: str, kwargs: dict) -> dict:
    """``kwargs`` with the content type the page sends, where the request gives none."""
    if "content" not in kwargs or "headers" in kwargs:
        return kwargs
    kind = "application/octet-stream" if path.endswith("/upload") else "application/json"
    return {**kwargs, "headers": {"content-type": kind}}


def test_bad_input_gets_a_4xx_with_one_line_and_changes_nothing(client, session):
    before = client.get(f"/api/sessions/{session}/image.png").content
    for method, path, kwargs, status, words in bad_requests(session):
        response = getattr(client, method)(path, **typed(path, kwargs))
        assert response.status_code == status, (path, kwargs.keys(), response.text)
        detail = response.json()["detail"]
        assert isinstance(detail, str) and "\n" not in detail and len(detail) <= 300, detail
        assert words.lower() in detail.lower(), (words, detail)
    assert client.get(f"/api/sessions/{session}/image.png").content == before  # still there, unchanged
    assert client.post(f"/api/sessions/{session}/slider", json={"name": "smile", "value": 1}).status_code == 200


def test_bad_input_leaves_no_memory_and_no_temporary_file(client, session, service, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    requests = [r for r in bad_requests(session) if r[3] != 404 or "sessions" not in r[1]]

    def send_all() -> None:
        for method, path, kwargs, _, _ in requests:
            getattr(client, method)(path, **kwargs)

    send_all()  # warm-up: first-use caches
    gc.collect()
    rss = rss_bytes()
    tracemalloc.start()
    start = tracemalloc.get_traced_memory()[0]
    for _ in range(3):
        send_all()
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - start
    tracemalloc.stop()
    assert grown < 512 * 1024, f"{grown} bytes kept after bad requests"
    assert rss_bytes() - rss < 64 * 2**20, "resident memory grew by more than 64 MiB"  # C allocations too
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert len(service.sessions) < 20


def test_download_is_the_png_shown(client, session):
    shown = client.post(f"/api/sessions/{session}/slider", json={"name": "age", "value": -2}).json()
    download = client.get(f"/api/sessions/{session}/image.png")
    assert download.headers["content-type"] == "image/png" and "attachment" in download.headers["content-disposition"]
    assert download.content == base64.b64decode(shown["image"])
    assert Image.open(io.BytesIO(download.content)).size == (64, 64)


def test_page_and_its_files_come_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and "facesteer" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    for name in ("editor.js", "editor.css"):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200 and "http" not in response.text.replace("HTTP ${", "")


@pytest.mark.skipif(not CELEBA.is_dir(), reason=f"{CELEBA} not found")
def test_upload_of_a_photo_shows_its_reconstruction(client, session):
    photo = sorted(Path(CELEBA).iterdir())[0].read_bytes()
    answer = client.post(
        f"/api/sessions/{session}/upload", content=photo, headers={"content-type": "application/octet-stream"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["origin"]["kind"] == "upload" and not answer.json()["can_undo"]
    assert client.get(f"/api/sessions/{session}/progress").json() == {"running": False, "done": 0, "total": 0}


def test_a_loopback_server_answers_only_its_own_host_names(service):
    assert allowed_hosts_for("127.0.0.1") == allowed_hosts_for("::1") == LOOPBACK_HOSTS
    assert allowed_hosts_for("0.0.0.0") is None  # a public server's names are not known here
    client = TestClient(create_app(service, allowed_hosts=allowed_hosts_for("127.0.0.1")),
                        base_url="http://127.0.0.1:8000")  # fmt: skip
    assert client.get("/api/info").status_code == 200
    assert client.get("/api/info", headers={"Host": "localhost:8000"}).status_code == 200
    assert client.get("/api/info", headers={"Host": "evil.example:8000"}).status_code == 400  # DNS rebinding
    client = TestClient(create_app(service, allowed_hosts=allowed_hosts_for("127.0.0.2")),
                        base_url="http://127.0.0.2:8000")  # fmt: skip
    assert client.get("/api/info").status_code == 200
    assert client.get("/api/info", headers={"Host": "evil.example:8000"}).status_code == 400  # any loopback address


def test_api_answers_are_not_cached_and_the_page_cannot_be_framed(client, session):
    for path in ("/api/info", f"/api/sessions/{session}/progress"):
        assert client.get(path).headers["cache-control"] == "no-store"
    page = client.get("/")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_new_sessions_are_limited_per_client(service, client, monkeypatch):
    """1,000 session POSTs in 2 s from one client evicted an idle user's session."""
    monkeypatch.setattr(service, "new_session_limit", RateLimit(3, 60.0))
    idle = client.post("/api/sessions", json={"seed": 1}).json()["session"]
    statuses = [client.post("/api/sessions", json={}).status_code for _ in range(5)]
    assert statuses == [200, 200, 429, 429, 429]
    refused = client.post("/api/sessions", json={})
    assert "too many new sessions from this client" in refused.json()["detail"]
    assert client.post(f"/api/sessions/{idle}/undo").status_code == 200  # the first session is still there


def test_rate_limit_slides_and_forgets_the_oldest_keys():
    now = [0.0]
    limit = RateLimit(2, 60.0, max_keys=2, clock=lambda: now[0])
    limit.check("a")
    limit.check("a")
    with pytest.raises(RateLimitedError, match="try again in 60 s"):
        limit.check("a")
    now[0] = 59.0
    with pytest.raises(RateLimitedError, match="try again in 1 s"):
        limit.check("a")
    now[0] = 60.0
    limit.check("a")  # the first two have left the window
    limit.check("b")
    limit.check("c")  # "a" is forgotten: at most two keys are kept
    assert list(limit._events) == ["b", "c"]
