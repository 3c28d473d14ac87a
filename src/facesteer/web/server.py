"""Serving the editor with uvicorn, bounded against slow and greedy clients.

uvicorn closes an idle keep-alive connection, but it waits for ever for a request's headers and lets one client
open any number of connections (each a file descriptor): 200 connections sending a header byte now and then
stayed open for minutes. :class:`GuardedH11Protocol` closes a connection that has not sent a whole request's
headers within HEADER_TIMEOUT_S of opening or of its last response, and refuses connections past
MAX_CONNECTIONS_PER_CLIENT from one address or MAX_CONNECTIONS in all. Request bodies have their own timeout
in :mod:`facesteer.web.app`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

#: seconds a connection may take to send a request's headers (from opening, or from its last response)
HEADER_TIMEOUT_S = 10.0
#: seconds an idle keep-alive connection is kept
KEEP_ALIVE_S = 5.0
#: connections one client address may hold at once (a browser opens about 6)
MAX_CONNECTIONS_PER_CLIENT = 64
#: connections held at once in all (each is a file descriptor; a process has 1,024 by default)
MAX_CONNECTIONS = 512


class GuardedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for headers and a cap on connections per client and in all."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._per_client: Counter = self.server_state.__dict__.setdefault("connections_per_client", Counter())
        self._address = self.client[0] if self.client else ""
        self._per_client[self._address] += 1
        self._header_timer: asyncio.TimerHandle | None = None
        if self._per_client[self._address] > MAX_CONNECTIONS_PER_CLIENT or len(self.connections) > MAX_CONNECTIONS:
            transport.close()  # before a byte is read: the client sees the connection closed
            return
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._per_client[self._address] -= 1
        if self._per_client[self._address] <= 0:
            del self._per_client[self._address]
        if self._header_timer is not None:
            self._header_timer.cancel()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_timer()  # the next request's headers have the same deadline

    def _arm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        waiting_after = self.cycle  # a new request replaces the cycle once its headers are in
        self._header_timer = self.loop.call_later(HEADER_TIMEOUT_S, self._headers_late, waiting_after)

    def _headers_late(self, waiting_after: Any) -> None:
        if self.cycle is waiting_after and not self.transport.is_closing():
            self.transport.close()


def config(app: Any, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for the editor: the guarded protocol and a short keep-alive."""
    return uvicorn.Config(app, http=GuardedH11Protocol, timeout_keep_alive=KEEP_ALIVE_S, log_level="warning", **options)


def serve(app: Any, host: str, port: int) -> None:
    """Serve ``app`` on ``host:port`` until Ctrl+C."""
    uvicorn.Server(config(app, host=host, port=port)).run()


@contextlib.contextmanager
def serving(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``app`` as :func:`serve` does, on a free port of ``host`` in a background thread, for as long as the
    ``with`` block lasts (tests, the README's screenshot, a notebook); yields the server's URL."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        server = uvicorn.Server(config(app))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"the server on {host} stopped before it started")
            time.sleep(0.02)
        try:
            yield f"http://{host}:{sock.getsockname()[1]}"
        finally:
            server.should_exit = True
            thread.join(timeout=10)
