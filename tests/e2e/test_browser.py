"""GraphiQL in headless Chromium, as `chat-history-api dev` opens it, with no network at all.

The service serves every asset of the page itself. The browser here refuses every request
(and WebSocket) to a host other than 127.0.0.1, and a test fails if the page attempted one,
logged an error, or had anything refused by its Content-Security-Policy.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Route,
    WebSocketRoute,
    async_playwright,
    expect,
)

from graphql_api.local.devstack import graphiql_url
from tests.integration.test_dev_stack import SEEDED_TITLES, DevServer

pytestmark = pytest.mark.browser

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
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LOOPBACK = "127.0.0.1"
# Runs before the page's own scripts (and outside its CSP): every violation, as the page sees it.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.effectiveDirective} ${event.blockedURI}`);
});
"""


def require_chromium() -> None:
    """Skip where Chromium is missing, but never in CI: a browser test must not quietly vanish."""
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail("Chromium (/usr/bin/chromium) is missing; .ci/run installs it")
    pytest.skip("Chromium (/usr/bin/chromium) is not installed")


class Offline:
    """Refuses, and remembers, every request and WebSocket to a host other than 127.0.0.1."""

    def __init__(self) -> None:
        self.refused: list[str] = []

    async def request(self, route: Route) -> None:
        if urlsplit(route.request.url).hostname == LOOPBACK:
            await route.continue_()
            return
        self.refused.append(route.request.url)
        await route.abort("blockedbyclient")

    async def websocket(self, socket: WebSocketRoute) -> None:
        if urlsplit(socket.url).hostname == LOOPBACK:
            socket.connect_to_server()
            return
        self.refused.append(socket.url)
        await socket.close()

    async def attach(self, context: BrowserContext) -> None:
        await context.route("**/*", self.request)
        await context.route_web_socket(re.compile(".*"), self.websocket)


class Console:
    """The page's console errors and uncaught exceptions (CSP violations are logged as errors)."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._message)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    def _message(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    with DevServer.running(tmp_path_factory.mktemp("dev-state")) as server:
        yield server


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    require_chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def offline_page(browser: Browser) -> AsyncIterator[tuple[Page, Offline, Console]]:
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    offline = Offline()
    await offline.attach(context)
    await context.add_init_script(RECORD_CSP_VIOLATIONS)
    page = await context.new_page()
    try:
        yield page, offline, Console(page)
    finally:
        await context.close()


async def set_editor(page: Page, editor: str, text: str) -> None:
    """Replace an editor's text as typing would, through CodeMirror's own API."""
    await page.locator(f"{editor} .CodeMirror").evaluate(
        "(element, text) => element.CodeMirror.setValue(text)", text
    )


async def finish(page: Page, offline: Offline, screenshot: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / screenshot)
    # Said even when a step failed: a page whose scripts were refused fails as a timeout.
    assert offline.refused == [], f"requests to other hosts: {offline.refused}"


async def assert_clean(page: Page, console: Console) -> None:
    violations = await page.evaluate("window.__cspViolations")
    assert violations == [], f"refused by the Content-Security-Policy: {violations}"
    assert console.errors == [], f"console errors: {console.errors}"


async def test_graphiql_runs_the_prefilled_query_and_shows_conversations(
    offline_page: tuple[Page, Offline, Console], dev_server: DevServer
) -> None:
    page, offline, console = offline_page
    try:
        response = await page.goto(graphiql_url(dev_server.graphql_url))
        assert response is not None
        policy = response.headers.get("content-security-policy", "")
        assert "default-src 'self'" in policy
        assert "script-src 'self';" in policy
        run = page.locator(".graphiql-execute-button")
        await expect(run).to_be_visible(timeout=30_000)
        # The editors show what `dev` filled in: the sample query and the dev user's token.
        await expect(page.locator(".graphiql-query-editor")).to_contain_text("conversations")
        await expect(page.locator(".graphiql-editor-tool")).to_contain_text(
            f"Bearer {dev_server.token[:20]}"
        )
        # The schema loaded with that token: the docs list the root types.
        await page.get_by_label("Show Documentation Explorer").click()
        await expect(page.locator(".graphiql-doc-explorer")).to_contain_text(
            "Conversation", timeout=30_000
        )
        await run.click()
        result = page.locator(".graphiql-response")
        for title in SEEDED_TITLES:
            await expect(result).to_contain_text(title, timeout=30_000)
        await expect(result).not_to_contain_text('"errors"')
    finally:
        await finish(page, offline, "graphiql.png")
    await assert_clean(page, console)


class SubscriptionServer:
    """The server side of graphql-transport-ws, as much of it as one subscription needs.

    A stand-in, in the page's WebSocket, while the service has no subscriptions: the client
    under test is the bundle's fetcher. Once the service speaks the protocol, this test should
    run against it instead.
    """

    def __init__(self) -> None:
        self.protocols: list[str] = []
        self.connection_payloads: list[Any] = []
        self.subscriptions: list[dict[str, Any]] = []
        self.closed = False

    def handle(self, socket: WebSocketRoute) -> None:
        self.protocols = socket.protocols

        def on_message(message: str | bytes) -> None:
            received = json.loads(message)
            if received["type"] == "connection_init":
                self.connection_payloads.append(received.get("payload"))
                socket.send(json.dumps({"type": "connection_ack"}))
            elif received["type"] == "subscribe":
                self.subscriptions.append(received["payload"])
                event = {"messageAdded": {"content": "hello from the socket"}}
                next_message = {"id": received["id"], "type": "next", "payload": {"data": event}}
                socket.send(json.dumps(next_message))

        def on_close(code: int | None, reason: str | None) -> None:
            self.closed = True

        socket.on_message(on_message)
        socket.on_close(on_close)


SUBSCRIPTION = "subscription OnMessage { messageAdded { content } }"
# The variables editor shares the section, hidden while the Headers tab is open.
HEADERS_EDITOR = '.graphiql-editor-tool[aria-label="Headers"] .graphiql-editor:not(.hidden)'


async def test_a_subscription_goes_over_a_websocket_with_the_editors_current_token(
    offline_page: tuple[Page, Offline, Console], dev_server: DevServer
) -> None:
    page, offline, console = offline_page
    server = SubscriptionServer()
    socket_url = dev_server.graphql_url.replace("http://", "ws://", 1)
    await page.route_web_socket(socket_url, server.handle)
    try:
        await page.goto(graphiql_url(dev_server.graphql_url))
        run = page.locator(".graphiql-execute-button")
        await expect(run).to_be_visible(timeout=30_000)
        # A token edited after the page loaded: the socket must carry this one.
        await set_editor(page, HEADERS_EDITOR, '{"Authorization": "Bearer edited.token"}')
        await set_editor(page, ".graphiql-query-editor", SUBSCRIPTION)
        # Run sends the operation GraphiQL has parsed out of the editor, which it names here.
        await expect(page.locator(".graphiql-tab-active")).to_contain_text("OnMessage")
        await run.click()
        await expect(page.locator(".graphiql-response")).to_contain_text(
            "hello from the socket", timeout=30_000
        )
        assert server.protocols == ["graphql-transport-ws"]
        assert server.connection_payloads == [{"Authorization": "Bearer edited.token"}]
        assert [s["query"] for s in server.subscriptions] == [SUBSCRIPTION]
        # Stopping the subscription closes its socket.
        await run.click()
        for _ in range(100):
            if server.closed:
                break
            await page.wait_for_timeout(100)
        assert server.closed, "the socket stayed open after Stop"
    finally:
        await finish(page, offline, "graphiql-subscription.png")
    await assert_clean(page, console)
