"""Debian's Chromium, as the browser tests launch it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> None:
    """Skip where Chromium is missing, but never in CI: a browser test must not quietly vanish."""
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail("Chromium (/usr/bin/chromium) is missing; .ci/run installs it")
    pytest.skip("Chromium (/usr/bin/chromium) is not installed")
