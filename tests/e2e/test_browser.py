"""GraphiQL in headless Chromium, as `chat-history-api dev` opens it: run the query, see data.

Strawberry's GraphiQL page loads React and GraphiQL from unpkg.com. With no internet here (or
in CI), the test serves those requests from the same npm packages fetched with `npm pack`;
the page's Subresource Integrity hashes make the browser refuse any byte that differs, so
this is exactly what a developer's browser runs. Every other off-box request is refused.
"""

from __future__ import annotations

import mimetypes
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Route, async_playwright, expect

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
# <cdn>/<package>@<version>/<file>, the package possibly scoped (@graphiql/plugin-explorer).
CDN_PATH = re.compile(
    r"^/(?:npm/)?(?P<package>(?:@[^/@]+/)?[^/@]+)@(?P<version>[^/]+)/(?P<file>.+)$"
)
CDN_HOSTS = {"unpkg.com", "cdn.jsdelivr.net"}
LOCAL = re.compile(r"^https?://(127\.0\.0\.1|localhost|\[::1\])[:/]")


def require(tool: Path | str | None, what: str) -> None:
    """Skip where the tool is missing, but never in CI: a browser test must not quietly vanish."""
    if tool is not None and Path(tool).exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing; .ci/run installs it")
    pytest.skip(f"{what} is not installed")


class NpmPackages:
    """Files of npm packages, unpacked once into a cache directory."""

    def __init__(self, cache: Path, npm: str) -> None:
        self._cache = cache
        self._npm = npm
        self.failures: list[str] = []

    def file(self, package: str, version: str, name: str) -> Path:
        root = self._cache / f"{package.replace('/', '+')}@{version}"
        if not root.exists():
            self._unpack(f"{package}@{version}", root)
        path = (root / "package" / name).resolve()
        if not path.is_relative_to(root):
            raise FileNotFoundError(name)
        return path

    def _unpack(self, spec: str, root: Path) -> None:
        staging = root.with_name(root.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        packed = subprocess.run(  # noqa: S603 - npm with a package spec the page names
            [self._npm, "pack", spec, "--silent", "--pack-destination", str(staging)],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        with tarfile.open(staging / packed.stdout.strip().splitlines()[-1]) as archive:
            archive.extractall(staging, filter="data")
        staging.rename(root)


@pytest.fixture(scope="module")
def npm_packages(pytestconfig: pytest.Config) -> NpmPackages:
    npm = shutil.which("npm")
    require(npm, "npm (to fetch GraphiQL's assets offline)")
    assert npm is not None
    # The cache plugin may be off (-p no:cacheprovider); fall back to the artifacts folder.
    pytest_cache = getattr(pytestconfig, "cache", None)
    cache = pytest_cache.mkdir("cdn-assets") if pytest_cache else ARTIFACTS / "cdn"
    return NpmPackages(Path(cache), npm)


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    with DevServer.running(tmp_path_factory.mktemp("dev-state")) as server:
        yield server


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    require(CHROMIUM, "Chromium (/usr/bin/chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


def route_offline(packages: NpmPackages) -> object:
    async def handle(route: Route) -> None:
        url = route.request.url
        if LOCAL.match(url):
            await route.continue_()
            return
        host, _, path = url.split("://", 1)[1].partition("/")
        match = CDN_PATH.match("/" + path.split("?")[0])
        if host not in CDN_HOSTS or match is None:
            await route.abort("blockedbyclient")
            return
        try:
            body = packages.file(match["package"], match["version"], match["file"]).read_bytes()
        except (OSError, subprocess.CalledProcessError) as exc:
            packages.failures.append(f"{url}: {exc} {getattr(exc, 'stderr', '')}".strip())
            await route.fulfill(status=404)
            return
        content_type = mimetypes.guess_type(match["file"])[0] or "application/octet-stream"
        # `crossorigin` scripts need CORS, as unpkg sends it.
        headers = {"Access-Control-Allow-Origin": "*", "Content-Type": content_type}
        await route.fulfill(status=200, headers=headers, body=body)

    return handle


async def test_graphiql_runs_the_prefilled_query_and_shows_conversations(
    browser: Browser, dev_server: DevServer, npm_packages: NpmPackages
) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    await context.route("**/*", route_offline(npm_packages))  # type: ignore[arg-type]
    page = await context.new_page()
    try:
        await page.goto(graphiql_url(dev_server.graphql_url))
        run = page.locator(".graphiql-execute-button")
        await expect(run).to_be_visible(timeout=30_000)
        # The editors show what `dev` filled in: the sample query and the dev user's token.
        await expect(page.locator(".graphiql-query-editor")).to_contain_text("conversations")
        await expect(page.locator(".graphiql-editor-tool")).to_contain_text("Bearer ")
        await run.click()
        response = page.locator(".graphiql-response")
        for title in SEEDED_TITLES:
            await expect(response).to_contain_text(title, timeout=30_000)
        await expect(response).not_to_contain_text('"errors"')
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=ARTIFACTS / "graphiql.png")
        await context.close()
        # Said last, and plainly: a page without its scripts otherwise fails as a timeout.
        assert not npm_packages.failures, f"GraphiQL's assets not served: {npm_packages.failures}"
