"""The Telegram bot end to end: `facesteer bot` as its own process, talking to a Bot API server on loopback.

The test prints the conversation (run with -s to read it).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from facesteer.bot import FaceBot, RedactToken, read_token
from facesteer.discovery.directions import load_direction_set
from facesteer.errors import FacesteerError
from facesteer.generators import load_generator
from facesteer.images import encode_png
from facesteer.service import EditorService, load_controls
from facesteer.service.editor import MAX_RECEIVING_UPLOADS
from tests.fake_telegram import FakeTelegram
from tests.test_service import CELEBA

TOKEN = "123456789:AAFakeTokenThatMustNeverBePrinted_xyz"
GENERATOR = "stylegan2-utkface64"  # it ships boundaries, so the keyboard has condition toggles


def photo_of(record: dict) -> bytes:
    photo = record["photo"]
    return photo if isinstance(photo, bytes) else record[photo.removeprefix("attach://")]


def buttons(record: dict) -> list[str]:
    return [b["callback_data"] for row in record["reply_markup"]["inline_keyboard"] for b in row]


def describe(record: dict) -> str:
    if record["method"] == "sendPhoto":
        image = Image.open(io.BytesIO(photo_of(record)))
        size = f"{image.size[0]}x{image.size[1]}"
        return f"bot: [photo {size} PNG] {record.get('caption', '')!r} ({len(buttons(record))} buttons)"
    return f"bot: {record.get('text', '')!r}"


@pytest.fixture(scope="module")
def conversation(tmp_path_factory):
    telegram = FakeTelegram().start()
    logs = tmp_path_factory.mktemp("bot")
    env = {**os.environ, "FACESTEER_BOT_TOKEN": TOKEN}
    out, err = (logs / "stdout.txt").open("wb"), (logs / "stderr.txt").open("wb")
    # --no-compile: compiling the generator (minutes with a cold cache) only slows the start
    command = [sys.executable, "-m", "facesteer.cli", "bot", "-g", GENERATOR, "--no-compile"]
    command += ["--base-url", telegram.url]
    process = subprocess.Popen(command, env=env, stdout=out, stderr=err)
    telegram.alive = lambda: process.poll() is None
    transcript: list[str] = []
    yield telegram, process, transcript, logs
    process.terminate()
    process.wait(timeout=30)
    out.close()
    err.close()
    telegram.stop()
    print("\n".join(["", "--- bot transcript ---", *transcript]))
    for name in ("stdout.txt", "stderr.txt"):  # the token was never printed nor logged
        written = (logs / name).read_text(errors="replace")
        assert TOKEN not in written and TOKEN.split(":")[1] not in written, name


def say(telegram: FakeTelegram, transcript: list[str], what: str, count: int, **kwargs) -> list[dict]:
    transcript.append(what)
    before = len(telegram.wait_for(0))
    if "text" in kwargs:
        telegram.command(kwargs["text"])
    elif "photo" in kwargs:
        telegram.photo(kwargs["photo"])
    else:
        telegram.press(kwargs["button"], kwargs["on"])
    replies = telegram.wait_for(before + count)[before:]
    transcript.extend(describe(r) for r in replies)
    return replies


def test_the_bot_end_to_end(conversation):
    telegram, process, transcript, _ = conversation
    (help_reply,) = say(telegram, transcript, "user: /start", 1, text="/start")
    assert help_reply["method"] == "sendMessage" and "/random" in help_reply["text"] and help_reply["chat_id"] == 42

    (face,) = say(telegram, transcript, "user: /random 4", 1, text="/random 4")
    generator = load_generator(GENERATOR)
    assert photo_of(face) == encode_png(generator.synthesize(generator.map(generator.sample_z(1, 4), "wp"), "wp")[0])
    assert "seed 4" in face["caption"]
    names = buttons(face)
    assert {"s:smile:+", "s:smile:-", "undo", "reset", "random"} <= set(names)

    (more,) = say(telegram, transcript, "user: [smile +]", 1, button="s:smile:+", on=face)
    assert more["method"] == "sendPhoto" and "smile +1" in more["caption"] and photo_of(more) != photo_of(face)
    assert any(s["method"] == "answerCallbackQuery" for s in telegram.sent)
    (further,) = say(telegram, transcript, "user: [smile +]", 1, button="s:smile:+", on=more)
    assert "smile +2" in further["caption"]
    conditions = [n for n in names if n.startswith("c:")]
    assert "c:gender" in conditions
    (kept,) = say(telegram, transcript, "user: [keep gender]", 1, button="c:gender", on=further)
    assert "keeping gender" in kept["caption"]
    (kept_more,) = say(telegram, transcript, "user: [age +]", 1, button="s:age:+", on=kept)
    assert "age +1" in kept_more["caption"] and "keeping gender" in kept_more["caption"]
    (kept,) = say(telegram, transcript, "user: [undo]", 1, button="undo", on=kept_more)
    (further,) = say(telegram, transcript, "user: [undo]", 1, button="undo", on=kept)
    (undone,) = say(telegram, transcript, "user: [undo]", 1, button="undo", on=further)
    assert photo_of(undone) == photo_of(more)
    (reset,) = say(telegram, transcript, "user: [reset]", 1, button="reset", on=undone)
    assert photo_of(reset) == photo_of(face) and "no edits" in reset["caption"]

    (bad,) = say(telegram, transcript, "user: /random banana", 1, text="/random banana")
    assert "usage" in bad["text"]

    (junk,) = say(telegram, transcript, "user: [a forged button]", 1, button="s::+", on=reset)
    assert junk["text"].startswith("sorry: no slider")

    assert process.poll() is None  # still up
    assert telegram.tokens == {TOKEN}


@pytest.mark.skipif(not CELEBA.is_dir(), reason=f"{CELEBA} not found")
def test_the_bot_inverts_photos(conversation):
    telegram, process, transcript, _ = conversation
    photo = sorted(CELEBA.iterdir())[0].read_bytes()
    notice, inverted = say(telegram, transcript, "user: [a photo]", 2, photo=photo)  # its time: bench/upload.py
    assert "inverting" in notice["text"] and "your photo" in inverted["caption"]
    assert np.asarray(Image.open(io.BytesIO(photo_of(inverted)))).shape == (64, 64, 3)
    (more,) = say(telegram, transcript, "user: [smile +]", 1, button="s:smile:+", on=inverted)
    assert "your photo" in more["caption"] and "smile +1" in more["caption"]
    blank = io.BytesIO()
    Image.new("RGB", (120, 120), (128, 128, 128)).save(blank, format="JPEG")
    _, sorry = say(telegram, transcript, "user: [a grey square]", 2, photo=blank.getvalue())
    assert sorry["text"].startswith("sorry: no face found")
    assert process.poll() is None


def test_a_rejected_token_is_one_line_without_the_token(tmp_path):
    telegram = FakeTelegram(reject_tokens=True).start()
    try:
        env = {**os.environ, "FACESTEER_BOT_TOKEN": TOKEN}
        command = [sys.executable, "-m", "facesteer.cli", "bot", "--base-url", telegram.url]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)  # a hang guard
    finally:
        telegram.stop()
    assert result.returncode == 2, result.stderr[-2000:]
    assert "rejected the token" in result.stderr.splitlines()[-1] and "Traceback" not in result.stderr
    assert TOKEN not in result.stderr + result.stdout and TOKEN.split(":")[1] not in result.stderr + result.stdout


def test_token_comes_from_the_environment_only():
    with pytest.raises(FacesteerError, match="FACESTEER_BOT_TOKEN"):
        read_token({})
    with pytest.raises(FacesteerError, match="does not look like"):
        read_token({"FACESTEER_BOT_TOKEN": "no colon here"})
    assert read_token({"FACESTEER_BOT_TOKEN": f" {TOKEN}\n"}) == TOKEN


def test_log_lines_never_carry_the_token():
    record = logging.LogRecord("httpx", logging.INFO, __file__, 1, "POST %s/getUpdates", (f"/bot{TOKEN}",), None)
    RedactToken(TOKEN).filter(record)
    assert TOKEN not in record.getMessage() and "<token>" in record.getMessage()
    try:
        raise ValueError(f"The token `{TOKEN}` was rejected by the server.")
    except ValueError:
        record = logging.LogRecord("telegram.ext", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    RedactToken(TOKEN).filter(record)
    written = logging.Formatter().format(record)
    assert TOKEN not in written and "ValueError" in written and "Traceback" not in written


def test_bot_without_a_token_is_one_line(run, monkeypatch):
    monkeypatch.delenv("FACESTEER_BOT_TOKEN", raising=False)
    result = run("bot")
    assert result.returncode == 2 and "FACESTEER_BOT_TOKEN" in result.stderr


@pytest.fixture(scope="module")
def face_bot(generator):
    service = EditorService(generator, load_controls(generator, load_direction_set(None, generator.name), None))
    yield FaceBot(service)
    service.close()


def test_updates_of_a_new_chat_that_arrive_together_share_one_session(face_bot):
    """A new chat that sent /random and pressed a button at once got two sessions; its next press edited a face
    the user never saw."""

    async def together() -> list[str]:
        return await asyncio.gather(*(face_bot.ensure_session(7) for _ in range(4)))

    before = len(face_bot.service.sessions)
    sessions = asyncio.run(together())
    assert len(set(sessions)) == 1 and len(face_bot.service.sessions) == before + 1


def test_a_busy_bot_says_so_before_it_downloads_a_photo(face_bot):
    """16 chats sending 9.9 MiB photos at once cost +458 MiB: each was downloaded before the busy check."""
    downloads, said = [], []

    async def get_file():
        downloads.append(1)
        raise AssertionError("downloaded while busy")

    attachment = SimpleNamespace(file_size=1000, get_file=get_file)
    chat = SimpleNamespace(send_message=lambda text: asyncio.sleep(0, said.append(text)))
    update = SimpleNamespace(effective_message=SimpleNamespace(photo=[attachment], document=None), effective_chat=chat)
    with contextlib.ExitStack() as held:
        for _ in range(MAX_RECEIVING_UPLOADS):  # other photos are arriving
            held.enter_context(face_bot.service.receiving_upload())
        asyncio.run(face_bot.photo(update, None))
    assert downloads == [] and said == ["sorry: other uploads are on their way or being inverted: try again in a few "
                                        "seconds"]  # fmt: skip
