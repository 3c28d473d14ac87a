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

JSON bodies are sent as ``application/json`` and pictures as ``application/octet-stream`` or ``image/*``: types
another site's page cannot send here without a CORS preflight, which this server never grants.

Bad input is a 4xx whose JSON ``detail`` is one line: 400 (not an image, no face, out of range, unknown
slider), 404 (unknown or expired session), 408 (a body slower than BODY_TIMEOUT_S), 413 (body too large), 415
(another content type), 422 (a field of the wrong type), 429 (new sessions too often from one client), 503 (uploads
or too many renders already queued: try again). Uploads are read into memory (never a temporary file), at most
MAX_RECEIVING_UPLOADS at once (:mod:`facesteer.service.editor`), and every request body is capped before it is
read whole. Connections are bounded in :mod:`facesteer.web.server`.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, StrictBool, StrictFloat, StrictInt, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.middleware.trustedhost import TrustedHostMiddleware

from facesteer.errors import FacesteerError
from facesteer.service import EditorService, RateLimitedError, ServiceBusyError, UnknownSessionError, View

#: uploads larger than this are refused (413) before they are read whole
MAX_UPLOAD_BYTES = 10 * 2**20
#: JSON bodies larger than this are refused (413)
MAX_JSON_BYTES = 4096
#: seconds a request body may take to arrive (10 MiB at 1.5 Mbit/s); slower is refused (408)
BODY_TIMEOUT_S = 60.0
#: the content types an upload may be sent as: never one a cross-site form or fetch may send without asking
UPLOAD_TYPES = ("application/octet-stream", "image/")
#: the Host headers a server listening on loopback answers
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
#: the addresses a server can be told to listen on that are loopback
LOOPBACK_ADDRESSES = ("127.0.0.1", "localhost", "::1")
#: the files of the page, served from this package only
PAGE_FILES = {"editor.js": "text/javascript", "editor.css": "text/css"}


class SecurityHeaders:
    """Adds a Content-Security-Policy (this server's own files and data: images only; no framing by other pages)
    and nosniff to every response, and no-store to the API's (a session's faces stay out of caches); plain ASGI
    (Starlette's BaseHTTPMiddleware would cost each request a task and a stream)."""

    HEADERS = ((b"content-security-policy", b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
               (b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"))  # fmt: skip

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        api = scope["path"].startswith("/api/")

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *self.HEADERS]
                if api and not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLargeError(Exception):
    """A request body over its cap."""


class BodyTooSlowError(Exception):
    """A request body that took longer than BODY_TIMEOUT_S to arrive."""


class WrongContentTypeError(Exception):
    """A body of a content type the route does not take."""


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
    """The request body, refused as soon as it passes ``limit`` bytes (declared or streamed) or BODY_TIMEOUT_S."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BodyTooLargeError(f"request body over {limit:,} bytes")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(BODY_TIMEOUT_S):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BodyTooLargeError(f"request body over {limit:,} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTooSlowError(f"the request body took more than {BODY_TIMEOUT_S:.0f} s to arrive") from None
    return b"".join(chunks)


def content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def parse(request: Request, model: type[BaseModel]) -> Any:
    """A JSON body of ``model`` (an empty body is ``{}``), capped at MAX_JSON_BYTES; sent as application/json,
    which no other site's page can send here without this server's leave (a CORS preflight it never grants)."""
    if content_type(request) != "application/json":
        raise WrongContentTypeError("send the body as Content-Type: application/json")
    body = await read_body(request, MAX_JSON_BYTES)
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as error:  # answered like FastAPI's own validation errors: 422, one line
        raise RequestValidationError(error.errors()) from None


def allowed_hosts_for(listen_host: str) -> list[str] | None:
    """The Host headers a server listening on ``listen_host`` answers: only loopback names and the address itself
    on any loopback address (127.0.0.0/8, ::1: against DNS rebinding), any elsewhere (the names a public server
    is reached by are not known here)."""
    if listen_host in LOOPBACK_ADDRESSES:
        return LOOPBACK_HOSTS
    try:
        address = ipaddress.ip_address(listen_host.strip("[]"))
    except ValueError:
        return None  # a name: whatever it resolves to, its clients reach it by names not known here
    if not address.is_loopback:
        return None
    return [*LOOPBACK_HOSTS, f"[{address}]" if address.version == 6 else str(address)]


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
        return JSONResponse({"detail": one_line(str(error))}, status_code=status_of(error))

    @app.exception_handler(BodyTooLargeError)
    async def too_large(_request: Request, error: BodyTooLargeError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=413)

    @app.exception_handler(BodyTooSlowError)
    async def too_slow(_request: Request, error: BodyTooSlowError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=408, headers={"Connection": "close"})

    @app.exception_handler(WrongContentTypeError)
    async def wrong_type(_request: Request, error: WrongContentTypeError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=415)

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
        return answer(await run(service.new_session, seed, request.client.host if request.client else ""))

    @app.post("/api/sessions/{session_id}/random")
    async def random_face(session_id: str, request: Request) -> JSONResponse:
        seed = (await parse(request, SeedRequest)).seed
        return answer(await run(service.random_face, session_id, seed))

    @app.post("/api/sessions/{session_id}/upload")
    async def upload(session_id: str, request: Request) -> JSONResponse:
        if not content_type(request).startswith(UPLOAD_TYPES):
            raise WrongContentTypeError("send the picture as Content-Type: application/octet-stream or image/*")
        service.sessions.get(session_id)  # an unknown session, or a busy server, is refused before the body is read
        with service.receiving_upload():
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


def status_of(error: FacesteerError) -> int:
    """The HTTP status of a refusal: 404 unknown session, 429 too often, 503 busy, 400 anything else."""
    for kind, status in ((UnknownSessionError, 404), (RateLimitedError, 429), (ServiceBusyError, 503)):
        if isinstance(error, kind):
            return status
    return 400


def one_line(text: str) -> str:
    """The first line of ``text``, at most 300 characters."""
    line = text.strip().splitlines()[0] if text.strip() else "bad request"
    return line[:300]


def page_file(name: str) -> bytes:
    """A file of the page, from this package."""
    return resources.files("facesteer.web").joinpath("static", name).read_bytes()
