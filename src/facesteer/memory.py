"""Keep a long-running server's memory where its requests leave it: glibc's malloc arenas, bounded and trimmed.

glibc's malloc gives each thread that allocates while others do an arena of its own (up to 8 per core) and keeps
what a thread frees in its arena for later. A server runs requests on a pool of long-lived threads, so each
thread that once decoded a large picture keeps that picture's peak for as long as it lives: sixteen hostile
84 KB PNGs (16-bit, 40 megapixels) uploaded through sixteen threads left the editor 973 MiB larger for good.
Two calls bound it (measured: +39 MiB):

- :func:`limit_malloc_arenas`: at most a few arenas, whatever the number of threads (``mallopt(M_ARENA_MAX)``).
  glibc reads that limit once, the first time a thread would make a ninth arena, so call it before anything
  starts threads (torch's pool among them); later it is silently ignored (``MALLOC_ARENA_MAX=2`` in the
  environment works from the start);
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


def limit_malloc_arenas(count: int = 2) -> None:
    """Let malloc make at most ``count`` arenas (threads share them); nothing where the C library is not glibc.
    (mallopt's answer says nothing: glibc answers 1 to any parameter.)"""
    if _MALLOPT is not None:
        _MALLOPT(ctypes.c_int(M_ARENA_MAX), ctypes.c_int(count))


def release_freed_memory() -> bool:
    """Return the pages malloc holds free in every arena to the operating system; False where it cannot."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(ctypes.c_size_t(0))
    return True
