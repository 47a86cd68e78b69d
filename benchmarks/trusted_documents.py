"""CPU per request of each client operation, general path against trusted documents' fast path.

`python -m benchmarks.trusted_documents` (or `make bench-trusted`). One process serves the
service in-process (its ASGI app called directly, as uvicorn would, with real Cognito tokens
and its own DynamoDB client); moto answers in its own process, so this process's CPU time is
the service's: HTTP handling, token check, GraphQL, and the storage client. Every operation of
schema/operations/ (but the subscription, which HTTP refuses, DeleteAllMyData, which would
erase the data the others read, and the three steps of a stream, which depend on one another)
runs the same way twice, side by side, rounds alternating which goes first:
- general: the operation file's text as `query` (parsed and validated once, then found in the
  document cache by its text, and executed by graphql-core with Strawberry's resolvers);
- fast: its manifest id as `documentId` (no cache lookup of the text, and planned execution).
Both get the same data and answer the same bytes (tests/api/test_planned_execution.py); the
difference is the CPU the fast path saves. Then, without HTTP or storage, the execution alone
of a page of 50 messages (the service's own Strawberry types, in memory), both ways.
BENCH_QUICK=1 is a smoke run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import strawberry
from graphql import ExecutionResult, OperationDefinitionNode, execute, parse
from jose import jwt
from starlette.applications import Starlette
from strawberry.schema.config import StrawberryConfig

from benchmarks.children import Child, start_child
from benchmarks.config import UNLIMITED_RATES
from benchmarks.seed import DatasetSpec, seed
from graphql_api.app import create_app
from graphql_api.gql.messages import MessageConnection, MessageEdge
from graphql_api.gql.pagination import PageInfo
from graphql_api.gql.planned import PlannedExecutor, plan_operation
from graphql_api.gql.scalars import SCALAR_MAP
from graphql_api.gql.trusted import OPERATIONS_DIR, TrustedDocument, from_operations
from graphql_api.local.cognito import DevCognito
from graphql_api.settings import Settings
from graphql_api.storage.client import ChatTable, client_config, open_client
from graphql_api.storage.records import MessageRecord
from graphql_api.storage.table import create_table

LOCAL_CREDENTIALS: Final = ("testing", "testing")
REGION: Final = "us-east-1"
USER_TEXT: Final = "How do I page through a DynamoDB query without skipping items? " * 2
ASSISTANT_TEXT: Final = "Use the LastEvaluatedKey of each page as the next ExclusiveStartKey. " * 12
Variables = dict[str, Any]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Budget:
    rounds: int
    # Per round, operation and variant; writes fewer, as each one grows moto's table and moto
    # copies the whole table in every transaction.
    reads: int
    writes: int
    warmup: int


FULL: Final = Budget(rounds=5, reads=30, writes=12, warmup=5)
QUICK: Final = Budget(rounds=2, reads=5, writes=3, warmup=2)


# Not measured: a subscription does not run over HTTP, erasure would leave nothing to read,
# and a stream's three steps depend on one another (an append needs its started message and
# the seq after the last): issue 21's benchmarks measure them as whole streams.
UNMEASURED: Final = frozenset(
    {
        "LiveChanges",
        "MessageStream",
        "DeleteAllMyData",
        "StartMessage",
        "AppendMessage",
        "FinishMessage",
    }
)


def measured_documents() -> list[TrustedDocument]:
    return [document for document in from_operations() if document.name not in UNMEASURED]


@dataclasses.dataclass
class Branching:
    """A conversation of a question and its answer, kept apart from the seeded ones: the
    branch operations regenerate the answer, switch back to it and rate it."""

    conversation_id: str
    question_id: str
    answer_id: str


@dataclasses.dataclass
class Target:
    """The seeded data the operations read and write."""

    focus_id: str
    writable: list[str]
    older_cursor: str = ""
    sync_token: str = ""
    branching: Branching | None = None
    created: list[str] = dataclasses.field(default_factory=list)
    index: int = 0
    pinned: bool = False
    # A project the moves go in and out of, and those created for DeleteProject to delete.
    project_id: str = ""
    created_projects: list[str] = dataclasses.field(default_factory=list)
    moved_in: bool = False
    # A link to the branching conversation (two messages: a fork copies what it shows), and
    # those created for RevokeShareLink to revoke.
    share_link_id: str = ""
    created_links: list[str] = dataclasses.field(default_factory=list)

    def next_writable(self) -> str:
        self.index += 1
        return self.writable[self.index % len(self.writable)]


def variables_for(name: str, target: Target) -> Variables:
    """The variables of the next request of operation `name`: a client's, on seeded data."""
    new = str(uuid.uuid4())
    match name:
        case "HomeConversations":
            return {"first": 20}
        case "OpenConversation":
            return {"id": target.focus_id, "last": 50}
        case "OlderMessages":
            return {"id": target.focus_id, "before": target.older_cursor, "last": 50}
        case "CreateConversation":
            target.created.append(new)
            return {"id": new, "title": "Created", "modelId": "bench-model-1"}
        case "DeleteConversation":
            return {"id": target.created.pop()}
        case "RenameConversation":
            return {"id": target.next_writable(), "title": f"Renamed {new[:8]}"}
        case "SendMessage":
            return {
                "conversationId": target.next_writable(),
                "id": new,
                "role": "USER",
                "content": USER_TEXT,
            }
        case "SaveExchange":
            return {
                "conversationId": target.next_writable(),
                "messages": [
                    {"id": new, "role": "USER", "content": USER_TEXT},
                    {
                        "id": str(uuid.uuid4()),
                        "role": "ASSISTANT",
                        "content": ASSISTANT_TEXT,
                        "modelId": "bench-model-1",
                    },
                ],
            }
        case "BrowseConversations":
            return {"filter": {"tag": "bench"}, "first": 20}
        case "OrganiseConversation":
            target.pinned = not target.pinned
            return {"id": target.next_writable(), "pinned": target.pinned, "tags": ["bench"]}
        case "SyncChanges":
            # A device ten changes behind (the writes measured before it made many more).
            return {"since": target.sync_token, "first": 10}
        case "Projects":
            return {"first": 20}
        case "ProjectConversations":
            return {"projectId": target.project_id, "first": 20}
        case "RefetchNode":
            return {"id": target.focus_id}
        case "CreateProject":
            target.created_projects.append(new)
            return {"id": new, "name": "Created", "instructions": "Answer briefly."}
        case "UpdateProject":
            return {"id": target.project_id, "name": f"Renamed {new[:8]}"}
        case "DeleteProject":
            return {"id": target.created_projects.pop()}
        case "MoveConversation":
            # In and out by turns, so that every move is one.
            target.moved_in = not target.moved_in
            return {
                "conversationId": target.writable[0],
                "projectId": target.project_id if target.moved_in else None,
            }
        case "ImportConversations":
            at = "2026-01-02T03:04:05.000006Z"
            return {
                "conversations": [
                    {
                        "id": new,
                        "title": "Imported",
                        "createdAt": at,
                        "messages": [
                            {
                                "id": str(uuid.uuid4()),
                                "role": "USER",
                                "content": USER_TEXT,
                                "createdAt": at,
                            }
                        ],
                    }
                ]
            }
    branching = target.branching or Branching(
        conversation_id=target.focus_id, question_id=new, answer_id=new
    )
    match name:
        case "BranchMessage":
            return {
                "conversationId": branching.conversation_id,
                "parentId": branching.question_id,
                "id": new,
                "role": "ASSISTANT",
                "content": ASSISTANT_TEXT,
            }
        case "SwitchBranch":
            return {"conversationId": branching.conversation_id, "leafId": branching.answer_id}
        case "RateMessage":
            return {
                "conversationId": branching.conversation_id,
                "messageId": branching.answer_id,
                "rating": "UP",
            }
        case "ShareLinks":
            return {"first": 20}
        case "ConversationShareLinks":
            return {"id": branching.conversation_id}
        case "CreateShareLink":
            return {"conversationId": branching.conversation_id}
        case "UpdateShareLink":
            return {"id": target.share_link_id}
        case "RevokeShareLink":
            return {"id": target.created_links.pop()}
        case "ForkSharedConversation":
            return {"shareId": target.share_link_id}
    raise ValueError(f"no variables for {name}")


