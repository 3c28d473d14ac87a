"""The browser editor: a FastAPI app over :class:`facesteer.service.EditorService`, and its one page.

Routes (JSON in and out; a face travels as base64 PNG in ``image``):

    GET  /                                  the page (HTML, JS and CSS from this package: no CDN)
    GET  /api/info                          generator, sliders, conditions
    POST /api/sessions            {seed?}   a new session with a random face
    POST /api/sessions/ID/random  {seed?}   another random face
    POST /api/sessions/ID/upload  (bytes)   the picture's inversion (raw body, at most ``max_upload_bytes``)
    GET  /api/sessions/ID/progress          {done, total} of a running inversion
    POST /api/sessions/ID/slider  {name, value}
    POST /api/sessions/ID/condition {name, on}
    POST /api/sessions/ID/undo | /reset
    GET  /api/sessions/ID/image.png         the face shown, as a download

Bad input is a 4xx whose JSON ``detail`` is one line: 400 (not an image, no face, out of range, unknown
slider), 404 (unknown or expired session), 413 (body too large), 422 (a field of the wrong type), 503 (an upload
or too many renders already queued: try again). Uploads are
read into memory (never a temporary file), and every request body is capped before it is read whole.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from importlib import resources
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, StrictBool, StrictFloat, StrictInt, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.middleware.trustedhost import TrustedHostMiddleware

from facesteer.errors import FacesteerError
from facesteer.service import EditorService, ServiceBusyError, UnknownSessionError, View

#: uploads larger than this are refused (413) before they are read whole
MAX_UPLOAD_BYTES = 10 * 2**20
#: JSON bodies larger than this are refused (413)
MAX_JSON_BYTES = 4096
#: the Host headers a server listening on loopback answers
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
#: the addresses a server can be told to listen on that are loopback
LOOPBACK_ADDRESSES = ("127.0.0.1", "localhost", "::1")
#: the files of the page, served from this package only
PAGE_FILES = {"editor.js": "text/javascript", "editor.css": "text/css"}


class SecurityHeaders:
    """Adds a Content-Security-Policy (this server's own files and data: images only) and nosniff to every
    response; plain ASGI (Starlette's BaseHTTPMiddleware would cost each request a task and a stream)."""

    HEADERS = ((b"content-security-policy", b"default-src 'self'; img-src 'self' data:"),
               (b"x-content-type-options", b"nosniff"))  # fmt: skip

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLargeError(Exception):
    """A request body over its cap."""


class SeedRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seed: StrictInt | None = None


class SliderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    value: StrictFloat | StrictInt


class ConditionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    on: StrictBool


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it passes ``limit`` bytes (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BodyTooLargeError(f"request body over {limit:,} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(f"request body over {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def parse(request: Request, model: type[BaseModel]) -> Any:
    """A JSON body of ``model`` (an empty body is ``{}``), capped at MAX_JSON_BYTES."""
    body = await read_body(request, MAX_JSON_BYTES)
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as error:  # answered like FastAPI's own validation errors: 422, one line
        raise RequestValidationError(error.errors()) from None


def allowed_hosts_for(listen_host: str) -> list[str] | None:
    """The Host headers a server listening on ``listen_host`` answers: only loopback names on loopback (against
    DNS rebinding), any elsewhere (the names a public server is reached by are not known here)."""
    return LOOPBACK_HOSTS if listen_host in LOOPBACK_ADDRESSES else None


def create_app(
    service: EditorService, max_upload_bytes: int = MAX_UPLOAD_BYTES, allowed_hosts: list[str] | None = None
) -> FastAPI:
    """The editor's app over ``service`` (which the caller owns and closes).

    ``allowed_hosts``: the Host headers answered (others get a 400), against DNS rebinding of a server on
    loopback; None answers any.
    """
    app = FastAPI(title="facesteer editor", docs_url=None, redoc_url=None, openapi_url=None)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)

    def answer(view: View) -> JSONResponse:
        # a JSONResponse goes out as is: no re-validation of a dict we built (it costs more than the rest)
        return JSONResponse({**view.to_json(), "image": base64.b64encode(view.png).decode("ascii")})

    app.add_middleware(SecurityHeaders)

    @app.exception_handler(FacesteerError)
    async def bad_input(_request: Request, error: FacesteerError) -> JSONResponse:
        status = 404 if isinstance(error, UnknownSessionError) else 503 if isinstance(error, ServiceBusyError) else 400
        return JSONResponse({"detail": one_line(str(error))}, status_code=status)

    @app.exception_handler(BodyTooLargeError)
    async def too_large(_request: Request, error: BodyTooLargeError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=413)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
        return JSONResponse({"detail": one_line(f"{where}: {first.get('msg', 'invalid')}")}, status_code=422)

    @app.get("/")
    async def page() -> Response:
        return Response(page_file("index.html"), media_type="text/html")

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in PAGE_FILES:
            return JSONResponse({"detail": "no such file"}, status_code=404)
        return Response(page_file(name), media_type=PAGE_FILES[name])

    @app.get("/api/info")
    async def info() -> dict[str, Any]:
        return service.describe()

    @app.post("/api/sessions")
    async def new_session(request: Request) -> JSONResponse:
        seed = (await parse(request, SeedRequest)).seed
        return answer(await run(service.new_session, seed))

    @app.post("/api/sessions/{session_id}/random")
    async def random_face(session_id: str, request: Request) -> JSONResponse:
        seed = (await parse(request, SeedRequest)).seed
        return answer(await run(service.random_face, session_id, seed))

    @app.post("/api/sessions/{session_id}/upload")
    async def upload(session_id: str, request: Request) -> JSONResponse:
        service.sessions.get(session_id)  # an unknown session, or a busy server, is refused before the body is read
        if service.uploads_busy():
            raise ServiceBusyError("another upload is being inverted: try again in a few seconds")
        data = await read_body(request, max_upload_bytes)
        return answer(await run(service.upload, session_id, data))

    @app.get("/api/sessions/{session_id}/progress")
    async def progress(session_id: str) -> dict[str, Any]:
        done = service.progress(session_id)
        return {"running": done is not None, "done": done[0] if done else 0, "total": done[1] if done else 0}

    @app.post("/api/sessions/{session_id}/slider")
    async def slider(session_id: str, request: Request) -> JSONResponse:
        body = await parse(request, SliderRequest)
        return answer(await run(service.set_slider, session_id, body.name, body.value))

    @app.post("/api/sessions/{session_id}/condition")
    async def condition(session_id: str, request: Request) -> JSONResponse:
        body = await parse(request, ConditionRequest)
        return answer(await run(service.set_condition, session_id, body.name, body.on))

    @app.post("/api/sessions/{session_id}/undo")
    async def undo(session_id: str) -> JSONResponse:
        return answer(await run(service.undo, session_id))

    @app.post("/api/sessions/{session_id}/reset")
    async def reset(session_id: str) -> JSONResponse:
        return answer(await run(service.reset, session_id))

    @app.get("/api/sessions/{session_id}/image.png")
    def image(session_id: str) -> Response:  # waits for the session lock: on the thread pool
        headers = {"Content-Disposition": 'attachment; filename="facesteer.png"', "Cache-Control": "no-store"}
        return Response(service.png(session_id), media_type="image/png", headers=headers)

    return app


async def run(function: Any, *args: Any) -> Any:
    """Run a blocking service call on the thread pool (the render queue batches what arrives meanwhile)."""
    return await run_in_threadpool(function, *args)


def one_line(text: str) -> str:
    """The first line of ``text``, at most 300 characters."""
    line = text.strip().splitlines()[0] if text.strip() else "bad request"
    return line[:300]


def page_file(name: str) -> bytes:
    """A file of the page, from this package."""
    return resources.files("facesteer.web").joinpath("static", name).read_bytes()


@contextlib.contextmanager
def serving(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve an ASGI ``app`` with uvicorn on a free port of ``host`` in a background thread, for as long as the
    ``with`` block lasts (tests, the README's screenshot, a notebook); yields the server's URL."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
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
