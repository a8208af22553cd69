"""`(did you mean …?)` within a bound: a check that meets thousands of unknown names stays quick.

Each suggestion compares a word with every candidate (difflib), so a file with thousands of misspelt
names among thousands of known ones would take minutes. Inside `bounded(n)` the comparisons of all
suggestions together stop at `n`; past it, errors are still reported, only without a suggestion.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_left: ContextVar[list[int] | None] = ContextVar("suggestion_comparisons_left", default=None)


@contextmanager
def bounded(comparisons: int) -> Iterator[None]:
    """Let the suggestions made inside compare at most `comparisons` words in all."""
    token = _left.set([comparisons])
    try:
        yield
    finally:
        _left.reset(token)


def affordable(count: int) -> bool:
    """Whether `count` more comparisons fit (nothing is spent): to skip building candidates in vain."""
    left = _left.get()
    return left is None or count <= left[0]


def close_matches(word: str, candidates: Iterable[str], n: int = 1, cutoff: float = 0.6) -> list[str]:
    """`difflib.get_close_matches`, or nothing once the comparisons of the current bound are spent."""
    candidates = list(candidates)
    left = _left.get()
    if left is not None:
        if len(candidates) > left[0]:
            return []
        left[0] -= len(candidates)
    return difflib.get_close_matches(word, candidates, n=n, cutoff=cutoff)
