"""GraphiQL in headless Chromium, as `chat-history-api dev` opens it, with no network at all.

The service serves every asset of the page itself. The browser here refuses every request
(and WebSocket) to a host other than 127.0.0.1, and a test fails if the page attempted one,
logged an error, or had anything refused by its Content-Security-Policy.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
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
    WebSocket,
    WebSocketRoute,
    expect,
)

from graphql_api.local.devstack import graphiql_url
from tests.integration.test_dev_stack import SEEDED_TITLES, DevServer

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LOOPBACK = "127.0.0.1"
# Runs before the page's own scripts (and outside its CSP): every violation, as the page sees it.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.effectiveDirective} ${event.blockedURI}`);
});
"""


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


async def response_once_it_holds(page: Page, wanted: set[str]) -> str:
    """The response editor's whole text once it holds every string of `wanted` (or after 30
    s). Read through CodeMirror: the panel renders only the lines in view."""
    text = ""
    for _ in range(300):
        text = await page.locator(".graphiql-response .CodeMirror").evaluate(
            "element => element.CodeMirror.getValue()"
        )
        if all(part in text for part in wanted):
            break
        await page.wait_for_timeout(100)
    return text


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
        result = await response_once_it_holds(page, SEEDED_TITLES)
        assert all(title in result for title in SEEDED_TITLES), result
        assert '"errors"' not in result
    finally:
        await finish(page, offline, "graphiql.png")
    await assert_clean(page, console)


class SocketWatch:
    """The page's WebSockets to the service, as the browser saw them."""

    def __init__(self, page: Page) -> None:
        self.sent: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []
        self.opened = 0
        self.closed = 0
        page.on("websocket", self._opened)

    def _opened(self, socket: WebSocket) -> None:
        self.opened += 1
        socket.on("framesent", lambda frame: self.sent.append(json.loads(frame)))
        socket.on("framereceived", lambda frame: self.received.append(json.loads(frame)))
        socket.on("close", lambda _: self._closed())

    def _closed(self) -> None:
        self.closed += 1

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [message for message in self.sent if message.get("type") == kind]


def subscription_since(token: str) -> str:
    # From a syncToken read first: the protocol never says when the server has taken up a
    # subscription, and a write before that would be history, not news (tests/sockets.py).
    return (
        f'subscription OnChange {{ changes(since: "{token}") {{ kind conversation {{ title }} }} }}'
    )


# The variables editor shares the section, hidden while the Headers tab is open.
HEADERS_EDITOR = '.graphiql-editor-tool[aria-label="Headers"] .graphiql-editor:not(.hidden)'


async def test_a_subscription_in_graphiql_shows_a_write_made_elsewhere(
    offline_page: tuple[Page, Offline, Console], dev_server: DevServer
) -> None:
    """The service's own WebSocket endpoint, with the token of GraphiQL's headers editor: a
    conversation created over HTTP (another device) shows up in the response panel."""
    page, offline, console = offline_page
    sockets = SocketWatch(page)
    title = f"made on another device {uuid.uuid4().hex[:6]}"
    since = await asyncio.to_thread(dev_server.query, "{ changes { syncToken } }")
    subscription = subscription_since(since["data"]["changes"]["syncToken"])
    try:
        await page.goto(graphiql_url(dev_server.graphql_url))
        run = page.locator(".graphiql-execute-button")
        await expect(run).to_be_visible(timeout=30_000)
        # The socket carries what the headers editor holds when Run is pressed.
        headers = json.dumps({"Authorization": f"Bearer {dev_server.token}"})
        await set_editor(page, HEADERS_EDITOR, headers)
        await set_editor(page, ".graphiql-query-editor", subscription)
        # Run sends the operation GraphiQL has parsed out of the editor, which it names here.
        await expect(page.locator(".graphiql-tab-active")).to_contain_text("OnChange")
        await run.click()
        for _ in range(100):
            if any(m.get("type") == "connection_ack" for m in sockets.received) and (
                sockets.of_type("subscribe")
            ):
                break
            await page.wait_for_timeout(100)
        await asyncio.to_thread(
            dev_server.query,
            f'mutation {{ createConversation(input: {{title: "{title}"}}) '
            "{ conversation { id } } }",
        )
        await expect(page.locator(".graphiql-response")).to_contain_text(title, timeout=30_000)
        await expect(page.locator(".graphiql-response")).to_contain_text("CONVERSATION_CREATED")
        assert [m.get("payload") for m in sockets.of_type("connection_init")] == [
            {"Authorization": f"Bearer {dev_server.token}"}
        ]
        assert [m["payload"]["query"] for m in sockets.of_type("subscribe")] == [subscription]
        # Stopping the subscription closes its socket.
        await run.click()
        for _ in range(100):
            if sockets.closed:
                break
            await page.wait_for_timeout(100)
        assert sockets.closed == sockets.opened == 1, "the socket stayed open after Stop"
    finally:
        await finish(page, offline, "graphiql-subscription.png")
    await assert_clean(page, console)
