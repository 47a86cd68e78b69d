"""A share link opened in headless Chromium, as anyone holding the link would: the page shows
the conversation, runs no script, and asks for nothing but itself.

The service runs on a real uvicorn server on 127.0.0.1; the browser refuses every request to
another host, and the conversation's own text tries hard to make it run a script or fetch
something (a script element, an event handler, an image, a stylesheet), which the page must
show as text.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Request, expect

from tests.api.harness import add_messages, create_conversation, new_user
from tests.api.test_share_links import share
from tests.apps import AppFactory
from tests.e2e.test_browser import Offline, finish

pytestmark = pytest.mark.browser

TITLE = 'Tomatoes <b>&</b> "friends"'
HOSTILE = [
    "How do I keep tomatoes?\n  Indented, on a line of its own.",
    # Each would run a script or fetch from elsewhere, were it not escaped.
    "<script>window.ran = 'script'</script>"
    '<img src="https://images.example/x.png" onerror="window.ran = \'handler\'">'
    '<link rel="stylesheet" href="https://fonts.example/f.css">',
    "Keep them at room temperature, stem down.",
]


async def test_a_shared_conversation_opens_as_a_page_that_runs_no_script_and_fetches_nothing(
    make_api: AppFactory, browser: Browser
) -> None:
    async with make_api.live() as live:
        api, owner = live.api, new_user()
        conversation = await create_conversation(api, owner, TITLE)
        await add_messages(api, owner, conversation["id"], HOSTILE)
        link = await share(api, owner, conversation["id"])
        url = f"http://{live.address}{link['path']}"

        # Phone-sized, so the test also sees the page laid out where most links are opened.
        context = await browser.new_context(viewport={"width": 390, "height": 844})
        offline = Offline()
        await offline.attach(context)
        page = await context.new_page()
        requested: list[str] = []

        def seen(request: Request) -> None:
            requested.append(request.url)

        page.on("request", seen)
        try:
            response = await page.goto(url)
            assert response is not None
            assert response.status == 200
            headers = response.headers
            await expect(page).to_have_title(f"{TITLE} (shared conversation)")
            await expect(page.locator("h1")).to_have_text(TITLE)
            items = page.locator("li")
            await expect(items).to_have_count(len(HOSTILE))
            for item, text in zip(await items.all(), HOSTILE, strict=True):
                # As written, whitespace kept: the markup is shown, not obeyed.
                assert await item.locator(".content").inner_text() == text
            await expect(items.nth(0)).to_contain_text("User")
            await expect(items.nth(1)).to_contain_text("Assistant")
            document = await page.evaluate(
                """() => ({
                    ran: window.ran ?? null,
                    scripts: document.scripts.length,
                    images: document.images.length,
                    handlers: [...document.querySelectorAll("*")].flatMap(
                        (element) => element.getAttributeNames().filter((n) => n.startsWith("on"))
                    ),
                    robots: document.querySelector('meta[name="robots"]')?.content ?? null,
                    fitsThePhone: document.documentElement.scrollWidth <= window.innerWidth,
                })"""
            )
        finally:
            await finish(page, offline, "shared-page.png")
            await context.close()

    assert document == {
        "ran": None,
        "scripts": 0,
        "images": 0,
        "handlers": [],
        "robots": "noindex, nofollow",
        "fitsThePhone": True,
    }
    # The page itself and nothing else: no favicon, font, image or stylesheet, on-box or off.
    assert requested == [url]
    assert headers["x-robots-tag"] == "noindex, nofollow"
    assert headers["referrer-policy"] == "no-referrer"
    assert "script-src" not in headers["content-security-policy"]
    assert headers["content-security-policy"].startswith("default-src 'none'")
