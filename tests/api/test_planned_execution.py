"""The fast path answers byte for byte what the general path answers.

Two apps, each on its own table, share one frozen clock and one user: every step of a client
session runs on both, as a trusted document by id on one (planned execution) and as the same
text on the other, an app that knows no trusted document and caches no document (so the text
is parsed, validated and executed by graphql-core as any query is, never planned). Documents
outside the manifest are planned too on an app that caches documents: ad hoc ones (aliases,
fragments, __typename, arguments deep down) are compared the same way. Same document, state,
time and ids: the response bodies must be the same bytes, errors and their locations included.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import pytest_asyncio

from graphql_api import app
from graphql_api.domain import chat
from graphql_api.gql.trusted import apollo_manifest, from_operations
from graphql_api.storage import shares
from graphql_api.storage.checks import LINK_ID_BYTES
from graphql_api.storage.client import DynamoDBClient
from graphql_api.storage.table import create_table, delete_table
from tests.api.harness import Api
from tests.apps import AppFactory

MANIFEST = {document.name: document for document in from_operations()}


class FrozenClock:
    """The same now for both apps until the test moves it."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=123456)

    def __call__(self) -> datetime:
        return self.now

    def tick(self) -> None:
        self.now += timedelta(seconds=1, microseconds=7)


@pytest_asyncio.fixture(scope="module")
async def pair(
    make_api: AppFactory,
    dynamodb_client: DynamoDBClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Api, Api, FrozenClock]]:
    clock = FrozenClock()
    empty = tmp_path_factory.mktemp("manifests") / "empty.json"
    empty.write_text(apollo_manifest([]))
    tables = [f"chat-history-api-planned-{uuid.uuid4().hex[:12]}" for _ in range(2)]
    for name in tables:
        await create_table(dynamodb_client, table_name=name)
    try:
        async with contextlib.AsyncExitStack() as stack:
            fast = await stack.enter_async_context(
                # The cache on whatever `make test-general` chooses: this app is the planned one.
                make_api(
                    clock=clock,
                    dynamodb={"table_name": tables[0]},
                    graphql_document_cache_size=512,
                )
            )
            with pytest.MonkeyPatch.context() as patch:
                # Built knowing no trusted document: every text takes the general path.
                patch.setattr(app, "PACKAGED_MANIFEST", empty)
                general = await stack.enter_async_context(
                    make_api(
                        clock=clock,
                        dynamodb={"table_name": tables[1]},
                        graphql_document_cache_size=0,
                    )
                )
            yield fast, general, clock
    finally:
        for name in tables:
            await delete_table(dynamodb_client, table_name=name)


class Session:
    def __init__(self, fast: Api, general: Api, clock: FrozenClock, user: str) -> None:
        self.fast, self.general, self.clock, self.user = fast, general, clock, user
        self.steps = 0
        # Run before each of the two requests of a step (see same_fresh_ids).
        self.before_each: Callable[[], None] = lambda: None

    async def step(self, name: str, /, **variables: Any) -> dict[str, Any]:
        """Run `name` both ways; the two bodies must be the same bytes. Returns the body."""
        known = MANIFEST[name]
        headers = self.fast.headers(self.user)
        self.before_each()
        by_id = await self.fast.http.post(
            "/graphql", json={"documentId": known.id, "variables": variables}, headers=headers
        )
        self.before_each()
        by_text = await self.general.http.post(
            "/graphql", json={"query": known.body, "variables": variables}, headers=headers
        )
        self.clock.tick()
        self.steps += 1
        assert by_id.status_code == by_text.status_code
        assert by_id.content == by_text.content, name
        body: dict[str, Any] = by_id.json()
        return body

    async def ad_hoc(self, query: str, **variables: Any) -> dict[str, Any]:
        """`query` as text on both: planned on the fast app (it caches documents), not on the
        general one. Read-only, so the two stay alike."""
        headers = self.fast.headers(self.user)
        bodies = [
            await api.http.post(
                "/graphql", json={"query": query, "variables": variables}, headers=headers
            )
            for api in (self.fast, self.general)
        ]
        assert bodies[0].status_code == bodies[1].status_code
        assert bodies[0].content == bodies[1].content, query
        body: dict[str, Any] = bodies[0].json()
        return body


