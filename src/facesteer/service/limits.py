"""How often one client may do something: new sessions per client per minute.

Without it, one client posting 1,000 new sessions in 2 s evicted every other user's session from the store.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable

from facesteer.errors import FacesteerError


class RateLimitedError(FacesteerError):
    """A client asked too often (HTTP 429): it may try again after a while."""


class RateLimit:
    """At most ``count`` events per ``seconds`` for each key (a sliding window), remembering at most
    ``max_keys`` keys (the least recently seen are forgotten first: many addresses cannot exhaust memory)."""

    def __init__(
        self, count: int, seconds: float, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.count, self.seconds, self.max_keys, self.clock = count, seconds, max_keys, clock
        self._events: OrderedDict[Hashable, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, key: Hashable, what: str = "requests") -> None:
        """Count one event for ``key``, or raise RateLimitedError if it already had ``count`` in the window."""
        now = self.clock()
        with self._lock:
            events = self._events.pop(key, None) or deque()
            while events and now - events[0] >= self.seconds:
                events.popleft()
            self._events[key] = events  # (re)inserted last: the most recently seen
            while len(self._events) > self.max_keys:
                self._events.popitem(last=False)
            if len(events) >= self.count:
                wait = self.seconds - (now - events[0])
                raise RateLimitedError(f"too many {what} from this client: try again in {wait:.0f} s")
            events.append(now)
