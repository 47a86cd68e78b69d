"""The CLI as a deployment runs it: a fresh process, the environment, a real endpoint."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest
import pytest_asyncio

from graphql_api.local.devstack import DevState, state_path
from graphql_api.settings import Settings
from graphql_api.storage.client import DynamoDBClient
from graphql_api.storage.table import delete_table
from tests import general_paths
from tests.conftest import REGION, credentials_for

ROOT = Path(__file__).resolve().parents[2]
CLI = (sys.executable, "-m", "graphql_api.cli")
SETTINGS_VARIABLES = set(Settings.variables())


def run_cli(
    *arguments: str, environ: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI in a process whose environment holds none of the service's settings but these
    (and the suite's choice of paths)."""
    inherited = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    return subprocess.run(  # noqa: S603 - a fixed command
        [*CLI, *arguments],
        cwd=ROOT,
        env={**inherited, **general_paths.environment(), **(environ or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], line: str, code: int) -> None:
    assert result.returncode == code, result.stderr
    assert result.stderr.splitlines() == [line]
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("command", ["serve", "create-table"])
def test_missing_settings_stop_startup_with_one_line(command: str) -> None:
    result = run_cli(command, environ={"AWS_REGION": "eu-west-1"})

    assert_one_line_error(
        result, "configuration error: CHAT_TABLE_NAME: is required but not set", code=2
    )


def test_serve_without_cognito_settings_names_the_pool() -> None:
    result = run_cli("serve", environ={"CHAT_TABLE_NAME": "chat", "AWS_REGION": "eu-west-1"})

    assert_one_line_error(
        result, "configuration error: COGNITO_USER_POOL_ID: is required but not set", code=2
    )


def test_a_pool_from_another_region_is_refused_before_serving() -> None:
    environ = {
        "CHAT_TABLE_NAME": "chat",
        "AWS_REGION": "eu-west-1",
        "COGNITO_USER_POOL_ID": "us-east-1_abc",
        "COGNITO_APP_CLIENT_IDS": "client",
    }

    result = run_cli("serve", environ=environ)

    assert_one_line_error(
        result,
        "configuration error: COGNITO_REGION: 'eu-west-1' does not match the user pool's "
        "region 'us-east-1'",
        code=2,
    )


@pytest_asyncio.fixture
async def new_table_name(dynamodb_client: DynamoDBClient) -> AsyncIterator[str]:
    name = f"chat-history-cli-test-{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        await delete_table(dynamodb_client, table_name=name)


async def test_create_table_is_idempotent_and_leaves_the_table_active(
    dynamodb_endpoint: str, dynamodb_client: DynamoDBClient, new_table_name: str
) -> None:
    environ = {
        "CHAT_TABLE_NAME": new_table_name,
        "AWS_REGION": REGION,
        "DYNAMODB_ENDPOINT_URL": dynamodb_endpoint,
    }
    if credentials := credentials_for(dynamodb_endpoint):
        environ |= {"AWS_ACCESS_KEY_ID": credentials[0], "AWS_SECRET_ACCESS_KEY": credentials[1]}

    first = run_cli("create-table", environ=environ)
    second = run_cli("create-table", environ=environ)

    assert first.returncode == 0, first.stderr
    assert first.stdout == f"table {new_table_name!r} created; it is ACTIVE\n"
    assert second.returncode == 0, second.stderr
    assert second.stdout == f"table {new_table_name!r} already exists; it is ACTIVE\n"
    described = await dynamodb_client.describe_table(TableName=new_table_name)
    assert described["Table"].get("TableStatus") == "ACTIVE"


def test_create_table_reports_an_unreachable_endpoint_on_one_line() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    environ = {
        "CHAT_TABLE_NAME": "chat",
        "AWS_REGION": REGION,
        "DYNAMODB_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "DYNAMODB_MAX_ATTEMPTS": "1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }

    result = run_cli("create-table", environ=environ)

    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("create-table: DynamoDB is unreachable (Could not connect to")
    assert f"127.0.0.1:{port}" in line


def test_export_schema_writes_the_committed_sdl(tmp_path: Path) -> None:
    output = tmp_path / "schema.graphql"

    result = run_cli("export-schema", "--output", str(output))

    assert result.returncode == 0, result.stderr
    committed = ROOT / "schema" / "schema.graphql"
    assert output.read_text() == committed.read_text(), (
        "schema/schema.graphql is stale: run `chat-history-api export-schema` and commit it"
    )


def test_export_operations_writes_the_committed_manifests(tmp_path: Path) -> None:
    result = run_cli("export-operations", "--output-dir", str(tmp_path))

    assert result.returncode == 0, result.stderr
    for name in ("persisted-query-manifest.json", "persisted-documents.json"):
        assert (tmp_path / name).read_text() == (ROOT / "schema" / name).read_text(), (
            f"schema/{name} is stale: run `chat-history-api export-operations` and commit it"
        )


def test_dev_token_without_a_dev_server_says_how_to_start_one(tmp_path: Path) -> None:
    result = run_cli("dev-token", "--user", "bob", "--port", "8123", "--state-dir", str(tmp_path))

    assert_one_line_error(
        result,
        "dev-token: no dev server is running on this port (start one with `chat-history-api dev`)",
        code=1,
    )


def test_dev_token_from_a_stopped_dev_server_says_it_is_gone(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    DevState(
        moto_url=f"http://127.0.0.1:{port}",
        region="us-east-1",
        pool_id="us-east-1_gone",
        client_id="gone",
        graphql_url="http://127.0.0.1:8123/graphql",
        pid=0,
    ).write(state_path(tmp_path, 8123))

    result = run_cli("dev-token", "--port", "8123", "--state-dir", str(tmp_path))

    assert_one_line_error(
        result,
        "dev-token: the dev server at http://127.0.0.1:8123/graphql is not answering; "
        "is `chat-history-api dev` still running?",
        code=1,
    )


def test_export_openapi_writes_the_committed_document(tmp_path: Path) -> None:
    output = tmp_path / "openapi.json"

    result = run_cli("export-openapi", "--output", str(output))

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote {output}\n"
    committed = ROOT / "schema" / "openapi.json"
    assert output.read_text() == committed.read_text(), (
        "schema/openapi.json is stale: run `chat-history-api export-openapi` and commit it"
    )


async def test_migrate_after_create_table_has_nothing_to_do_and_says_so(
    dynamodb_endpoint: str, new_table_name: str
) -> None:
    environ = {
        "CHAT_TABLE_NAME": new_table_name,
        "AWS_REGION": REGION,
        "DYNAMODB_ENDPOINT_URL": dynamodb_endpoint,
    }
    if credentials := credentials_for(dynamodb_endpoint):
        environ |= {"AWS_ACCESS_KEY_ID": credentials[0], "AWS_SECRET_ACCESS_KEY": credentials[1]}

    assert run_cli("create-table", environ=environ).returncode == 0
    migrated = run_cli("migrate", environ=environ)

    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout == (
        f"table {new_table_name!r}: 0 conversations given GSI2 keys, 0 changed meanwhile\n"
    )
