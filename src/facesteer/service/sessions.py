"""Editing sessions: one face per session, its code and its edit history, held in bounded memory.

A session is found by an unguessable id (``secrets.token_urlsafe``: 256 random bits). The store evicts the
least recently used session when there are too many or when their bytes pass the total cap, and forgets a
session left untouched for ``ttl`` seconds. A session's history keeps at most ``max_history`` states and
``max_session_bytes`` bytes (its oldest states are dropped first; the first state, the face as it came, stays).
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from facesteer.errors import FacesteerError

#: what a session id looks like (token_urlsafe(32) gives 43 such characters); anything else is refused unread
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")


class UnknownSessionError(FacesteerError):
    """No session with that id (never made, expired, or evicted)."""


@dataclass(frozen=True)
class EditState:
    """What the user has set: slider values (only the non-zero ones, sorted) and the conditions switched on."""

    sliders: tuple[tuple[str, float], ...] = ()
    conditions: frozenset[str] = frozenset()

    def with_slider(self, name: str, value: float) -> EditState:
        values = dict(self.sliders)
        values[name] = value
        return EditState(tuple(sorted((k, v) for k, v in values.items() if v != 0.0)), self.conditions)

    def with_condition(self, name: str, on: bool) -> EditState:
        conditions = self.conditions | {name} if on else self.conditions - {name}
        return EditState(self.sliders, frozenset(conditions))

    def slider(self, name: str) -> float:
        return dict(self.sliders).get(name, 0.0)


@dataclass
class Entry:
    """One step of the history: the state and the PNG shown for it (kept, so undo shows the same bytes)."""

    state: EditState
    png: bytes


@dataclass
class Session:
    """One face being edited.

    Attributes:
        id: the unguessable id.
        code: float32, the face's code in the service's render space (batch dimension included: (1, ...)).
        origin: how the face came (``{"kind": "random", "seed": 7}`` or ``{"kind": "upload", ...}``).
        history: the states so far, the current one last; ``history[0]`` is the face as it came.
        progress: (done, total) steps of an inversion running for this session, else None.
        lock: held while an operation changes the session.
    """

    id: str
    code: np.ndarray
    origin: dict
    history: list[Entry]
    touched: float = 0.0
    progress: tuple[int, int] | None = None
    size: int = 0  # the bytes the store last counted for it
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def state(self) -> EditState:
        return self.history[-1].state

    @property
    def png(self) -> bytes:
        return self.history[-1].png

    def nbytes(self) -> int:
        return int(self.code.nbytes) + sum(len(entry.png) + 128 for entry in self.history)


class SessionStore:
    """Sessions by id, bounded in count, bytes and age; thread-safe.

    Args:
        ttl: seconds a session lives after its last use.
        max_sessions: the most sessions held at once (least recently used evicted first).
        max_total_bytes: the most bytes all sessions hold together (codes and PNGs).
        max_history: the most states one session's history keeps.
        max_session_bytes: the most bytes one session holds.
        clock: seconds (monotonic); tests pass a fake one.
    """

    def __init__(
        self,
        ttl: float = 1800.0,
        max_sessions: int = 1000,
        max_total_bytes: int = 256 * 2**20,
        max_history: int = 50,
        max_session_bytes: int = 2 * 2**20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl, self.max_sessions, self.max_total_bytes = ttl, max_sessions, max_total_bytes
        self.max_history, self.max_session_bytes = max_history, max_session_bytes
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()  # least recently used first
        self._total = 0  # the bytes of every session, as last counted
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def total_bytes(self) -> int:
        """The bytes all sessions hold (kept up to date as they change: no walk over every session)."""
        with self._lock:
            return self._total

    def create(self, code: np.ndarray, origin: dict, png: bytes) -> Session:
        """A new session showing ``code`` (its PNG ``png``), with a fresh unguessable id."""
        session = Session(secrets.token_urlsafe(32), code, origin, [Entry(EditState(), png)], self._clock())
        session.size = session.nbytes()
        with self._lock:
            self._sessions[session.id] = session
            self._total += session.size
            self._evict()
        return session

    def get(self, session_id: str) -> Session:
        """The session with this id, marked as just used.

        Raises:
            UnknownSessionError: a malformed id, or none such (never made, expired, evicted).
        """
        if not isinstance(session_id, str) or not SESSION_ID.fullmatch(session_id):
            raise UnknownSessionError("unknown session id (malformed)")
        with self._lock:
            self._expire()
            session = self._sessions.get(session_id)
            if session is None:
                raise UnknownSessionError("unknown or expired session: start a new one")
            session.touched = self._clock()
            self._sessions.move_to_end(session_id)
            return session

    def push(self, session: Session, entry: Entry) -> None:
        """Append a state to the session's history (its lock held), trimming it to the per-session caps."""
        session.history.append(entry)
        while len(session.history) > 2 and (
            len(session.history) > self.max_history or session.nbytes() > self.max_session_bytes
        ):
            del session.history[1]  # the oldest edit; the face as it came stays
        self._resized(session)

    def pop(self, session: Session) -> None:
        """Drop the newest state (undo; its lock held), if there is one before it."""
        if len(session.history) > 1:
            session.history.pop()
            self._resized(session)

    def replace_face(self, session: Session, code: np.ndarray, origin: dict, png: bytes) -> None:
        """A new face in the same session (its lock held): its history starts again."""
        session.code, session.origin, session.history = code, origin, [Entry(EditState(), png)]
        self._resized(session)

    def _resized(self, session: Session) -> None:
        size = session.nbytes()
        with self._lock:
            if self._sessions.get(session.id) is session:  # (an evicted session no longer counts)
                self._total += size - session.size
            session.size = size
            self._evict()

    def _remove(self, session_id: str) -> None:
        self._total -= self._sessions.pop(session_id).size

    def _expire(self) -> None:
        """Forget sessions idle for longer than the TTL: the oldest-used come first, so stop at a fresh one."""
        now = self._clock()
        while self._sessions:
            session_id, session = next(iter(self._sessions.items()))
            if now - session.touched <= self.ttl:
                break
            self._remove(session_id)

    def _evict(self) -> None:
        self._expire()

        def too_much() -> bool:
            count = len(self._sessions)
            return count > self.max_sessions or (count > 1 and self._total > self.max_total_bytes)

        while too_much():
            self._remove(next(iter(self._sessions)))