@contextlib.contextmanager
def same_fresh_ids(session: Session, patch: pytest.MonkeyPatch) -> Iterator[None]:
    """The ids the service makes up itself (share link ids, a fork's conversation and message
    ids) made alike on both apps: the same sequence, from its start at each request."""
    sequence: Iterator[int] = iter(())

    def restart() -> None:
        nonlocal sequence
        sequence = itertools.count(1)

    def digest() -> bytes:
        return hashlib.sha256(f"{session.steps}:{next(sequence)}".encode()).digest()

    with patch.context() as patched:
        patched.setattr(
            shares,
            "new_link_id",
            lambda: base64.urlsafe_b64encode(digest()[:LINK_ID_BYTES]).decode(),
        )
        # The domain's own uuid alone (tokens and request ids draw on the module's too).
        patched.setattr(
            chat, "uuid", SimpleNamespace(uuid4=lambda: uuid.UUID(bytes=digest()[:16], version=4))
        )
        session.before_each = restart
        try:
            yield
        finally:
            session.before_each = lambda: None


async def test_every_operation_answers_the_same_bytes_both_ways(
    pair: tuple[Api, Api, FrozenClock],
    alice: str,
    planned_runs: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session = Session(*pair, user=alice)
    first, second, missing = (str(uuid.uuid4()) for _ in range(3))

    await session.step("HomeConversations")
    await session.step("CreateConversation", id=first, title="Ideas", modelId="model-1")
    await session.step("CreateConversation", id=second, title="Second")
    await session.step(
        "SendMessage", conversationId=first, id=str(uuid.uuid4()), role="USER", content="Hi é"
    )
    exchange = [
        {
            "id": str(uuid.uuid4()),
            "role": "USER" if index % 2 == 0 else "ASSISTANT",
            "content": f"m{index} " + "x" * index,
            **({"modelId": "model-1"} if index % 2 else {}),
            **({"isError": True, "errorMessage": "cut off"} if index == 7 else {}),
        }
        for index in range(20)
    ]
    saved = await session.step("SaveExchange", conversationId=first, messages=exchange)
    assert saved["data"]["addMessages"]["conversation"]["messageCount"] == 21

    home = await session.step("HomeConversations", first=1)
    end = home["data"]["conversations"]["pageInfo"]["endCursor"]
    await session.step("HomeConversations", first=1, after=end)
    opened = await session.step("OpenConversation", id=first, last=15)
    start = opened["data"]["conversation"]["messages"]["pageInfo"]["startCursor"]
    older = await session.step("OlderMessages", id=first, before=start)
    assert len(older["data"]["conversation"]["messages"]["edges"]) == 6
    version = opened["data"]["conversation"]["version"]
    await session.step("RenameConversation", id=first, title="Better", expectedVersion=version)

    # Errors and nulls: each must be reported the same way, path and message included.
    stale = await session.step(
        "RenameConversation", id=first, title="Stale", expectedVersion=version
    )
    assert stale["errors"][0]["extensions"]["code"] == "CONFLICT"
    assert (await session.step("OpenConversation", id=missing))["data"]["conversation"] is None
    invalid = await session.step("OpenConversation", id="not-a-uuid")
    assert invalid["errors"][0]["path"] == ["conversation"]
    lost = await session.step(
        "SendMessage", conversationId=missing, id=str(uuid.uuid4()), role="USER", content="?"
    )
    assert lost["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    tampered = await session.step("OlderMessages", id=first, before=start[:-2] + "AA")
    assert tampered["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    refused = await session.step("HomeConversations", first="many")
    assert "data" not in refused
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    await session.step("SendMessage", conversationId=first, role="ROBOT", content="?")

    # Branches, feedback, organising, sync, import and erasure.
    position = (await session.step("SyncChanges"))["data"]["changes"]["syncToken"]
    regenerated = str(uuid.uuid4())
    branched = await session.step(
        "BranchMessage",
        conversationId=first,
        parentId=exchange[0]["id"],
        id=regenerated,
        role="ASSISTANT",
        content="Again",
    )
    assert branched["data"]["addMessage"]["message"]["siblingIds"] == [
        exchange[1]["id"],
        regenerated,
    ]
    await session.step("SwitchBranch", conversationId=first, leafId=exchange[19]["id"])
    await session.step(
        "RateMessage", conversationId=first, messageId=exchange[1]["id"], rating="UP"
    )
    await session.step("OrganiseConversation", id=first, pinned=True, tags=["Work"])
    tagged = await session.step("BrowseConversations", filter={"tag": "work"})
    assert tagged["data"]["tags"] == [{"tag": "Work", "count": 1}]
    synced = await session.step("SyncChanges", since=position)
    assert len(synced["data"]["changes"]["changes"]) == 4
    imported_at = (pair[2].now - timedelta(days=3)).isoformat()
    await session.step(
        "ImportConversations",
        conversations=[
            {
                "id": str(uuid.uuid4()),
                "title": "From elsewhere",
                "createdAt": imported_at,
                "messages": [
                    {
                        "id": str(uuid.uuid4()),
                        "role": "USER",
                        "content": "Hello",
                        "createdAt": imported_at,
                    }
                ],
            }
        ],
    )
    # An answer saved as it streams, and the reads that show it mid-stream.
    streamed = str(uuid.uuid4())
    await session.step("StartMessage", conversationId=first, id=streamed, modelId="model-1")
    await session.step("AppendMessage", conversationId=first, messageId=streamed, seq=1, delta="Ün")
    await session.step("AppendMessage", conversationId=first, messageId=streamed, seq=1, delta="Ün")
    ahead = await session.step(
        "AppendMessage", conversationId=first, messageId=streamed, seq=3, delta="?"
    )
    assert ahead["errors"][0]["extensions"] == {"code": "CONFLICT", "expectedSeq": 2}
    midway = await session.step("OpenConversation", id=first, last=2)
    assert midway["data"]["conversation"]["messages"]["edges"][-1]["node"]["content"] == "Ün"
    await session.step(
        "FinishMessage", conversationId=first, messageId=streamed, status="STOPPED", lastSeq=1
    )
    live = await session.step("LiveChanges")
    assert live["errors"]
    followed = await session.step("MessageStream", conversationId=first, messageId=streamed)
    assert followed["errors"]

    # Projects, and refetching by id alone.
    project = str(uuid.uuid4())
    await session.step("CreateProject", id=project, name="Work", instructions="Be brief.")
    await session.step("UpdateProject", id=project, name="Work stuff", expectedVersion=1)
    moved = await session.step("MoveConversation", conversationId=first, projectId=project)
    assert moved["data"]["moveConversation"]["conversation"]["project"]["conversationCount"] == 1
    await session.step("Projects")
    listed = await session.step("ProjectConversations", projectId=project, first=1)
    assert listed["data"]["project"]["conversations"]["totalCount"] == 1
    for node_id in (project, first, missing):
        await session.step("RefetchNode", id=node_id)
    await session.step("MoveConversation", conversationId=first, projectId=None)
    deleted = await session.step("DeleteProject", id=project)
    assert deleted["data"]["deleteProject"] == {"done": True, "conversationsRemaining": 0}

    await session.step("DeleteConversation", id=second)
    after = await session.step("HomeConversations")
    assert [edge["node"]["title"] for edge in after["data"]["conversations"]["edges"]] == [
        "Better",
        "From elsewhere",
    ]

    # Share links: the ids the service makes up are the same on both apps.
    with same_fresh_ids(session, monkeypatch):
        made = await session.step("CreateShareLink", conversationId=first)
        link = made["data"]["createShareLink"]["shareLink"]["id"]
        await session.step("ShareLinks")
        await session.step("ConversationShareLinks", id=first)
        await session.step("UpdateShareLink", id=link, upToMessageId=exchange[3]["id"])
        forked = await session.step("ForkSharedConversation", shareId=link)
        # "Hi é", then the exchange up to its fourth message.
        assert forked["data"]["forkSharedConversation"]["conversation"]["messageCount"] == 5
        revoked = await session.step("RevokeShareLink", id=link)
        assert revoked["data"]["revokeShareLink"] == {"id": link}
        gone = await session.step("ForkSharedConversation", shareId=link)
        assert gone["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # Documents no manifest holds, planned on first use.
    planned_before = len(planned_runs)
    aliased = await session.ad_hoc(
        """
        query Ad($id: ID!) {
          mine: conversations(first: 5) { edges { node { ...Row } } totalCount }
          one: conversation(id: $id) {
            __typename
            ...Row
            newest: messages(last: 3) { edges { node { id role content feedback { rating } } } }
            oldest: messages(first: 2) { edges { cursor node { siblingIds parentId } } }
          }
        }
        fragment Row on Conversation { id title tags pinned lastMessage { content } }
        """,
        id=first,
    )
    assert aliased["data"]["one"]["__typename"] == "Conversation"
    assert len(aliased["data"]["one"]["newest"]["edges"]) == 3
    missing_field = await session.ad_hoc("{ conversation(id: 1) { id nothing } }")
    assert missing_field["errors"]
    nulls = await session.ad_hoc(
        "query Gone($id: ID!) { conversation(id: $id) { id } }", id=missing
    )
    assert nulls["data"] == {"conversation": None}
    assert len(planned_runs) == planned_before + 2

    erased = await session.step("DeleteAllMyData")
    assert erased["data"]["deleteAllMyData"] == {"done": True, "conversationsRemaining": 0}

    # Every step ran planned on the fast app, except those refused before execution (a
    # subscription never runs over HTTP), and so did each valid ad hoc document.
    assert len(planned_runs) == session.steps - 4 + 2
    subscriptions = {name for name, known in MANIFEST.items() if known.type == "subscription"}
    assert subscriptions == {"LiveChanges", "MessageStream"}
    assert set(planned_runs) == set(MANIFEST) - subscriptions | {"Ad", "Gone"}
