"""Integration tests: fixtures live in lib/plugin.py (documented there and
in README.md); helpers in lib/."""

import signal

pytest_plugins = ["lib.plugin"]

# A test run started in the background of a non-interactive shell inherits
# SIGINT ignored, and every process it starts would too: the demo's Ctrl-C
# test would find run.sh deaf.  Processes started from here get it back.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
