"""`serve` as a deployment runs it: its stderr is JSON lines, one per request, and no others'."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio

from graphql_api.storage.client import DynamoDBClient
from graphql_api.storage.table import create_table, delete_table
from tests.conftest import REGION, credentials_for
from tests.tokens import FakeUserPool

ROOT = Path(__file__).resolve().parents[2]
QUERY = "query Mine { conversations(first: 5) { edges { node { id } } } }"


@pytest_asyncio.fixture
async def serve_table(dynamodb_client: DynamoDBClient) -> AsyncIterator[str]:
    name = f"chat-history-serve-{uuid.uuid4().hex[:12]}"
    await create_table(dynamodb_client, table_name=name)
    try:
        yield name
    finally:
        await delete_table(dynamodb_client, table_name=name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_writes_one_json_line_per_request_and_no_access_log(
    tmp_path: Path, dynamodb_endpoint: str, serve_table: str
) -> None:
    port = _free_port()
    stderr_path = tmp_path / "stderr.txt"
    with FakeUserPool() as pool:
        environ = {
            **os.environ,
            "CHAT_TABLE_NAME": serve_table,
            "AWS_REGION": REGION,
            "DYNAMODB_ENDPOINT_URL": dynamodb_endpoint,
            "COGNITO_USER_POOL_ID": pool.pool_id,
            "COGNITO_APP_CLIENT_IDS": pool.client_id,
            "COGNITO_JWKS_URL": pool.jwks_url,
            "CURSOR_SECRET": "serve-test",
            "METRICS_ENABLED": "true",
        }
        if credentials := credentials_for(dynamodb_endpoint):
            environ |= {
                "AWS_ACCESS_KEY_ID": credentials[0],
                "AWS_SECRET_ACCESS_KEY": credentials[1],
            }
        token = pool.minter.access_token(sub=f"user-{uuid.uuid4()}")
        command = [sys.executable, "-m", "graphql_api.cli", "serve", "--port", str(port)]
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(  # noqa: S603 - a fixed command
                command, cwd=ROOT, env=environ, stdout=subprocess.DEVNULL, stderr=stderr
            )
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, timeout=10) as http:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    with contextlib.suppress(httpx.HTTPError):
                        if http.get("/readyz").status_code == 200:
                            break
                    time.sleep(0.2)
                response = http.post(
                    "/graphql",
                    json={"query": QUERY},
                    headers={"Authorization": f"Bearer {token}", "X-Request-Id": "serve-1"},
                )
                metrics = http.get("/metrics")
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)

    assert response.status_code == 200
    assert response.headers["x-request-id"] == "serve-1"
    assert "chat_api_request_duration_seconds_count" in metrics.text
    lines = [json.loads(line) for line in stderr_path.read_text().splitlines() if line.strip()]
    [line] = [line for line in lines if line.get("request_id") == "serve-1"]
    assert (line["operation_name"], line["status"], line["dynamodb_requests"]) == ("Mine", 200, 1)
    assert any(line["logger"].startswith("uvicorn") for line in lines)
    assert not [line for line in lines if line["logger"] == "uvicorn.access"]
    assert token not in stderr_path.read_text()
