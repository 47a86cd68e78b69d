"""`chat-history-api dev` as a developer runs it: a subprocess, driven over HTTP with its token."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from graphql_api.local.devstack import SAMPLE_QUERY
from graphql_api.storage.client import DynamoDBClient
from graphql_api.storage.table import delete_table
from tests.conftest import credentials_for

ROOT = Path(__file__).resolve().parents[2]
CLI = (sys.executable, "-m", "graphql_api.cli")
STARTUP_SECONDS = 60.0
QUERY = "{ conversations(first: 10) { totalCount edges { node { title messageCount } } } }"
SEEDED_TITLES = {"Three days in Lisbon", "Why is my Swift view not updating?"}
# Variables that would point the dev stack somewhere other than its own in-memory moto.
_STACK_VARIABLES = ("DYNAMODB_ENDPOINT_URL", "CHAT_TABLE_NAME", "AWS_REGION")


@dataclasses.dataclass
class DevServer:
    """A running `chat-history-api dev`; `output` is what it printed on stdout."""

    process: subprocess.Popen[bytes]
    state_dir: Path
    stdout: Path
    graphql_url: str
    token: str

    @property
    def base_url(self) -> str:
        return self.graphql_url.removesuffix("/graphql")

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    @property
    def output(self) -> str:
        return self.stdout.read_text()

    def query(self, query: str, *, token: str | None = None) -> dict[str, Any]:
        response = httpx.post(
            self.graphql_url,
            json={"query": query},
            headers={"Authorization": f"Bearer {token or self.token}"},
            timeout=30,
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        return body

    def stop(self) -> int:
        """Ctrl-C, as a developer stops it; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    @classmethod
    @contextlib.contextmanager
    def running(
        cls, state_dir: Path, *, environ: Mapping[str, str] | None = None
    ) -> Iterator[DevServer]:
        state_dir.mkdir(parents=True, exist_ok=True)
        stdout = state_dir / f"stdout-{uuid.uuid4().hex[:8]}.txt"
        env = {k: v for k, v in os.environ.items() if k not in _STACK_VARIABLES}
        command = [*CLI, "dev", "--no-browser", "--port", "0", "--state-dir", str(state_dir)]
        with stdout.open("wb") as out, (state_dir / "stderr.txt").open("ab") as err:
            process = subprocess.Popen(  # noqa: S603 - a fixed command
                command,
                cwd=ROOT,
                env={**env, **(environ or {})},
                stdout=out,
                stderr=err,
            )
        try:
            url, token = _wait_for_banner(process, stdout)
            server = cls(process, state_dir, stdout, url, token)
            yield server
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for_banner(process: subprocess.Popen[bytes], stdout: Path) -> tuple[str, str]:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        text = stdout.read_text()
        url = re.search(r"GraphiQL:\s+(http://\S+/graphql)", text)
        token = re.search(r"^  TOKEN=(\S+)$", text, re.MULTILINE)
        if url and token:
            return url.group(1), token.group(1)
        if process.poll() is not None:
            raise AssertionError(f"dev exited with {process.returncode}:\n{text}")
        time.sleep(0.1)
    raise AssertionError(f"dev printed no token within {STARTUP_SECONDS} s:\n{stdout.read_text()}")