class InProcess:
    """The app called as uvicorn calls it: scope, receive, send; the lifespan's state copied."""

    def __init__(self, app: Starlette, state: dict[str, Any], token: str) -> None:
        self._app = app
        self._state = state
        self.user_id = str(jwt.get_unverified_claims(token)["sub"])
        self._headers = [
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"accept", b"application/graphql-response+json,application/json;q=0.9"),
        ]

    async def post(self, body: dict[str, Any]) -> dict[str, Any]:
        payload = json.dumps(body).encode()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/graphql",
            "raw_path": b"/graphql",
            "query_string": b"",
            "root_path": "",
            "headers": [*self._headers, (b"content-length", str(len(payload)).encode())],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": dict(self._state),
        }
        chunks: list[bytes] = []
        status = 0

        async def receive() -> MutableMapping[str, Any]:
            return {"type": "http.request", "body": payload, "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self._app(scope, receive, send)
        answer: dict[str, Any] = json.loads(b"".join(chunks))
        if status != 200 or answer.get("errors"):
            raise RuntimeError(f"{body.get('operationName')}: HTTP {status}: {answer}")
        return answer


@dataclasses.dataclass(frozen=True, kw_only=True)
class Operation:
    name: str
    kind: str
    text: str
    id: str

    def request(self, variant: str, variables: Variables) -> dict[str, Any]:
        document = {"query": self.text} if variant == "general" else {"documentId": self.id}
        return {**document, "operationName": self.name, "variables": variables}


VARIANTS: Final = ("general", "fast")


async def cpu_per_request(
    client: InProcess,
    operation: Operation,
    variant: str,
    target: Target,
    count: int,
    before_each: Callable[[], Awaitable[None]] | None = None,
) -> float:
    """Process CPU seconds per request over `count` sequential requests."""
    spent = 0.0
    for _ in range(count):
        if before_each is not None:
            await before_each()
        variables = variables_for(operation.name, target)
        started = time.process_time()
        await client.post(operation.request(variant, variables))
        spent += time.process_time() - started
    return spent / count


async def measure(client: InProcess, target: Target, budget: Budget) -> dict[str, Any]:
    operations = [
        Operation(
            name=document.name,
            kind=document.type,
            text=(OPERATIONS_DIR / f"{document.name}.graphql").read_text(encoding="utf-8"),
            id=document.id,
        )
        for document in measured_documents()
    ]
    by_name = {operation.name: operation for operation in operations}

    async def create_one() -> None:
        # Deletes need a conversation each; creating it is not what is measured.
        variables = variables_for("CreateConversation", target)
        await client.post(by_name["CreateConversation"].request("fast", variables))

    async def create_project() -> None:
        # As for DeleteConversation: each DeleteProject deletes a project of its own.
        variables = variables_for("CreateProject", target)
        await client.post(by_name["CreateProject"].request("fast", variables))

    async def create_link() -> None:
        # Each RevokeShareLink revokes a link of its own; the link's id is the service's.
        variables = variables_for("CreateShareLink", target)
        created = await client.post(by_name["CreateShareLink"].request("fast", variables))
        target.created_links.append(created["data"]["createShareLink"]["shareLink"]["id"])

    before_each = {
        "DeleteConversation": create_one,
        "DeleteProject": create_project,
        "RevokeShareLink": create_link,
    }

    opened = await client.post(
        by_name["OpenConversation"].request("fast", variables_for("OpenConversation", target))
    )
    target.older_cursor = opened["data"]["conversation"]["messages"]["pageInfo"]["startCursor"]
    synced = await client.post(by_name["SyncChanges"].request("fast", {}))
    target.sync_token = synced["data"]["changes"]["syncToken"]
    target.branching = await _branching(client, by_name, target)
    await create_link()
    target.share_link_id = target.created_links.pop()
    project = variables_for("CreateProject", target)
    target.created_projects.remove(project["id"])
    await client.post(by_name["CreateProject"].request("fast", project))
    target.project_id = project["id"]
    samples: dict[str, dict[str, list[float]]] = {
        operation.name: {variant: [] for variant in VARIANTS} for operation in operations
    }
    for round_number in range(budget.rounds + 1):
        order = VARIANTS if round_number % 2 == 0 else VARIANTS[::-1]
        for operation in operations:
            before = before_each.get(operation.name)
            requests = budget.reads if operation.kind == "query" else budget.writes
            for variant in order:
                count = budget.warmup if round_number == 0 else requests
                seconds = await cpu_per_request(client, operation, variant, target, count, before)
                if round_number > 0:
                    samples[operation.name][variant].append(seconds)
    return {
        name: {variant: statistics.median(values) for variant, values in per_variant.items()}
        for name, per_variant in samples.items()
    }


async def _branching(client: InProcess, by_name: dict[str, Operation], target: Target) -> Branching:
    created = variables_for("CreateConversation", target)
    target.created.remove(created["id"])
    await client.post(by_name["CreateConversation"].request("fast", created))
    exchange = variables_for("SaveExchange", target)
    exchange["conversationId"] = created["id"]
    await client.post(by_name["SaveExchange"].request("fast", exchange))
    question, answer = (message["id"] for message in exchange["messages"])
    return Branching(conversation_id=created["id"], question_id=question, answer_id=answer)


@contextlib.asynccontextmanager
async def service(moto_url: str, table: str, cognito: DevCognito) -> AsyncIterator[InProcess]:
    settings = Settings.from_env(
        {
            "CHAT_TABLE_NAME": table,
            "AWS_REGION": REGION,
            "DYNAMODB_ENDPOINT_URL": moto_url,
            # moto serves one request at a time and copies the whole table in every transaction:
            # let it take its time.
            "DYNAMODB_CONNECT_TIMEOUT": "60",
            "DYNAMODB_READ_TIMEOUT": "300",
            "DYNAMODB_DEADLINE_SECONDS": "600",
            "COGNITO_USER_POOL_ID": cognito.pool_id,
            "COGNITO_APP_CLIENT_IDS": cognito.client_id,
            "COGNITO_JWKS_URL": cognito.jwks_url,
            "CURSOR_SECRET": "bench-trusted-documents",
            "LOG_LEVEL": "WARNING",
            **UNLIMITED_RATES,
        }
    )
    app = create_app(settings, aws_credentials=LOCAL_CREDENTIALS)
    async with app.router.lifespan_context(app) as state:
        assert state is not None
        await asyncio.to_thread(cognito.ensure_user, "bench-trusted")
        token = await asyncio.to_thread(cognito.token_for, "bench-trusted")
        yield InProcess(app, dict(state), token)


async def run(budget: Budget) -> tuple[dict[str, Any], dict[str, Any]]:
    log_dir = Path(tempfile.mkdtemp(prefix="bench-trusted-"))
    moto: Child = await start_child("moto", "benchmarks.moto_engine", [], log_dir=log_dir)
    try:
        cognito = await asyncio.to_thread(
            DevCognito.create, endpoint_url=moto.detail, region=REGION
        )
        try:
            config = client_config(
                max_pool_connections=8, connect_timeout=2.0, read_timeout=120.0, max_attempts=4
            )
            table_name = f"bench-trusted-{uuid.uuid4().hex[:8]}"
            async with open_client(
                region=REGION,
                endpoint_url=moto.detail,
                config=config,
                credentials=LOCAL_CREDENTIALS,
            ) as dynamodb:
                await create_table(dynamodb, table_name=table_name)
                async with service(moto.detail, table_name, cognito) as client:
                    ids = await seed(
                        ChatTable(client=dynamodb, name=table_name, deadline=600.0),
                        DatasetSpec(
                            name="trusted",
                            focus_history=200,
                            others=13,
                            other_history=10,
                            writable=16,
                        ),
                        user_id=client.user_id,
                    )
                    target = Target(focus_id=ids.focus_id, writable=ids.writable_ids)
                    figures = await measure(client, target, budget)
        finally:
            cognito.close()
    finally:
        await moto.stop()
    machine = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg": os.getloadavg(),
    }
    return figures, machine


