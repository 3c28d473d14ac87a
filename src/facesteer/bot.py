"""The Telegram bot (``facesteer bot``): the editor's service (:mod:`facesteer.service`) behind chat messages.

    /start, /help       what the bot does
    /random [SEED]      a random face
    a photo             its inversion (aligned and inverted as `facesteer edit-photo` does)
    buttons             - / + per slider (one step each), a "keep" toggle per attribute (a condition),
                        undo, reset, random

Each chat has one session; every reply that shows a face is a photo with the keyboard under it. The token comes
from an environment variable only and is never printed or logged: HTTP request logs are silenced and every log
line the bot writes passes through a filter that blanks the token. ``base_url`` points the bot at another Bot
API server (a local one, or the test suite's).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections import OrderedDict

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from facesteer.errors import FacesteerError
from facesteer.service import EditorService, UnknownSessionError, View

TOKEN_VARIABLE = "FACESTEER_BOT_TOKEN"
#: one button press moves a slider this far
STEP = 1.0
#: chats remembered (each maps to a session; the service bounds the sessions themselves)
MAX_CHATS = 10_000
#: photos larger than this are not downloaded
MAX_PHOTO_BYTES = 10 * 2**20

HELP = (
    "I edit faces in the latent space of a GAN ({generator}).\n"
    "/random — a random face (/random 42 for seed 42)\n"
    "Send a photo — I find the face, invert it and show my reconstruction.\n"
    "Buttons: - / + move an attribute one step; 'keep' holds an attribute fixed while others move; "
    "undo, reset and random."
)

logger = logging.getLogger("facesteer.bot")


class RedactToken(logging.Filter):
    """Blanks the token out of every log record it sees; an exception's traceback (whose text may hold the
    token, as python-telegram-bot's InvalidToken does) becomes one line: its type and redacted message."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            message = f"{message} ({type(error).__name__}: {error})"
            record.exc_info, record.exc_text = None, None
        if self.token:
            message = message.replace(self.token, "<token>")
        record.msg, record.args = message, None
        return True


def read_token(environ: os._Environ | dict | None = None) -> str:
    """The bot token from ``FACESTEER_BOT_TOKEN``; FacesteerError if it is unset or not token-shaped."""
    token = (environ if environ is not None else os.environ).get(TOKEN_VARIABLE, "").strip()
    if not token:
        raise FacesteerError(f"set the bot token in the environment variable {TOKEN_VARIABLE} (from @BotFather)")
    if ":" not in token or any(c.isspace() or c == "/" for c in token):
        raise FacesteerError(f"{TOKEN_VARIABLE} does not look like a bot token (digits:letters)")
    return token


