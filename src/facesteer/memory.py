"""Keep a long-running server's memory where its requests leave it: glibc's malloc arenas, bounded and trimmed.

glibc's malloc gives each thread that allocates while others do an arena of its own (up to 8 per core) and keeps
what a thread frees in its arena for later. A server runs requests on a pool of long-lived threads, so each
thread that once decoded a large picture keeps that picture's peak for as long as it lives: sixteen hostile
84 KB PNGs (16-bit, 40 megapixels) uploaded through sixteen threads left the editor 973 MiB larger for good.
Two calls bound it (measured: +29 MiB):

- :func:`limit_malloc_arenas`: at most a few arenas, whatever the number of threads (``mallopt(M_ARENA_MAX)``);
- :func:`release_freed_memory`: after a large request, hand every arena's free pages back (``malloc_trim(0)``).

Where the C library is not glibc (musl, macOS, Windows) neither function exists and both calls do nothing.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

#: mallopt's parameter number for the most arenas (glibc's malloc.h)
M_ARENA_MAX = -8


def _libc_function(name: str) -> Callable[..., int] | None:
    try:
        return getattr(ctypes.CDLL(None), name)  # the process's own C library
    except (AttributeError, OSError, TypeError):
        return None


_MALLOC_TRIM = _libc_function("malloc_trim")
_MALLOPT = _libc_function("mallopt")


def limit_malloc_arenas(count: int = 2) -> bool:
    """Let malloc make at most ``count`` arenas from now on (threads share them); False where it cannot."""
    return _MALLOPT is not None and _MALLOPT(M_ARENA_MAX, count) == 1


def release_freed_memory() -> bool:
    """Return the pages malloc holds free in every arena to the operating system; False where it cannot."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True