PAGE_DOCUMENT: Final = """
query Page {
  page {
    edges { cursor node { id role content createdAt modelId isError errorMessage } }
    pageInfo { hasPreviousPage startCursor hasNextPage endCursor }
    totalCount
  }
}
"""


def _page_query(connection: MessageConnection) -> type:
    @strawberry.type
    class Query:
        @strawberry.field
        async def page(self) -> MessageConnection:
            return connection

    return Query


def execution_only(executions: int) -> dict[str, float]:
    """CPU seconds to execute a page of 50 messages (no HTTP, no storage), both ways."""
    now = datetime.now(UTC)
    records = [
        MessageRecord(
            id=str(uuid.uuid4()),
            conversation_id="c",
            user_id="u",
            role="user" if index % 2 == 0 else "assistant",
            content=ASSISTANT_TEXT,
            created_at=now,
            model_id=None if index % 2 == 0 else "bench-model-1",
            is_error=False,
            error_message=None,
            parent_id=None,
            segment=0,
            depth=index + 1,
        )
        for index in range(50)
    ]
    edges = [MessageEdge(cursor="c" * 44, record=r) for r in records]
    connection = MessageConnection(
        edges=edges,
        page_info=PageInfo.of([e.cursor for e in edges], has_previous=True, has_next=False),
        total_count=200,
    )

    schema = strawberry.Schema(
        query=_page_query(connection), config=StrawberryConfig(scalar_map=SCALAR_MAP)
    )
    document = parse(PAGE_DOCUMENT)
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    plan = plan_operation(schema._schema, document, operation)

    async def spent(planned: bool) -> float:
        options: dict[str, Any] = {"executor_class": schema.execution_context_class}
        if planned:
            options = {"executor_class": PlannedExecutor, "plan": plan}
        started = time.process_time()
        for _ in range(executions):
            result = execute(schema._schema, document, **options)
            if not isinstance(result, ExecutionResult):
                result = await result
            if result.errors:
                raise RuntimeError(str(result.errors))
        return (time.process_time() - started) / executions

    async def both() -> dict[str, float]:
        rounds = [(await spent(False), await spent(True)) for _ in range(5)]
        return {
            "general": statistics.median(general for general, _ in rounds),
            "fast": statistics.median(fast for _, fast in rounds),
        }

    return asyncio.run(both())


