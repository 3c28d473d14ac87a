"""The service layer under the browser editor and the Telegram bot: sessions, batching and every editing rule."""

from facesteer.service.editor import SLIDER_LIMIT, Control, EditorService, ServiceBusyError, View, load_controls
from facesteer.service.limits import RateLimitedError
from facesteer.service.sessions import EditState, Session, SessionStore, UnknownSessionError

__all__ = ["SLIDER_LIMIT", "Control", "EditState", "EditorService", "RateLimitedError", "ServiceBusyError",
           "Session", "SessionStore", "UnknownSessionError", "View", "load_controls"]  # fmt: skip
