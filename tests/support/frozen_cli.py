"""The `fangan` command at the suite's instant: `python -m tests.support.frozen_cli ARGS…` runs `fangan ARGS…`
with the clock where the test process's clock is (FANGAN_TEST_NOW, read at the real moment FANGAN_TEST_REAL_AT,
both set by `environment()`), running on from there. Servers and ticks that a test starts in processes of their
own read the same day as the test, never the machine's, and agree with each other to the millisecond, as
hosts kept by NTP do; FANGAN_TEST_CLOCK_SKEW (seconds) sets one apart on purpose."""

from __future__ import annotations

import datetime as dt
import os
import sys
import time

import time_machine
from time_machine import escape_hatch


def _real_time() -> float:
    return escape_hatch.time.time() if escape_hatch.is_travelling() else time.time()


def environment() -> dict[str, str]:
    """What a child process needs to share this process's clock (call it in the test process)."""
    return {"FANGAN_TEST_NOW": dt.datetime.now(dt.UTC).isoformat(), "FANGAN_TEST_REAL_AT": repr(_real_time())}


def _instant() -> dt.datetime:
    now = dt.datetime.fromisoformat(os.environ["FANGAN_TEST_NOW"])
    # The real time that went by since the test read its clock (starting Python takes a while), and the skew.
    gone = _real_time() - float(os.environ.get("FANGAN_TEST_REAL_AT") or _real_time())
    return now + dt.timedelta(seconds=gone + float(os.environ.get("FANGAN_TEST_CLOCK_SKEW") or 0))


if __name__ == "__main__":
    with time_machine.travel(_instant(), tick=True):
        from server.cli import main

        sys.argv[0] = "fangan"
        main()
