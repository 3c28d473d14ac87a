"""A Bot API server on loopback speaking the methods the bot uses, for end-to-end tests with no network.

Tests put updates in (:meth:`FakeTelegram.push`), the bot long-polls ``getUpdates`` for them, and what it sends
(messages, photos with their bytes and keyboards, callback answers) is recorded in :attr:`FakeTelegram.sent`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from facesteer.web.server import serving

BOT_USER = {"id": 1000, "is_bot": True, "first_name": "facesteer", "username": "facesteer_test_bot"}
USER = {"id": 42, "is_bot": False, "first_name": "Tester"}
CHAT = {"id": 42, "type": "private", "first_name": "Tester"}
MESSAGE_DATE = 1_764_547_200  # every message's date (the bot never reads it)
POLL_PAUSE = 0.05  # seconds getUpdates waits before it answers, so an idle bot does not spin


class FakeTelegram:
    """The server's state and its app; ``start()`` serves it on a free loopback port in a thread."""

    def __init__(self, reject_tokens: bool = False) -> None:
        self.reject_tokens = reject_tokens
        self.updates: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        self.files: dict[str, bytes] = {}
        self.tokens: set[str] = set()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # notified when the bot has sent something
        #: whether the bot still runs (set by the test that starts it)
        self.alive: Callable[[], bool] = lambda: True
        self.app = self._make_app()
        self.url = ""

    # ---- what tests do

    def push(self, **update: Any) -> None:
        with self._lock:
            self.updates.append({"update_id": next(self._ids), **update})

    def command(self, text: str) -> None:
        command = text.split()[0]
        self.push(message={**self._message(), "text": text,
                           "entities": [{"type": "bot_command", "offset": 0, "length": len(command)}]})  # fmt: skip

    def photo(self, data: bytes) -> None:
        file_id = f"photo{len(self.files)}"
        self.files[file_id] = data
        size = {"file_id": file_id, "file_unique_id": file_id, "width": 178, "height": 218, "file_size": len(data)}
        self.push(message={**self._message(), "photo": [size]})

    def press(self, data: str, on_message: dict[str, Any]) -> None:
        self.push(callback_query={"id": f"cb{next(self._ids)}", "from": USER, "chat_instance": "chat42",
                                  "data": data, "message": on_message["message"]})  # fmt: skip

    def wait_for(self, count: int) -> list[dict[str, Any]]:
        """Wait until ``count`` things have been sent (answers to callbacks excluded), however long the bot takes,
        while :attr:`alive` says the bot runs; return them all."""
        with self._changed:
            while len(shown := [s for s in self.sent if s["method"] != "answerCallbackQuery"]) < count:
                if not self.alive():
                    raise AssertionError(f"the bot stopped after {len(shown)} of {count} replies: {shown}")
                self._changed.wait(0.5)  # a poll of alive(), not a deadline
            return shown

    # ---- the server

    def _message(self) -> dict[str, Any]:
        return {"message_id": next(self._ids), "date": MESSAGE_DATE, "chat": CHAT, "from": USER}

    def _make_app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/bot{token}/{method}")
        async def method(token: str, method: str, request: Request) -> JSONResponse:
            self.tokens.add(token)
            if self.reject_tokens:
                return JSONResponse({"ok": False, "error_code": 401, "description": "Unauthorized"}, status_code=401)
            form = await request.form()
            fields: dict[str, Any] = {}
            for key, value in form.multi_items():
                fields[key] = await value.read() if hasattr(value, "read") else value
            return JSONResponse({"ok": True, "result": await self._answer(method, fields)})

        @app.get("/file/bot{token}/{path:path}")
        async def file(token: str, path: str) -> Response:
            return Response(self.files.get(path.rsplit("/", 1)[-1], b""), media_type="application/octet-stream")

        return app

    async def _answer(self, method: str, fields: dict[str, Any]) -> Any:
        if method == "getMe":
            return BOT_USER
        if method == "getUpdates":  # short polling: a brief pause, then whatever has come
            offset = int(fields.get("offset", 0) or 0)
            await asyncio.sleep(POLL_PAUSE)
            with self._lock:
                return [u for u in self.updates if u["update_id"] >= offset]
        if method in ("deleteWebhook", "setMyCommands", "answerCallbackQuery", "sendChatAction"):
            if method == "answerCallbackQuery":
                self._record(method, fields)
            return True
        if method == "getFile":
            file_id = json.loads(fields["file_id"]) if fields["file_id"].startswith('"') else fields["file_id"]
            return {"file_id": file_id, "file_unique_id": file_id, "file_size": len(self.files.get(file_id, b"")),
                    "file_path": f"photos/{file_id}"}  # fmt: skip
        if method in ("sendMessage", "sendPhoto"):
            record = self._record(method, fields)
            message = {**self._message(), "from": BOT_USER}
            if method == "sendPhoto":
                message["photo"] = [{"file_id": "sent", "file_unique_id": "sent", "width": 64, "height": 64}]
                message["caption"] = record.get("caption", "")
            else:
                message["text"] = record.get("text", "")
            record["message"] = message
            return message
        raise ValueError(f"the fake server does not speak {method}")

    def _record(self, method: str, fields: dict[str, Any]) -> dict[str, Any]:
        record: dict[str, Any] = {"method": method}
        for key, value in fields.items():
            if isinstance(value, bytes):
                record[key] = value
            elif key == "reply_markup":
                record[key] = json.loads(value)
            else:
                try:
                    record[key] = json.loads(value)
                except ValueError:
                    record[key] = value
        with self._changed:
            self.sent.append(record)
            self._changed.notify_all()
        return record

    def start(self) -> FakeTelegram:
        self._serving = serving(self.app)
        self.url = self._serving.__enter__()
        return self

    def stop(self) -> None:
        self._serving.__exit__(None, None, None)
