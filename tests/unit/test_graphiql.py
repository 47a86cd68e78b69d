"""GraphiQL's shipped assets match their manifest, and the page it builds is safe to serve."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from graphql_api.graphiql import (
    STATIC,
    Assets,
    AssetsMissingError,
    GraphiQL,
    content_security_policy,
    json_for_script,
)

# The packages the page is built from; tools/graphiql/package.json pins them.
DIRECT_PACKAGES = {"graphiql", "@graphiql/plugin-explorer", "react", "react-dom", "graphql-ws"}
TOOL = Path(__file__).resolve().parents[2] / "tools" / "graphiql"


def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((STATIC / "manifest.json").read_text())
    return loaded


def test_every_shipped_file_matches_its_manifest_entry() -> None:
    files = manifest()["files"]

    for name, entry in files.items():
        data = (STATIC / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], name
        assert len(data) == entry["size"], name


def test_nothing_unlisted_is_shipped() -> None:
    shipped = {path.name for path in STATIC.iterdir()}

    assert shipped == {*manifest()["files"], "manifest.json"}
    assert not [path for path in STATIC.iterdir() if path.is_dir()]


def test_every_name_carries_its_content_hash() -> None:
    # The service tells browsers to cache these for a year: a changed file needs a new name.
    for name, entry in manifest()["files"].items():
        match = re.fullmatch(r"[a-z]+-([0-9a-f]{12})\.[a-z0-9]+", name)
        assert match, name
        assert entry["sha256"].startswith(match.group(1)), name


def test_the_manifest_names_the_bundled_packages_and_their_versions() -> None:
    loaded = manifest()
    script = loaded["files"][loaded["entry"]["script"]]

    assert set(script["packages"]) >= DIRECT_PACKAGES
    for version in script["packages"].values():
        assert re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?", version), version
    # GraphiQL 4 is the last line on CodeMirror 5, which needs no workers (5 moved to Monaco).
    assert script["packages"]["graphiql"].startswith("4.")
    assert not [name for name in loaded["files"] if "worker" in name]


def test_the_assets_were_built_from_the_locked_packages() -> None:
    # Fails when package.json or the lock file moved on and `make graphiql-assets` was not run.
    pinned = json.loads((TOOL / "package.json").read_text())["dependencies"]
    locked = json.loads((TOOL / "package-lock.json").read_text())["packages"]
    bundled: dict[str, str] = {}
    for entry in manifest()["files"].values():
        bundled.update(entry["packages"])

    assert {name: bundled[name] for name in pinned} == pinned
    for name, version in bundled.items():
        copies = [
            entry["version"]
            for path, entry in locked.items()
            if path.endswith(f"node_modules/{name}")
        ]
        assert version in copies, f"{name}@{version} is not in package-lock.json: {copies}"


def test_the_bundled_licenses_are_shipped() -> None:
    loaded = manifest()
    (licenses,) = [name for name in loaded["files"] if name.startswith("licenses-")]
    text = (STATIC / licenses).read_text()
    script = loaded["files"][loaded["entry"]["script"]]

    for package, version in script["packages"].items():
        assert f"{package}@{version} " in text, package


def test_an_install_without_the_assets_says_so(tmp_path: Any) -> None:
    with pytest.raises(AssetsMissingError):
        Assets.load(tmp_path)


def page(**overrides: Any) -> str:
    graphiql = GraphiQL(assets=Assets.load(), endpoint="/graphql", **overrides)
    return graphiql.html(style_nonce="n0nce")


def config_of(html: str) -> dict[str, Any]:
    match = re.search(r'id="graphiql-config">(.*?)</script>', html, re.S)
    assert match
    loaded: dict[str, Any] = json.loads(match.group(1))
    return loaded


def test_the_page_hands_its_settings_to_the_bundle() -> None:
    html = page(headers={"Authorization": "Bearer a.b.c"}, default_query="{ __typename }")

    assert config_of(html) == {
        "endpoint": "/graphql",
        "headers": {"Authorization": "Bearer a.b.c"},
        "defaultQuery": "{ __typename }",
        "styleNonce": "n0nce",
    }


@pytest.mark.parametrize("text", ["</script>", "<!--", "</SCRIPT ", "a & b > c", "\u2028"])
def test_no_string_can_end_the_config_block(text: str) -> None:
    html = page(headers={"X": text}, default_query=text)

    assert config_of(html)["headers"] == {"X": text}
    assert config_of(html)["defaultQuery"] == text
    assert json.loads(json_for_script(text)) == text
    assert not re.search(r"[<>&]", json_for_script(text))


@pytest.mark.parametrize(
    ("host", "sockets"),
    [
        ("127.0.0.1:8000", " ws://127.0.0.1:8000 wss://127.0.0.1:8000"),
        ("api.example.com", " ws://api.example.com wss://api.example.com"),
        ("[::1]:8000", " ws://[::1]:8000 wss://[::1]:8000"),
        ("x; script-src *", ""),
        ("a b", ""),
        ("'self'", ""),
        (None, ""),
    ],
)
def test_websocket_sources_name_only_a_well_formed_host(host: str | None, sockets: str) -> None:
    policy = content_security_policy(host=host, style_nonce="n")

    assert f"connect-src 'self'{sockets};" in policy
    assert policy.count("script-src") == 1
