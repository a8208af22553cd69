"""What the process keeps in memory between requests: one mechanism (cachetools' LRU), bounded and thread-safe.

A cache is keyed by the *content* its value is made from — a definition's content hash, a formula's text,
a URL — never by `id()`: ids are reused as soon as an object is freed, so a cache keyed by them hands out
another object's value. Stored definitions never change, so what is made from them never goes stale; a
cache only needs a bound, and drops the least recently used entry first.

`functools.cache` stays only where nothing of the data is in the key — built-once SQL statements, the
schemas shipped in the package, a fixed list of names — and state kept for one request lives in `g`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, TypeVar

from cachetools import LRUCache, cached
from cachetools.keys import hashkey

F = TypeVar("F", bound=Callable[..., Any])


def memoize(maxsize: int, key: Callable[..., Hashable] = hashkey) -> Callable[[F], F]:
    """Keep a function's results by `key(*args, **kwargs)` (the arguments by default), at most `maxsize`.

    Two threads that miss at once both compute; the first value stored is the one both return.
    """
    return cached(LRUCache(maxsize=maxsize), key=key, lock=threading.Lock(), info=True)  # type: ignore[return-value]


class ContentCache:
    """A bounded map for values loaded in batches (one query for everything missing), by content key."""

    def __init__(self, maxsize: int) -> None:
        self._entries: LRUCache = LRUCache(maxsize=maxsize)
        self._lock = threading.Lock()

    def get_many(self, keys: Iterable[Hashable]) -> dict[Hashable, Any]:
        """The entries held for these keys (each one counts as used); missing keys are left out."""
        with self._lock:
            return {k: self._entries[k] for k in keys if k in self._entries}

    def put_many(self, entries: Mapping[Hashable, Any]) -> None:
        with self._lock:
            self._entries.update(entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
