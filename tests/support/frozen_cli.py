"""The `fangan` command at the suite's instant: `python -m tests.support.frozen_cli ARGS…` runs `fangan ARGS…`
with the clock at FANGAN_TEST_NOW, running on from there (as the test process's clock does). Servers and ticks
that a test starts in processes of their own read the same day as the test, never the machine's."""

from __future__ import annotations

import sys

import time_machine

from tests.support.clock import NOW

if __name__ == "__main__":
    with time_machine.travel(NOW, tick=True):
        from server.cli import main

        sys.argv[0] = "fangan"
        main()
