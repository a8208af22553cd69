"""Memory management for work that builds many objects at once."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cycle collector while a large result is built (tens of thousands of objects, none of them
    garbage): otherwise every few hundred allocations start a collection, and the full ones walk every object
    in the process. Reference counting still frees what goes out of use; the collector resumes afterwards (as
    it was) and catches up at its next turn."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
