from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright

from tests.e2e.chromium import CHROMIUM, CHROMIUM_ARGS, require_chromium


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium, launched for one test."""
    require_chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()