def dev_token(server: DevServer, user: str) -> str:
    where = ["--port", str(server.port), "--state-dir", str(server.state_dir)]
    result = subprocess.run(  # noqa: S603 - a fixed command
        [*CLI, "dev-token", "--user", user, *where],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


def titles(body: dict[str, Any]) -> set[str]:
    return {edge["node"]["title"] for edge in body["data"]["conversations"]["edges"]}


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    with DevServer.running(tmp_path_factory.mktemp("dev-state")) as server:
        yield server


def test_the_printed_token_reads_the_seeded_conversations(dev_server: DevServer) -> None:
    body = dev_server.query(QUERY)

    assert titles(body) == SEEDED_TITLES
    assert body["data"]["conversations"]["totalCount"] == len(SEEDED_TITLES)


def test_the_banner_says_the_data_lives_in_memory(dev_server: DevServer) -> None:
    assert "in memory" in dev_server.output
    assert "gone at exit" in dev_server.output


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_the_probes_answer(dev_server: DevServer, path: str) -> None:
    assert httpx.get(dev_server.base_url + path, timeout=10).status_code == 200


def test_graphiql_opens_with_the_token_filled_in(dev_server: DevServer) -> None:
    page = httpx.get(dev_server.graphql_url, headers={"Accept": "text/html"}, timeout=10)

    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    assert f"Bearer {dev_server.token}" in page.text


def test_the_printed_graphiql_link_opens_on_the_readmes_query(dev_server: DevServer) -> None:
    [link] = re.findall(r"^  GraphiQL:\s+(\S+)$", dev_server.output, re.MULTILINE)
    page = httpx.get(link, headers={"Accept": "text/html"}, timeout=10)

    query = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["q"]
    assert query == [SAMPLE_QUERY]
    assert page.status_code == 200
    # Without `?q=` too (a link typed by hand), the editor starts on it: the page's default.
    bare = httpx.get(dev_server.graphql_url, headers={"Accept": "text/html"}, timeout=10)
    config = re.search(r'id="graphiql-config">(.*?)</script>', bare.text, re.S)
    assert config
    assert json.loads(config.group(1))["defaultQuery"] == SAMPLE_QUERY


def test_the_token_is_printed_once(dev_server: DevServer) -> None:
    assert dev_server.output.count(dev_server.token) == 1


def test_the_printed_dev_token_command_runs_from_the_clone(dev_server: DevServer) -> None:
    [line] = [line for line in dev_server.output.splitlines() if " dev-token " in line]
    command = shlex.split(line)
    # This suite starts `dev` as `python -m graphql_api.cli`: the command says the same.
    assert command[:3] == [os.path.relpath(sys.executable, ROOT), "-m", "graphql_api.cli"]

    token = subprocess.run(  # noqa: S603 - the command under test
        [*command, "--state-dir", str(dev_server.state_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()

    assert titles(dev_server.query(QUERY, token=token)) == SEEDED_TITLES


def test_responses_carry_their_cost_and_requests_log_as_console_lines(
    dev_server: DevServer,
) -> None:
    body = dev_server.query(QUERY)

    cost = body["extensions"]["cost"]
    assert cost["dynamodbRequests"] >= 1
    assert cost["readCapacityUnits"] > 0
    assert httpx.get(dev_server.base_url + "/metrics", timeout=10).status_code == 200
    stderr = dev_server.state_dir / "stderr.txt"
    deadline = time.monotonic() + 10
    line = None
    while line is None and time.monotonic() < deadline:
        line = re.search(
            r"POST /graphql query \S+ -> 200 in [\d.]+ ms \| dynamodb", stderr.read_text()
        )
        time.sleep(0.1)
    assert line, stderr.read_text()
    text = stderr.read_text()
    assert dev_server.token not in text
    assert "HTTP/1.1" not in text  # uvicorn's access log is off


def test_dev_token_signs_in_another_user_who_sees_only_their_own_data(
    dev_server: DevServer,
) -> None:
    bob = dev_token(dev_server, "bob")

    assert bob != dev_server.token
    assert titles(dev_server.query(QUERY, token=bob)) == set()
    assert titles(dev_server.query(QUERY, token=dev_token(dev_server, "dev"))) == SEEDED_TITLES


def test_stopping_the_stack_retires_its_state_file(tmp_path: Path) -> None:
    with DevServer.running(tmp_path) as server:
        state = tmp_path / f"dev-{server.port}.json"
        assert state.exists()

        assert server.stop() == 0

    assert not state.exists()
    assert "in-memory data is gone" in server.output


@pytest_asyncio.fixture
async def persistent_table(dynamodb_client: DynamoDBClient) -> AsyncIterator[str]:
    name = f"chat-history-dev-test-{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        with contextlib.suppress(Exception):
            await delete_table(dynamodb_client, table_name=name)


def test_with_an_endpoint_the_dev_user_finds_their_data_after_a_restart(
    tmp_path: Path, dynamodb_endpoint: str, persistent_table: str
) -> None:
    environ = {"DYNAMODB_ENDPOINT_URL": dynamodb_endpoint, "CHAT_TABLE_NAME": persistent_table}
    if credentials := credentials_for(dynamodb_endpoint):
        environ |= {"AWS_ACCESS_KEY_ID": credentials[0], "AWS_SECRET_ACCESS_KEY": credentials[1]}
    create = 'mutation { createConversation(input: {title: "Kept"}) { conversation { id } } }'
    with DevServer.running(tmp_path, environ=environ) as first:
        assert "outlives this process" in first.output
        first.query(create)
        assert first.stop() == 0

    with DevServer.running(tmp_path, environ=environ) as second:
        assert "your existing data" in second.output
        assert titles(second.query(QUERY)) == {*SEEDED_TITLES, "Kept"}
