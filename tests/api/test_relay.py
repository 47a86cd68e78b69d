"""A Relay app can refetch a Conversation or a Project by id alone: the real relay-compiler
(tools/relay-check, pinned by its lock file) compiles @refetchable fragments on both against
schema/schema.graphql, the refetch queries it writes run against the service, and a fragment
@refetchable on a type that is not a Node is refused (so this test can fail)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.api.harness import Api, create_conversation
from tests.api.test_projects import create_project

pytestmark = pytest.mark.relay

ROOT = Path(__file__).resolve().parents[2]
RELAY = ROOT / "tools" / "relay-check"
SCHEMA = ROOT / "schema" / "schema.graphql"
PINNED_VERSION = "21.0.1"
COMPILE_SECONDS = 120
# The query text in an artifact the compiler writes for the JavaScript language.
_TEXT = re.compile(r'"text": ("(?:[^"\\]|\\.)*")')
NOT_A_NODE = """
import { graphql } from "react-relay";

export const message = graphql`
  fragment NotANode_message on Message @refetchable(queryName: "NotANodeRefetchQuery") {
    id
    content
  }
`;
"""


@pytest.fixture(scope="module")
def compiler() -> tuple[str, Path]:
    """node and relay-compiler's launcher; skipped where either is missing, but never in CI,
    where a contract test must not quietly vanish."""
    launcher = RELAY / "node_modules" / "relay-compiler" / "cli.js"
    node = shutil.which("node")
    if node is None:
        problem = "node is not installed (.ci/run installs it)"
    elif not launcher.is_file():
        problem = f"relay-compiler is not installed: run `make relay-tools` ({RELAY})"
    else:
        return node, launcher
    if os.environ.get("CI"):
        pytest.fail(problem)
    pytest.skip(problem)


def relay_app(root: Path, *extra: tuple[str, str]) -> Path:
    """A copy of the Relay app under `root`, pointed at the committed schema, with `extra`
    source files; its artifacts are written there, not into the repository."""
    shutil.copytree(RELAY / "src", root / "src", ignore=shutil.ignore_patterns("__generated__"))
    config = json.loads((RELAY / "relay.config.json").read_text())
    config["schema"] = str(SCHEMA)
    (root / "relay.config.json").write_text(json.dumps(config))
    for name, text in extra:
        (root / "src" / name).write_text(text)
    return root


def compiled(compiler: tuple[str, Path], app: Path) -> subprocess.CompletedProcess[str]:
    node, launcher = compiler
    return subprocess.run(  # noqa: S603 - a fixed command
        [node, str(launcher), str(app / "relay.config.json")],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=COMPILE_SECONDS,
        env={**os.environ, "NO_COLOR": "1"},
    )


def query_text(app: Path, query_name: str) -> str:
    artifact = (app / "src" / "__generated__" / f"{query_name}.graphql.js").read_text()
    match = _TEXT.search(artifact)
    assert match is not None, artifact
    text: str = json.loads(match.group(1))
    return text


def test_the_pinned_relay_compiler_is_the_one_installed(compiler: tuple[str, Path]) -> None:
    pinned = json.loads((RELAY / "package.json").read_text())["devDependencies"]
    installed = json.loads((compiler[1].parent / "package.json").read_text())["version"]
    assert pinned["relay-compiler"] == installed == PINNED_VERSION


async def test_refetchable_conversation_and_project_fragments_compile_and_run(
    compiler: tuple[str, Path], tmp_path: Path, api: Api, alice: str
) -> None:
    app = relay_app(tmp_path)

    result = compiled(compiler, app)

    assert result.returncode == 0, result.stdout + result.stderr
    project = await create_project(api, alice, "Garden")
    conversation = await create_conversation(api, alice, "Tomatoes", projectId=project["id"])
    refetched = await api.data(
        query_text(app, "ConversationRowRefetchQuery"), {"id": conversation["id"]}, user=alice
    )
    assert refetched["node"]["title"] == "Tomatoes"
    assert refetched["node"]["project"] == {"id": project["id"], "name": "Garden"}
    paged = await api.data(
        query_text(app, "ProjectPanelPaginationQuery"),
        {"id": project["id"], "count": 10},
        user=alice,
    )
    connection = paged["node"]["conversations"]
    assert paged["node"]["conversationCount"] == connection["totalCount"] == 1
    assert [edge["node"]["id"] for edge in connection["edges"]] == [conversation["id"]]
    assert connection["pageInfo"] == {
        "endCursor": connection["edges"][0]["cursor"],
        "hasNextPage": False,
    }


def test_a_refetchable_fragment_on_a_type_that_is_not_a_node_is_refused(
    compiler: tuple[str, Path], tmp_path: Path
) -> None:
    app = relay_app(tmp_path, ("NotANode.js", NOT_A_NODE))

    result = compiled(compiler, app)

    assert result.returncode != 0
    assert "Compilation failed" in result.stdout + result.stderr
    assert "NotANode_message" in result.stdout + result.stderr
