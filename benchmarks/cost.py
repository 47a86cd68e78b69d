"""What each operation in schema/operations/ costs in DynamoDB, measured, at realistic sizes.

    python -m benchmarks.cost                      # moto on loopback; writes docs/cost.md
    DYNAMODB_ENDPOINT_URL=https://dynamodb.us-east-1.amazonaws.com python -m benchmarks.cost

Each operation document is sent to the app in-process with COST_EXTENSION_ENABLED, and its
`extensions.cost` (requests and the capacity DynamoDB reported, from the client's event hooks)
is what the table shows, with the DynamoDB calls the request made. Nothing is estimated: a
call whose response carried no ConsumedCapacity is counted in its own column. Against AWS the
script creates a uuid-named on-demand table and deletes it at the end (Cognito stays on moto).

The dollar column multiplies the measured units by on-demand request-unit prices (PRICES).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import re
import statistics
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import httpx

from benchmarks.config import UNLIMITED_RATES
from graphql_api.app import create_app
from graphql_api.local.cognito import DevCognito
from graphql_api.local.moto_server import LockedMotoServer
from graphql_api.observability.telemetry import Telemetry
from graphql_api.settings import (
    CognitoSettings,
    DynamoDBSettings,
    InputLimits,
    ObservabilitySettings,
    RateLimitSettings,
    Settings,
)
from graphql_api.storage.client import client_config, open_client
from graphql_api.storage.table import create_table, delete_table

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
OPERATIONS: Final = REPO_ROOT / "schema" / "operations"
OUTPUT: Final = REPO_ROOT / "docs" / "cost.md"
# The README's Operating it section shows the table too, between these markers.
README_DOC: Final = REPO_ROOT / "README.md"
TABLE_START, TABLE_END = "<!-- cost-table -->", "<!-- /cost-table -->"
LOCAL_CREDENTIALS: Final = ("testing", "testing")
REGION: Final = "us-east-1"


@dataclasses.dataclass(frozen=True)
class Prices:
    """On-demand request-unit prices, US dollars per million units."""

    region: str
    read: float
    write: float
    as_of: str
    source: str


# After the 50% on-demand cut effective 1 November 2024 (AWS What's New, 14 November 2024:
# "Amazon DynamoDB reduces prices for on-demand throughput and global tables"), us-east-1
# Standard table class. Check https://aws.amazon.com/dynamodb/pricing/on-demand/ before use.
PRICES: Final = Prices(
    region="us-east-1",
    read=0.125,
    write=0.625,
    as_of="2024-11-01",
    source="aws.amazon.com/dynamodb/pricing/on-demand (Standard table class), after the "
    "price cut announced 2024-11-14, effective 2024-11-01",
)


@dataclasses.dataclass(frozen=True)
class Sizes:
    """A chat app's usual shapes: a home screen of 20, a long conversation opened at its end."""

    conversations: int = 25
    home_page: int = 20
    history_messages: int = 200
    message_page: int = 50
    title: str = "Planning a three-day trip to Lisbon in May"
    prompt_chars: int = 300
    answer_chars: int = 1500


@dataclasses.dataclass(frozen=True)
class Measured:
    operation: str
    description: str
    requests: float
    read_units: float
    write_units: float
    unreported: float
    calls: str

    @property
    def dollars_per_million(self) -> float:
        return self.read_units * PRICES.read + self.write_units * PRICES.write


