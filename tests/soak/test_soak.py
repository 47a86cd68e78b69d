"""Soak: the real server process under 16 concurrent clients for a bounded time.

Run on purpose with `make soak` (it is marked slow and left out of `make test`). It serves
`chat-history-api serve` in its own process, against moto on loopback and a test JWKS, and
drives mixed reads and writes for several users. It must show no 5xx and no unexpected error,
exact message counts afterwards, and no RSS growth after warm-up. Figures go to docs/soak.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from benchmarks.config import UNLIMITED_RATES
from graphql_api.storage.client import DynamoDBClient
from graphql_api.storage.table import create_table, delete_table
from tests.conftest import REGION
from tests.tokens import FakeUserPool

pytestmark = pytest.mark.slow

DURATION_SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))
MAX_REQUESTS = 50_000
CLIENTS = 16
USERS = 4
CONVERSATIONS_PER_USER = 3
WARM_UP_FRACTION = 0.25
REPORT = Path(__file__).resolve().parents[2] / "docs" / "soak.md"

HOME = """{ conversations(first: 20) {
  edges { node { id title messageCount lastMessage { content } } } } }"""
OPEN = """query($id: ID!) { conversation(id: $id) {
  title messageCount messages(last: 20) { edges { node { id role content } } } } }"""
ADD = """mutation($i: AddMessageInput!) { addMessage(input: $i) {
  message { id } conversation { messageCount } } }"""
ADD_TWO = """mutation($i: AddMessagesInput!) { addMessages(input: $i) { messages { id } } }"""
RENAME = """mutation($i: RenameConversationInput!) {
  renameConversation(input: $i) { conversation { version } } }"""
CREATE = """mutation($i: CreateConversationInput!) {
  createConversation(input: $i) { conversation { id } } }"""
COUNT = """query($id: ID!, $before: String) { conversation(id: $id) { messageCount
  messages(last: 100, before: $before) {
    edges { node { id } } pageInfo { hasPreviousPage startCursor } } } }"""


@dataclasses.dataclass
class Tally:
    latencies: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    statuses: Counter[int] = dataclasses.field(default_factory=Counter)
    unexpected: list[str] = dataclasses.field(default_factory=list)
    added: Counter[str] = dataclasses.field(default_factory=Counter)
    rss_samples: list[tuple[float, int]] = dataclasses.field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def pool() -> Iterator[FakeUserPool]:
    with FakeUserPool() as running:
        yield running


@pytest_asyncio.fixture(scope="module")
async def soak_table(dynamodb_client: DynamoDBClient) -> AsyncIterator[str]:
    name = f"chat-history-soak-{os.getpid()}"
    await create_table(dynamodb_client, table_name=name)
    try:
        yield name
    finally:
        await delete_table(dynamodb_client, table_name=name)


@pytest.fixture(scope="module")
def server(
    pool: FakeUserPool, dynamodb_endpoint: str, soak_table: str
) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {
        **os.environ,
        "CHAT_TABLE_NAME": soak_table,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "DYNAMODB_ENDPOINT_URL": dynamodb_endpoint,
        "COGNITO_USER_POOL_ID": pool.pool_id,
        "COGNITO_APP_CLIENT_IDS": pool.client_id,
        "COGNITO_JWKS_URL": pool.jwks_url,
        "CURSOR_SECRET": "soak-test-cursor-secret",
        # A steady 16 clients over 4 users, each user far past the production budgets: this
        # soak measures the service, not its rate limits.
        **UNLIMITED_RATES,
    }
    command = [str(Path(sys.executable).with_name("chat-history-api")), "serve"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env)  # noqa: S603 - our own console script
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError("the server did not become ready")
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


async def post(
    http: httpx.AsyncClient,
    token: str,
    query: str,
    variables: dict[str, Any],
    tally: Tally,
    kind: str,
) -> dict[str, Any] | None:
    started = time.perf_counter()
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    tally.latencies.setdefault(kind, []).append(time.perf_counter() - started)
    tally.statuses[response.status_code] += 1
    body: dict[str, Any] = response.json()
    if response.status_code != 200 or body.get("errors"):
        tally.unexpected.append(f"{kind}: {response.status_code} {response.text[:200]}")
        return None
    return body


async def client_loop(
    base: str,
    tokens: list[str],
    conversations: dict[str, list[str]],
    tally: Tally,
    stop_at: float,
    seed: int,
) -> None:
    chooser = random.Random(seed)
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        while time.monotonic() < stop_at and tally.requests < MAX_REQUESTS:
            token = chooser.choice(tokens)
            conversation = chooser.choice(conversations[token])
            roll = chooser.random()
            if roll < 0.4:
                await post(http, token, HOME, {}, tally, "home")
            elif roll < 0.75:
                await post(http, token, OPEN, {"id": conversation}, tally, "open")
            elif roll < 0.9:
                message = {"conversationId": conversation, "role": "USER", "content": f"s{seed}"}
                if await post(http, token, ADD, {"i": message}, tally, "addMessage"):
                    tally.added[conversation] += 1
            elif roll < 0.97:
                pair = [{"role": "USER", "content": "q"}, {"role": "ASSISTANT", "content": "a"}]
                variables = {"i": {"conversationId": conversation, "messages": pair}}
                if await post(http, token, ADD_TWO, variables, tally, "addMessages"):
                    tally.added[conversation] += 2
            else:
                rename = {"i": {"id": conversation, "title": f"renamed by {seed}"}}
                await post(http, token, RENAME, rename, tally, "rename")


async def sample_rss(pid: int, tally: Tally, stop_at: float) -> None:
    started = time.monotonic()
    while time.monotonic() < stop_at:
        tally.rss_samples.append((time.monotonic() - started, rss_bytes(pid)))
        await asyncio.sleep(1.0)


async def stored_messages(
    http: httpx.AsyncClient, token: str, conversation: str
) -> tuple[int, int]:
    """(messageCount, messages actually listed), walking every page back to the first."""
    listed, before, count = 0, None, -1
    while True:
        response = await http.post(
            "/graphql",
            json={"query": COUNT, "variables": {"id": conversation, "before": before}},
            headers={"Authorization": f"Bearer {token}"},
        )
        data = response.json()["data"]["conversation"]
        count = data["messageCount"]
        listed += len(data["messages"]["edges"])
        if not data["messages"]["pageInfo"]["hasPreviousPage"]:
            return count, listed
        before = data["messages"]["pageInfo"]["startCursor"]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def test_soak(server: tuple[str, int], pool: FakeUserPool) -> None:
    base, pid = server
    tokens = [pool.minter.access_token(sub=f"soak-user-{n}", lifetime=3600) for n in range(USERS)]
    conversations: dict[str, list[str]] = {}
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for token in tokens:
            conversations[token] = []
            for n in range(CONVERSATIONS_PER_USER):
                response = await http.post(
                    "/graphql",
                    json={"query": CREATE, "variables": {"i": {"title": f"soak {n}"}}},
                    headers={"Authorization": f"Bearer {token}"},
                )
                conversations[token].append(
                    response.json()["data"]["createConversation"]["conversation"]["id"]
                )
    tally = Tally()
    cpu_before = cpu_seconds(pid)
    started = time.monotonic()
    stop_at = started + DURATION_SECONDS
    await asyncio.gather(
        sample_rss(pid, tally, stop_at),
        *(
            client_loop(base, tokens, conversations, tally, stop_at, seed)
            for seed in range(CLIENTS)
        ),
    )
    elapsed = time.monotonic() - started
    cpu_used = cpu_seconds(pid) - cpu_before

    mismatches = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for token, owned in conversations.items():
            for conversation in owned:
                count, listed = await stored_messages(http, token, conversation)
                if not count == listed == tally.added[conversation]:
                    mismatches.append((conversation, count, listed, tally.added[conversation]))

    warm = [rss for at, rss in tally.rss_samples if at >= WARM_UP_FRACTION * DURATION_SECONDS]
    first_after_warm_up = statistics.median(warm[: max(1, len(warm) // 4)])
    last = statistics.median(warm[-max(1, len(warm) // 4) :])
    growth = (last - first_after_warm_up) / first_after_warm_up
    write_report(tally, elapsed, cpu_used, first_after_warm_up, last, growth, mismatches)

    assert not [s for s in tally.statuses if s >= 500], tally.statuses
    assert tally.unexpected == []
    assert mismatches == []
    assert sum(tally.added.values()) > 0
    assert growth < 0.10, f"RSS grew {growth:.1%} after warm-up"


def write_report(
    tally: Tally,
    elapsed: float,
    cpu_used: float,
    rss_start: float,
    rss_end: float,
    growth: float,
    mismatches: list[Any],
) -> None:
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    rows = [
        f"| {kind} | {len(values)} | {percentile(values, 0.5) * 1000:.1f} "
        f"| {percentile(values, 0.99) * 1000:.1f} |"
        for kind, values in sorted(tally.latencies.items())
    ]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(
        "\n".join(
            [
                "# Soak test",
                "",
                "Generated by `make soak` (tests/soak/test_soak.py); re-run to refresh.",
                "",
                f"- Machine: {os.cpu_count()} cores, {cpu_model}, "
                f"Python {platform.python_version()}",
                "- Server: `chat-history-api serve`, 1 worker, own process; DynamoDB: moto server "
                "on loopback (one request at a time); load: 16 asyncio clients in the test process",
                f"- Duration: {elapsed:.1f} s, {tally.requests} requests "
                f"({tally.requests / elapsed:.1f} req/s), {USERS} users, "
                f"{USERS * CONVERSATIONS_PER_USER} conversations",
                f"- HTTP statuses: {dict(tally.statuses)}; "
                f"unexpected errors: {len(tally.unexpected)}",
                f"- Messages added: {sum(tally.added.values())}; count mismatches afterwards: "
                f"{len(mismatches)}",
                f"- Server CPU: {cpu_used:.1f} s, "
                f"{cpu_used / max(tally.requests, 1) * 1000:.2f} ms per request",
                f"- Server RSS after warm-up: {rss_start / 2**20:.1f} MiB -> "
                f"{rss_end / 2**20:.1f} MiB ({growth:+.1%})",
                "",
                "| operation | requests | p50 ms | p99 ms |",
                "|---|---:|---:|---:|",
                *rows,
                "",
            ]
        ),
        encoding="utf-8",
    )