class FaceBot:
    """The bot's handlers over one :class:`EditorService`."""

    def __init__(self, service: EditorService) -> None:
        self.service = service
        self.chats: OrderedDict[int, str] = OrderedDict()
        self._creating = asyncio.Lock()  # one new session at a time: two updates of a new chat get one session

    # ---- keyboard and captions

    def keyboard(self, view: View) -> InlineKeyboardMarkup:
        state = view.state
        rows = [
            [InlineKeyboardButton(f"- {name}", callback_data=f"s:{name}:-"),
             InlineKeyboardButton(f"{name} +", callback_data=f"s:{name}:+")]
            for name in self.service.controls
        ]  # fmt: skip
        toggles = [
            InlineKeyboardButton(f"{'✓' if name in state.conditions else '○'} keep {name}", callback_data=f"c:{name}")
            for name, control in self.service.controls.items()
            if control.kind == "attribute"
        ]
        rows += [toggles[i : i + 3] for i in range(0, len(toggles), 3)]
        rows.append([InlineKeyboardButton("↶ undo", callback_data="undo"),
                     InlineKeyboardButton("reset", callback_data="reset"),
                     InlineKeyboardButton("random", callback_data="random")])  # fmt: skip
        return InlineKeyboardMarkup(rows)

    def caption(self, view: View) -> str:
        state, origin = view.state, view.origin
        face = f"random face, seed {origin['seed']}" if origin["kind"] == "random" else "your photo, reconstructed"
        moved = ", ".join(f"{name} {value:+g}" for name, value in state.sliders) or "no edits"
        kept = f"; keeping {', '.join(sorted(state.conditions))}" if state.conditions else ""
        return f"{face}: {moved}{kept}"[:1024]  # Telegram's caption limit

    async def show(self, update: Update, view: View) -> None:
        await update.effective_chat.send_photo(view.png, caption=self.caption(view), reply_markup=self.keyboard(view))

    # ---- sessions per chat

    def session_id(self, chat_id: int) -> str | None:
        session_id = self.chats.get(chat_id)
        if session_id is not None:
            self.chats.move_to_end(chat_id)
        return session_id

    async def ensure_session(self, chat_id: int) -> str:
        """The chat's session; a new random face if it has none or it expired (at most one per chat, however
        many of its updates arrive together)."""
        if (session_id := self._live_session(chat_id)) is not None:
            return session_id
        async with self._creating:
            if (session_id := self._live_session(chat_id)) is not None:  # made while this update waited
                return session_id
            view = await asyncio.to_thread(self.service.new_session, None)
            self.chats[chat_id] = view.session
            while len(self.chats) > MAX_CHATS:
                self.chats.popitem(last=False)
            return view.session

    def _live_session(self, chat_id: int) -> str | None:
        session_id = self.session_id(chat_id)
        if session_id is not None:
            try:
                self.service.sessions.get(session_id)
                return session_id
            except UnknownSessionError:
                pass
        return None

    # ---- handlers

    async def help(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.effective_chat.send_message(HELP.format(generator=self.service.generator.name))

    async def random(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seed = None
        if context.args:
            if not re.fullmatch(r"[0-9]{1,10}", context.args[0]):
                await update.effective_chat.send_message("usage: /random or /random SEED (a whole number)")
                return
            seed = int(context.args[0])
        await self.apply(update, lambda sid: self.service.random_face(sid, seed))

    async def photo(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        attachment = message.photo[-1] if message.photo else message.document
        if not attachment.file_size or attachment.file_size > MAX_PHOTO_BYTES:
            await update.effective_chat.send_message(f"that picture is over {MAX_PHOTO_BYTES // 2**20} MB")
            return
        try:
            with self.service.receiving_upload():  # busy is said before the picture is downloaded
                data = bytes(await (await attachment.get_file()).download_as_bytearray())
        except FacesteerError as error:
            await update.effective_chat.send_message(f"sorry: {error}")
            return
        except TelegramError as error:
            logger.error("download failed: %s", type(error).__name__)
            await update.effective_chat.send_message("sorry: I could not download that picture")
            return
        await update.effective_chat.send_message("inverting your photo…")
        await self.apply(update, lambda sid: self.service.upload(sid, data, "your picture"))

    async def button(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        await query.answer()
        data = query.data or ""
        kind, _, rest = data.partition(":")
        service = self.service
        if kind == "s" and rest[-2:] in (":+", ":-"):
            name, delta = rest[:-2], STEP if rest.endswith("+") else -STEP

            def operation(sid: str) -> View:
                return service.nudge_slider(sid, name, delta)

        elif kind == "c":

            def operation(sid: str) -> View:
                return service.set_condition(sid, rest, None)  # the other way from now, under the session's lock

        elif data in ("undo", "reset"):

            def operation(sid: str) -> View:
                return getattr(service, data)(sid)

        elif data == "random":

            def operation(sid: str) -> View:
                return service.random_face(sid, None)

        else:
            await update.effective_chat.send_message("unknown button")
            return
        await self.apply(update, operation)

    async def apply(self, update: Update, operation) -> None:
        """Run ``operation(session_id)`` off the event loop and show the result, or one line on bad input."""
        try:
            session_id = await self.ensure_session(update.effective_chat.id)
            view = await asyncio.to_thread(operation, session_id)
        except FacesteerError as error:
            await update.effective_chat.send_message(f"sorry: {(str(error).splitlines() or ['bad input'])[0][:300]}")
            return
        except Exception as error:  # a bug: the user hears of it, the log gets its kind (never the token)
            logger.error("operation failed: %s: %s", type(error).__name__, error)
            await update.effective_chat.send_message("sorry, something went wrong on my side")
            return
        await self.show(update, view)

    async def failed(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        logger.error("update failed: %s: %s", type(context.error).__name__, context.error)


def build_application(service: EditorService, token: str, base_url: str | None = None) -> Application:
    """The python-telegram-bot application with the bot's handlers (polling; token never logged)."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its request lines carry the token in the URL
    redact = RedactToken(token)
    for handler in logging.getLogger().handlers:  # a handler's filter sees every record it writes
        if not any(isinstance(f, RedactToken) for f in handler.filters):
            handler.addFilter(redact)
    builder = ApplicationBuilder().token(token).concurrent_updates(True)
    if base_url:
        base = base_url.rstrip("/")
        builder = builder.base_url(f"{base}/bot").base_file_url(f"{base}/file/bot")
    application = builder.build()
    bot = FaceBot(service)
    application.add_handler(CommandHandler(["start", "help"], bot.help))
    application.add_handler(CommandHandler("random", bot.random))
    application.add_handler(MessageHandler(filters.PHOTO | filters.Document.IMAGE, bot.photo))
    application.add_handler(CallbackQueryHandler(bot.button))
    application.add_error_handler(bot.failed)
    return application


def run_bot(service: EditorService, token: str, base_url: str | None = None) -> None:
    """Poll for updates until interrupted.

    Raises:
        FacesteerError: the server rejected the token, or could not be reached (the token never in the message).
    """
    try:
        build_application(service, token, base_url).run_polling(allowed_updates=Update.ALL_TYPES, poll_interval=0.0)
    except InvalidToken:
        raise FacesteerError(f"the Bot API server rejected the token in ${TOKEN_VARIABLE}") from None
    except TelegramError as error:
        raise FacesteerError(f"the Bot API server failed: {str(error).replace(token, '<token>')}") from None