def _text(chars: int, seed: str) -> str:
    words = f"{seed} the quick brown fox jumps over the lazy dog while it rains in Lisbon "
    return (words * (chars // len(words) + 1))[:chars]


class Client:
    """The app over in-process HTTP, as one signed-in user."""

    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self._http = http
        self._headers = {"Authorization": f"Bearer {token}"}

    async def run(self, name: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        document = (OPERATIONS / f"{name}.graphql").read_text()
        response = await self._http.post(
            "/graphql",
            json={"query": document, "variables": dict(variables)},
            headers=self._headers,
        )
        body: dict[str, Any] = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise RuntimeError(f"{name} failed: {response.status_code} {body}")
        return body


@contextlib.asynccontextmanager
async def _app(settings: Settings, credentials: tuple[str, str] | None) -> AsyncIterator[Any]:
    app = create_app(
        settings, aws_credentials=credentials, telemetry=Telemetry.from_settings(settings)
    )
    async with app.router.lifespan_context(app) as state:

        async def with_state(scope: Any, receive: Any, send: Any) -> None:
            scope["state"] = dict(state or {})
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport, base_url="http://cost") as http:
            yield http


def _calls_of(counter: Mapping[str, int]) -> str:
    return ", ".join(f"{count}x {name}" for name, count in sorted(counter.items()))


Variables = Mapping[str, Any] | Callable[[], Awaitable[Mapping[str, Any]]]


async def _measure(
    client: Client,
    name: str,
    description: str,
    variables: Variables,
    *,
    repeat: int,
    calls_seen: list[dict[str, int]],
) -> Measured:
    """Run the operation `repeat` times (`variables` may be a callable giving fresh ones)."""
    samples = []
    for _ in range(repeat):
        chosen = await variables() if callable(variables) else variables
        before = len(calls_seen)
        body = await client.run(name, chosen)
        samples.append((body["extensions"]["cost"], calls_seen[before:]))
    costs = [cost for cost, _ in samples]
    last_calls = samples[-1][1][-1] if samples[-1][1] else {}
    return Measured(
        operation=name,
        description=description,
        requests=statistics.median(cost["dynamodbRequests"] for cost in costs),
        read_units=statistics.median(cost["readCapacityUnits"] for cost in costs),
        write_units=statistics.median(cost["writeCapacityUnits"] for cost in costs),
        unreported=statistics.median(cost.get("unreportedRequests", 0) for cost in costs),
        calls=_calls_of(last_calls),
    )


class _CallsLog:
    """The access log's DynamoDB calls per request, kept in order (read from the log records)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, int]] = []

    @contextlib.contextmanager
    def attached(self) -> Iterator[list[dict[str, int]]]:
        import logging

        calls = self.calls

        class Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                fields = getattr(record, "fields", None)
                if isinstance(fields, dict) and fields.get("operation_type"):
                    calls.append(dict(fields.get("dynamodb_calls", {})))

        logger = logging.getLogger("graphql_api.access")
        handler, level = Keep(), logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        try:
            yield calls
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)


async def measure_all(
    settings: Settings, cognito: DevCognito, credentials: tuple[str, str] | None, sizes: Sizes
) -> list[Measured]:
    calls_log = _CallsLog()
    with calls_log.attached() as calls:
        async with _app(settings, credentials) as http:
            client = Client(http, cognito.token_for(f"cost-{uuid.uuid4().hex[:8]}"))
            return await _scenario(client, sizes, calls)


async def _scenario(client: Client, sizes: Sizes, calls: list[dict[str, int]]) -> list[Measured]:
    results: list[Measured] = []

    def exchange(index: int) -> list[dict[str, str]]:
        return [
            {"role": "USER", "content": _text(sizes.prompt_chars, f"q{index}")},
            {"role": "ASSISTANT", "content": _text(sizes.answer_chars, f"a{index}"),
             "modelId": "gpt-4o-mini"},
        ]  # fmt: skip

    async def new_conversation() -> dict[str, Any]:
        return {"id": str(uuid.uuid4()), "title": sizes.title, "modelId": "gpt-4o-mini"}

    results.append(
        await _measure(
            client,
            "CreateConversation",
            f"a {len(sizes.title)}-character title",
            new_conversation,
            repeat=5,
            calls_seen=calls,
        )
    )
    # The user's other conversations, each with one exchange, so the home page is full.
    conversation_ids = []
    for index in range(sizes.conversations):
        variables = await new_conversation()
        await client.run("CreateConversation", variables)
        await client.run(
            "SaveExchange", {"conversationId": variables["id"], "messages": exchange(index)}
        )
        conversation_ids.append(variables["id"])
    long_id = conversation_ids[0]
    save_index = iter(range(1, 10_000))

    async def next_exchange() -> dict[str, Any]:
        return {"conversationId": long_id, "messages": exchange(next(save_index))}

    results.append(
        await _measure(
            client,
            "SaveExchange",
            f"a {sizes.prompt_chars}-character prompt and a {sizes.answer_chars}-character answer",
            next_exchange,
            repeat=5,
            calls_seen=calls,
        )
    )
    # Two messages per exchange: the one before and the five measured make twelve.
    for _ in range(sizes.history_messages // 2 - 6):
        await client.run("SaveExchange", await next_exchange())

    async def next_message() -> dict[str, Any]:
        return {"conversationId": long_id, "id": str(uuid.uuid4()), "role": "USER",
                "content": _text(sizes.prompt_chars, "send")}  # fmt: skip

    results.append(
        await _measure(
            client,
            "SendMessage",
            f"one {sizes.prompt_chars}-character message",
            next_message,
            repeat=5,
            calls_seen=calls,
        )
    )
    results.append(
        await _measure(
            client,
            "HomeConversations",
            f"first {sizes.home_page} of {sizes.conversations + 5} conversations, with previews",
            {"first": sizes.home_page},
            repeat=5,
            calls_seen=calls,
        )
    )
    opened = await client.run("OpenConversation", {"id": long_id, "last": sizes.message_page})
    start_cursor = opened["data"]["conversation"]["messages"]["pageInfo"]["startCursor"]
    total = opened["data"]["conversation"]["messages"]["totalCount"]
    results.append(
        await _measure(
            client,
            "OpenConversation",
            f"the last {sizes.message_page} of {total} messages",
            {"id": long_id, "last": sizes.message_page},
            repeat=5,
            calls_seen=calls,
        )
    )
    results.append(
        await _measure(
            client,
            "OlderMessages",
            f"the {sizes.message_page} messages before those",
            {"id": long_id, "before": start_cursor, "last": sizes.message_page},
            repeat=5,
            calls_seen=calls,
        )
    )
    results.append(
        await _measure(
            client,
            "RenameConversation",
            "a new title",
            {"id": long_id, "title": "Lisbon in May, three days"},
            repeat=5,
            calls_seen=calls,
        )
    )
    doomed = iter(conversation_ids[1:])

    async def next_doomed() -> dict[str, Any]:
        return {"id": next(doomed)}

    results.append(
        await _measure(
            client,
            "DeleteConversation",
            "a conversation of 2 messages",
            next_doomed,
            repeat=3,
            calls_seen=calls,
        )
    )
    results.append(
        await _measure(
            client,
            "DeleteConversation",
            f"a conversation of {total} messages",
            {"id": long_id},
            repeat=1,
            calls_seen=calls,
        )
    )
    return results


def render(results: list[Measured], *, engine: str) -> str:
    rows = [
        "| Operation | At | DynamoDB calls | Requests | RCU | WCU "
        "| Calls with no capacity reported | $ per million |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        dollars = f"{result.dollars_per_million:.3f}"
        if result.unreported:
            dollars += " + n/r"
        rows.append(
            f"| {result.operation} | {result.description} | {result.calls} | "
            f"{result.requests:g} | {result.read_units:g} | {result.write_units:g} | "
            f"{result.unreported:g} | {dollars} |"
        )
    notes = [
        "",
        f"Measured with `python -m benchmarks.cost` against {engine}. RCU and WCU are what the "
        'engine reported in `ConsumedCapacity` (every call asks for it); "n/r" marks calls '
        "whose response reported none, which are counted and never estimated. $ per million = "
        f"RCU x ${PRICES.read} + WCU x ${PRICES.write} per million operations: on-demand "
        f"read/write request units in {PRICES.region} ({PRICES.source}).",
    ]
    return "\n".join(rows + notes) + "\n"


MOTO_CAVEAT: Final = """
**These capacity figures are moto's, not DynamoDB's.** moto 5.2.5 answers
`ReturnConsumedCapacity` with fixed placeholder values whatever the item sizes: 1.0 for each
PutItem, DeleteItem, Query and Scan and per table for BatchWriteItem; 0.5 for each GetItem and
UpdateItem; one unit per key for BatchGetItem; 2.0 per item found for TransactGetItems; and an
empty list for **TransactWriteItems**, which is how every create, send and save is written, so
their write cost shows as "n/r". The request counts and the calls are exact on any engine.
DynamoDB charges by size (a read unit per 4 KB, half for eventually consistent reads, summed
over the items a Query reads; a write unit per 1 KB of each item written, twice that in a
transaction, plus a write to the GSI for items it projects), so real figures for the
message-heavy operations are higher. To measure them, run the same script against a scratch
table in an AWS account:

    DYNAMODB_ENDPOINT_URL=https://dynamodb.us-east-1.amazonaws.com python -m benchmarks.cost
"""


def _engine_name(endpoint: str | None) -> str:
    if endpoint is None:
        return "moto 5.2.5 (in this process, on loopback)"
    return f"the engine at {endpoint}"


def write(markdown_table: str, *, engine_is_moto: bool, engine: str) -> None:
    intro = (
        "# What each operation costs in DynamoDB\n\n"
        "Each operation in [schema/operations/](../schema/operations), sent to the service "
        "with `COST_EXTENSION_ENABLED=true`, at the sizes of a chat app's everyday use. "
        "Regenerate with `python -m benchmarks.cost`.\n\n"
    )
    caveat = MOTO_CAVEAT if engine_is_moto else ""
    OUTPUT.write_text(intro + markdown_table + caveat)
    if README_DOC.exists():
        text = README_DOC.read_text()
        block = f"{TABLE_START}\n{markdown_table}{TABLE_END}"
        pattern = re.compile(re.escape(TABLE_START) + ".*?" + re.escape(TABLE_END), re.DOTALL)
        if pattern.search(text):
            README_DOC.write_text(pattern.sub(lambda _: block, text))


async def run(endpoint: str | None, sizes: Sizes) -> tuple[list[Measured], str]:
    with LockedMotoServer() as moto:
        local = endpoint is None
        dynamodb_url = moto.url if local else endpoint
        credentials = LOCAL_CREDENTIALS if local else None
        table_name = f"chat-history-cost-{uuid.uuid4().hex[:8]}"
        config = client_config(
            max_pool_connections=4, connect_timeout=5, read_timeout=30, max_attempts=4
        )
        async with open_client(
            region=REGION, endpoint_url=dynamodb_url, config=config, credentials=credentials
        ) as client:
            await create_table(client, table_name=table_name, wait_seconds=600)
            cognito = DevCognito.create(endpoint_url=moto.url, region=REGION)
            try:
                settings = Settings(
                    dynamodb=DynamoDBSettings(
                        table_name=table_name, region=REGION, endpoint_url=dynamodb_url
                    ),
                    cognito=CognitoSettings(
                        user_pool_id=cognito.pool_id,
                        region=REGION,
                        app_client_ids=(cognito.client_id,),
                        jwks_url_override=cognito.jwks_url,
                    ),
                    limits=InputLimits(),
                    observability=ObservabilitySettings(cost_extension_enabled=True),
                    rate_limits=RateLimitSettings.from_env(UNLIMITED_RATES),
                    cursor_secret="cost-benchmark",  # noqa: S106 - a throwaway table
                    gc_freeze_after_startup=False,
                )
                results = await measure_all(settings, cognito, credentials, sizes)
            finally:
                cognito.close()
                await delete_table(client, table_name=table_name)
    return results, _engine_name(endpoint)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cost", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    endpoint = os.environ.get("DYNAMODB_ENDPOINT_URL") or None
    results, engine = asyncio.run(run(endpoint, Sizes()))
    table = render(results, engine=engine)
    print(table)
    if not args.no_write:
        write(table, engine_is_moto=endpoint is None, engine=engine)
        print(f"wrote {OUTPUT.relative_to(REPO_ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
