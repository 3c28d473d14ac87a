"""The editor served over real sockets: what slow or greedy clients may hold (connections, bodies, time).

Every wait here has a deadline far beyond the limits under test (set to fractions of a second), so a slow
machine passes and a missing limit fails instead of hanging.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from facesteer.discovery.directions import load_direction_set
from facesteer.service import EditorService, load_controls
from facesteer.service.editor import MAX_RECEIVING_UPLOADS
from facesteer.web import app as web_app
from facesteer.web import server
from facesteer.web.app import create_app
from facesteer.web.server import serving

DEADLINE_S = 30.0


@pytest.fixture(scope="module")
def service(generator):
    service = EditorService(generator, load_controls(generator, load_direction_set(None, generator.name), None))
    yield service
    service.close()


@pytest.fixture
def url(service) -> Iterator[str]:
    with serving(create_app(service)) as url:
        yield url


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    connection = socket.create_connection((host, int(port)), timeout=DEADLINE_S)
    return connection


def answer(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection or a response's head and body are in."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        length = [
            int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        ]
        if length and len(body) >= length[0]:
            break
    return received


def request(
    method: str, path: str, body: bytes = b"", kind: str = "application/json", length: int | None = None
) -> bytes:
    size = len(body) if length is None else length
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {kind}\r\nContent-Length: {size}\r\n\r\n"
    return head.encode() + body


def new_session(url: str) -> str:
    with connect(url) as connection:
        connection.sendall(request("POST", "/api/sessions", b'{"seed": 1}'))
        reply = answer(connection)
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    return reply.split(b'"session":"')[1].split(b'"')[0].decode()


def test_a_connection_that_never_finishes_its_headers_is_closed(url, monkeypatch):
    """200 connections sending a header byte now and then stayed open for minutes (slowloris)."""
    monkeypatch.setattr(server, "HEADER_TIMEOUT_S", 0.3)
    with connect(url) as connection:
        connection.sendall(b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
        assert connection.recv(100) == b""  # closed by the server (a missing deadline fails at DEADLINE_S)
    with connect(url) as connection:  # after a response, the next request's headers have the same deadline
        connection.sendall(b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert answer(connection).startswith(b"HTTP/1.1 200")
        connection.sendall(b"GET /api/info HTTP/1.1\r\n")
        assert connection.recv(100) == b""


def test_one_client_holds_a_bounded_number_of_connections(url, monkeypatch):
    monkeypatch.setattr(server, "MAX_CONNECTIONS_PER_CLIENT", 3)
    held = [connect(url) for _ in range(3)]
    try:
        extra = connect(url)
        assert extra.recv(100) == b""  # closed before a byte is read
        extra.close()
        for connection in held:  # the first three are served
            connection.sendall(b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert answer(connection).startswith(b"HTTP/1.1 200")
    finally:
        for connection in held:
            connection.close()


def test_upload_bodies_are_read_a_few_at_a_time_and_not_for_ever(url, monkeypatch):
    """30 uploads stalled one byte short of the size limit were all held in memory (+298 MiB), with no timeout."""
    monkeypatch.setattr(web_app, "BODY_TIMEOUT_S", 1.0)
    session = new_session(url)
    path = f"/api/sessions/{session}/upload"
    stalled = [connect(url) for _ in range(MAX_RECEIVING_UPLOADS)]
    try:
        for connection in stalled:  # a body announced at 1,000 bytes, 10 sent
            connection.sendall(request("POST", path, b"\xff" * 10, "application/octet-stream", length=1000))
        with connect(url) as another:
            another.sendall(request("POST", path, b"\xff" * 1000, "application/octet-stream"))
            assert answer(another).startswith(b"HTTP/1.1 503")  # busy while the slots are held
        for connection in stalled:  # each stalled body ends in a 408 once its time is up
            reply = answer(connection)
            assert reply.startswith(b"HTTP/1.1 408") and b"took more than 1 s" in reply, reply[:300]
    finally:
        for connection in stalled:
            connection.close()
    with connect(url) as again:  # the slots are free again
        again.sendall(request("POST", path, b"\xff" * 1000, "application/octet-stream"))
        assert answer(again).startswith(b"HTTP/1.1 400")  # read whole, then refused: not an image
