"""GraphiQL over HTTP: the page, its Content-Security-Policy, and its assets from the package."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio

from graphql_api.graphiql import ASSETS_PATH, Assets
from tests.api.harness import Api
from tests.apps import AppFactory

HTML = {"Accept": "text/html"}
CONFIG = re.compile(r'<script type="application/json" id="graphiql-config">(.*?)</script>', re.S)


def page_config(page: str) -> dict[str, Any]:
    match = CONFIG.search(page)
    assert match, page
    config: dict[str, Any] = json.loads(match.group(1))
    return config


def csp(response: httpx.Response) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    return dict(directive.strip().partition(" ")[::2] for directive in policy.split(";"))


@pytest_asyncio.fixture(scope="module")
async def dev(make_api: AppFactory) -> AsyncIterator[Api]:
    """The app as `dev` builds it: GraphiQL's headers editor holds a token."""
    async with make_api(
        graphiql_headers={"Authorization": "Bearer dev.token.</script><script>alert(1)//"}
    ) as running:
        yield running


async def test_graphiql_is_served_to_a_browser_without_a_token(api: Api) -> None:
    response = await api.http.get("/graphql", headers=HTML)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    config = page_config(response.text)
    assert config["endpoint"] == "/graphql"
    assert config["headers"] is None
    assert "query RecentConversations" in config["defaultQuery"]


async def test_the_page_runs_no_inline_script(api: Api) -> None:
    page = (await api.http.get("/graphql", headers=HTML)).text

    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    assert scripts
    for attributes, body in scripts:
        assert 'type="application/json"' in attributes or ("src=" in attributes and not body)


async def test_the_csp_allows_only_the_services_own_origin(api: Api) -> None:
    response = await api.http.get("/graphql", headers=HTML)
    policy = csp(response)

    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["connect-src"] == "'self' ws://testserver wss://testserver"
    assert policy["object-src"] == policy["base-uri"] == policy["frame-ancestors"] == "'none'"
    # <style> elements only with this response's nonce, which the page hands to the bundle.
    nonce = page_config(response.text)["styleNonce"]
    assert policy["style-src"] == f"'self' 'nonce-{nonce}'"
    assert not [value for value in policy.values() if "http" in value or "*" in value]


async def test_each_response_has_its_own_style_nonce(api: Api) -> None:
    first, second = [await api.http.get("/graphql", headers=HTML) for _ in range(2)]

    assert page_config(first.text)["styleNonce"] != page_config(second.text)["styleNonce"]


async def test_a_host_header_that_could_break_the_policy_gets_self_alone(api: Api) -> None:
    headers = {**HTML, "Host": "evil.example; script-src *"}
    response = await api.http.get("/graphql", headers=headers)

    assert csp(response)["connect-src"] == "'self'"
    assert csp(response)["script-src"] == "'self'"


async def test_the_headers_editor_is_prefilled_and_cannot_close_the_script(dev: Api) -> None:
    response = await dev.http.get("/graphql", headers=HTML)

    config = page_config(response.text)
    assert config["headers"] == {"Authorization": "Bearer dev.token.</script><script>alert(1)//"}
    assert "<script>alert" not in response.text


async def test_every_asset_the_page_names_is_served_from_the_package(api: Api) -> None:
    page = (await api.http.get("/graphql", headers=HTML)).text
    assets = Assets.load()

    named = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sorted(named) == sorted(
        f"{ASSETS_PATH}/{name}" for name in (assets.script, assets.stylesheet, assets.icon)
    )
    for url in named:
        response = await api.http.get(url)
        assert response.status_code == 200, url
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.headers["x-content-type-options"] == "nosniff"
        name = url.rsplit("/", 1)[1]
        assert (assets.directory / name).read_bytes() == response.content


async def test_assets_have_their_media_types(api: Api) -> None:
    assets = Assets.load()
    stylesheet = await api.http.get(f"{ASSETS_PATH}/{assets.stylesheet}")
    fonts = re.findall(r"url\((font-[0-9a-f]+\.woff2)\)", stylesheet.text)

    assert stylesheet.headers["content-type"] == "text/css; charset=utf-8"
    script = await api.http.get(f"{ASSETS_PATH}/{assets.script}")
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert fonts
    font = await api.http.get(f"{ASSETS_PATH}/{fonts[0]}")
    assert (font.status_code, font.headers["content-type"]) == (200, "font/woff2")


async def test_only_files_the_manifest_lists_are_served(api: Api) -> None:
    for name in ("manifest.json", "..%2F__init__.py", "missing.js", ""):
        response = await api.http.get(f"{ASSETS_PATH}/{name}")
        assert response.status_code == 404, name


async def test_assets_pass_the_cors_and_transport_guards(make_api: AppFactory) -> None:
    async with make_api(cors_allow_origins=("https://app.example",)) as guarded:
        script = Assets.load().script
        response = await guarded.http.get(
            f"{ASSETS_PATH}/{script}", headers={"Origin": "https://app.example"}
        )
    assert response.status_code == 200


async def test_graphiql_and_its_assets_are_absent_when_disabled(make_api: AppFactory) -> None:
    async with make_api(graphiql_enabled=False) as closed:
        page = await closed.http.get("/graphql", headers=HTML)
        script = await closed.http.get(f"{ASSETS_PATH}/{Assets.load().script}")
    assert page.status_code == 401
    assert script.status_code == 404