def render(figures: dict[str, Any], machine: dict[str, Any], budget: Budget) -> str:
    lines = [
        f"CPU per request (ms), median of {budget.rounds} rounds of {budget.reads} requests "
        f"({budget.writes} for mutations), "
        f"{machine['nproc']} CPUs, Python {machine['python']}, "
        f"load average {machine['loadavg'][0]:.2f} at the end",
        "",
        "| operation | general path | trusted document (fast path) | saved | fast / general |",
        "|---|---|---|---|---|",
    ]
    for name, values in figures.items():
        general, fast = values["general"] * 1000, values["fast"] * 1000
        cells = [name, f"{general:.2f}", f"{fast:.2f}", f"{general - fast:.2f}"]
        lines.append("| " + " | ".join(cells) + f" | {fast / general:.2f}x |")
    return "\n".join(lines) + "\n"


def main() -> int:
    quick = os.environ.get("BENCH_QUICK", "").strip().lower() in {"1", "true", "yes"}
    budget = QUICK if quick else FULL

    async def bounded() -> tuple[dict[str, Any], dict[str, Any]]:
        async with asyncio.timeout(900):
            return await run(budget)

    figures, machine = asyncio.run(bounded())
    print(render(figures, machine, budget))
    alone = execution_only(20 if quick else 300)
    print(
        f"Execution alone, a page of 50 messages in memory: {alone['general'] * 1000:.2f} ms "
        f"through graphql-core, {alone['fast'] * 1000:.2f} ms planned (median of 5 rounds)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
