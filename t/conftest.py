"""Integration tests: fixtures live in lib/plugin.py (documented there and
in README.md); helpers in lib/."""

pytest_plugins = ["lib.plugin"]
