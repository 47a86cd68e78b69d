"""The scenarios, as sequences of actions, and the ways of performing an action.

An action is what a chat app does on one screen; `plan(...)` turns a scenario and an index into
the action, so every variant performs the same sequence. A client performs actions one way:
GraphQL over HTTP (the service as it is, or as it was before: BEFORE_ENV), the same documents
sent as trusted documents by id (TRUSTED: the fast path), the REST baseline over HTTP, the
storage calls directly (direct), or, for the home screen only, the same request to a bare
endpoint answering the service's own captured answer (FLOOR: benchmarks/floor.py).
"""

from __future__ import annotations

import dataclasses
import json
import random
import uuid
from pathlib import Path
from typing import Any, Final, Literal, Protocol

import aiohttp

from benchmarks import operations
from benchmarks.seed import Dataset
from graphql_api.gql.trusted import TrustedDocument, apollo_manifest, canonical_body, document_id
from graphql_api.storage.client import ChatTable
from graphql_api.storage.records import MessagePosition, NewMessage

ActionKind = Literal["home", "open", "older", "send", "save", "rename", "delete"]
Variant = Literal[
    "direct", "rest", "graphql", "graphql_before", "direct_before", "graphql_trusted", "floor"
]
# Measured in every scenario, on every engine and dataset.
VARIANTS: Final[tuple[Variant, ...]] = ("direct", "rest", "graphql")
# The same service with this round's optimisations switched off by its own settings, measured
# in the same run next to "graphql" (after): only where the optimisations show, canned engine.
BEFORE: Final = "graphql_before"
BEFORE_ENV: Final[dict[str, str]] = {
    "GRAPHQL_DOCUMENT_CACHE_SIZE": "0",
    "GC_FREEZE_AFTER_STARTUP": "false",
    "DYNAMODB_FAST_PATH": "false",
}
BEFORE_SCENARIOS: Final[tuple[str, ...]] = ("home", "open", "send", "mixed")
# The storage calls with the DynamoDB fast path off (DYNAMODB_FAST_PATH=false): the storage
# layer as it was, measured next to "direct" on the BEFORE_SCENARIOS, and counted on moto to
# show it sends exactly the requests "direct" sends.
DIRECT_BEFORE: Final = "direct_before"
# Both run in the load generator's own process: no server.
IN_PROCESS: Final[tuple[Variant, ...]] = ("direct", DIRECT_BEFORE)
# The service with only trusted documents (the production setting for first-party apps): the
# GraphQL variant's documents, sent by id, run the fast path. Headline data, canned engine,
# every scenario but delete (whose victims are shared out between VARIANTS).
TRUSTED: Final = "graphql_trusted"
TRUSTED_MANIFEST: Final = "bench-persisted-query-manifest.json"
# A bare Starlette endpoint answering the home screen's JSON as the service answered it in the
# same run: no auth, no storage, the same server settings. Measured on the home screen, next
# to the others on the canned engine; the report gives every scenario as a multiple of it.
FLOOR: Final = "floor"
FLOOR_SCENARIO: Final = "home"

HOME_PAGE = 20
MESSAGE_PAGE = 50
# The mixed scenario: 80% reads, 20% writes.
MIX: Final[tuple[tuple[ActionKind, float], ...]] = (
    ("home", 0.35),
    ("open", 0.30),
    ("older", 0.15),
    ("send", 0.10),
    ("save", 0.05),
    ("rename", 0.05),
)
SCENARIOS: Final[dict[str, str]] = {
    "home": "home screen: conversations(first: 20) with lastMessage",
    "open": "open conversation: messages(last: 50)",
    "older": "load older: messages(last: 50, before: …)",
    "send": "send message: addMessage",
    "save": "save exchange: addMessages (2 messages)",
    "rename": "rename: renameConversation",
    "delete": "delete: deleteConversation (1,000 messages)",
    "mixed": "mixed: 80% reads, 20% writes",
}
USER_TEXT = "How do I page through a DynamoDB query without skipping items? " * 2
ASSISTANT_TEXT = "Use the LastEvaluatedKey of each page as the next ExclusiveStartKey. " * 12


class BenchFailure(Exception):
    """An action did not succeed: the run reports it instead of timing it."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Action:
    kind: ActionKind
    conversation_id: str = ""
    message_ids: tuple[str, ...] = ()
    title: str = ""


def mixed_kind(index: int) -> ActionKind:
    draw = random.Random(index).random()  # noqa: S311 - a reproducible mix, not secrets
    for kind, weight in MIX:
        if draw < weight:
            return kind
        draw -= weight
    return MIX[-1][0]


def plan(scenario: str, index: int, dataset: Dataset, victims: list[str]) -> Action:
    """The `index`-th action of `scenario`; the same for every variant."""
    kind = mixed_kind(index) if scenario == "mixed" else _KINDS.get(scenario)
    writable = dataset.writable_ids or [dataset.focus_id]
    target = writable[index % len(writable)]
    if kind in ("home", "open", "older"):
        return Action(kind=kind, conversation_id=dataset.focus_id)
    if kind == "send":
        return Action(kind="send", conversation_id=target, message_ids=(str(uuid.uuid4()),))
    if kind == "save":
        ids = (str(uuid.uuid4()), str(uuid.uuid4()))
        return Action(kind="save", conversation_id=target, message_ids=ids)
    if kind == "rename":
        return Action(kind="rename", conversation_id=target, title=f"Renamed {index}")
    if kind == "delete":
        if not victims:
            raise BenchFailure("no conversation left to delete")
        return Action(kind="delete", conversation_id=victims[index % len(victims)])
    raise ValueError(f"unknown scenario {scenario!r}")


_KINDS: Final[dict[str, ActionKind]] = {
    kind: kind for kind in ("home", "open", "older", "send", "save", "rename", "delete")
}


class Client(Protocol):
    async def prepare(self, dataset: Dataset) -> None:
        """Fetch what later actions need (the cursor of the newest page), unmeasured."""

    async def perform(self, action: Action) -> int:
        """Do the action; return how many items (conversations, messages) it got back."""


# --- GraphQL ---------------------------------------------------------------------------------

HOME_QUERY = """
query Home($first: Int!) {
  conversations(first: $first) {
    edges { cursor node { id title updatedAt messageCount lastMessage { role content } } }
    pageInfo { hasNextPage endCursor startCursor hasPreviousPage }
    totalCount
  }
}"""
OPEN_QUERY = """
query Open($id: ID!, $last: Int!, $before: String) {
  conversation(id: $id) {
    title
    messages(last: $last, before: $before) {
      edges { node { id role content createdAt } }
      pageInfo { hasPreviousPage startCursor hasNextPage endCursor }
    }
  }
}"""
SEND_MUTATION = """
mutation Send($input: AddMessageInput!) {
  addMessage(input: $input) { message { id } conversation { messageCount updatedAt } }
}"""
SAVE_MUTATION = """
mutation Save($input: AddMessagesInput!) {
  addMessages(input: $input) { messages { id } conversation { messageCount updatedAt } }
}"""
RENAME_MUTATION = """
mutation Rename($input: RenameConversationInput!) {
  renameConversation(input: $input) { conversation { id title updatedAt version } }
}"""
DELETE_MUTATION = """
mutation Delete($input: DeleteConversationInput!) {
  deleteConversation(input: $input) { deletedConversationId }
}"""


_DOCUMENTS: Final = (
    HOME_QUERY,
    OPEN_QUERY,
    SEND_MUTATION,
    SAVE_MUTATION,
    RENAME_MUTATION,
    DELETE_MUTATION,
)
_IDS: Final = {text: document_id(canonical_body(text)) for text in _DOCUMENTS}


def bench_documents() -> list[TrustedDocument]:
    """The GraphQL variant's documents as a client build's manifest would hold them."""
    documents = []
    for text in _DOCUMENTS:
        body = canonical_body(text)
        kind, name = body.split("(")[0].split()[:2]
        documents.append(TrustedDocument(id=document_id(body), name=name, type=kind, body=body))
    return documents


def trusted_env(directory: Path) -> dict[str, str]:
    """The settings of the TRUSTED server: its manifest written to `directory`."""
    path = directory / TRUSTED_MANIFEST
    path.write_text(apollo_manifest(bench_documents()), encoding="utf-8")
    return {"TRUSTED_DOCUMENTS_ONLY": "true", "TRUSTED_DOCUMENTS_MANIFESTS": str(path)}


class HttpClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self._session = session
        self._base_url = base_url
        self._headers = {"Authorization": f"Bearer {token}"}
        self.cursors: dict[str, str] = {}

    async def _json(self, method: str, path: str, body: Any = None) -> Any:
        async with self._session.request(
            method, self._base_url + path, json=body, headers=self._headers
        ) as response:
            payload = await response.read()
            if response.status != 200:
                raise BenchFailure(f"{method} {path}: HTTP {response.status}: {payload[:300]!r}")
        return json.loads(payload)


class GraphQLClient(HttpClient):
    def _request(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        return {"query": query, "variables": variables}

    async def _call(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        answer = await self._json("POST", "/graphql", self._request(query, variables))
        if answer.get("errors") or not isinstance(answer.get("data"), dict):
            raise BenchFailure(f"GraphQL errors: {str(answer.get('errors'))[:300]}")
        data: dict[str, Any] = answer["data"]
        return data

    async def _messages(self, conversation_id: str, before: str | None) -> dict[str, Any]:
        variables = {"id": conversation_id, "last": MESSAGE_PAGE, "before": before}
        conversation = (await self._call(OPEN_QUERY, variables))["conversation"]
        if conversation is None:
            raise BenchFailure(f"conversation {conversation_id} not found")
        messages: dict[str, Any] = conversation["messages"]
        return messages

    async def prepare(self, dataset: Dataset) -> None:
        page = await self._messages(dataset.focus_id, None)
        self.cursors[dataset.focus_id] = page["pageInfo"]["startCursor"]

    async def perform(self, action: Action) -> int:
        cid = action.conversation_id
        if action.kind == "home":
            data = await self._call(HOME_QUERY, {"first": HOME_PAGE})
            return len(data["conversations"]["edges"])
        if action.kind in ("open", "older"):
            before = self.cursors.get(cid) if action.kind == "older" else None
            return len((await self._messages(cid, before))["edges"])
        if action.kind == "send":
            message = {"id": action.message_ids[0], "role": "USER", "content": USER_TEXT}
            await self._call(SEND_MUTATION, {"input": {"conversationId": cid, **message}})
            return 1
        if action.kind == "save":
            messages = [
                {"id": action.message_ids[0], "role": "USER", "content": USER_TEXT},
                {
                    "id": action.message_ids[1],
                    "role": "ASSISTANT",
                    "content": ASSISTANT_TEXT,
                    "modelId": "bench-model-1",
                },
            ]
            data = await self._call(
                SAVE_MUTATION, {"input": {"conversationId": cid, "messages": messages}}
            )
            return len(data["addMessages"]["messages"])
        if action.kind == "rename":
            await self._call(RENAME_MUTATION, {"input": {"id": cid, "title": action.title}})
            return 1
        await self._call(DELETE_MUTATION, {"input": {"id": cid}})
        return 1


async def home_answer(session: aiohttp.ClientSession, base_url: str, token: str) -> bytes:
    """The service's answer to the home request, as its bytes (the floor answers them)."""
    body = {"query": HOME_QUERY, "variables": {"first": HOME_PAGE}}
    headers = {"Authorization": f"Bearer {token}"}
    async with session.post(base_url + "/graphql", json=body, headers=headers) as response:
        payload = await response.read()
        if response.status != 200:
            raise BenchFailure(f"home: HTTP {response.status}: {payload[:300]!r}")
    answer = json.loads(payload)
    if answer.get("errors") or not isinstance(answer.get("data"), dict):
        raise BenchFailure(f"home: GraphQL errors: {str(answer.get('errors'))[:300]}")
    return payload


class FloorClient(GraphQLClient):
    """The home request, sent to the floor as to the service; it knows no other action."""

    async def prepare(self, dataset: Dataset) -> None:
        return None

    async def perform(self, action: Action) -> int:
        if action.kind != FLOOR_SCENARIO:
            raise BenchFailure(f"the floor answers the {FLOOR_SCENARIO} screen only")
        return await super().perform(action)


class TrustedGraphQLClient(GraphQLClient):
    """The same documents, named by their manifest id (Relay's and the spec's documentId)."""

    def _request(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        return {"documentId": f"sha256:{_IDS[query]}", "variables": variables}


# --- REST ------------------------------------------------------------------------------------


class RestClient(HttpClient):
    async def _messages(self, conversation_id: str, before: str | None) -> dict[str, Any]:
        query = f"?last={MESSAGE_PAGE}" + ("" if before is None else f"&before={before}")
        page: dict[str, Any] = await self._json(
            "GET", f"/rest/conversations/{conversation_id}/messages{query}"
        )
        return page

    async def prepare(self, dataset: Dataset) -> None:
        page = await self._messages(dataset.focus_id, None)
        self.cursors[dataset.focus_id] = page["startCursor"]

    async def perform(self, action: Action) -> int:
        cid = action.conversation_id
        if action.kind == "home":
            data = await self._json("GET", f"/rest/conversations?first={HOME_PAGE}")
            return len(data["conversations"])
        if action.kind in ("open", "older"):
            before = self.cursors.get(cid) if action.kind == "older" else None
            return len((await self._messages(cid, before))["messages"])
        if action.kind in ("send", "save"):
            messages: list[dict[str, Any]] = [
                {"id": action.message_ids[0], "role": "user", "content": USER_TEXT}
            ]
            if action.kind == "save":
                messages.append(
                    {
                        "id": action.message_ids[1],
                        "role": "assistant",
                        "content": ASSISTANT_TEXT,
                        "modelId": "bench-model-1",
                    }
                )
            data = await self._json(
                "POST", f"/rest/conversations/{cid}/messages", {"messages": messages}
            )
            return len(data["messages"])
        if action.kind == "rename":
            await self._json("PATCH", f"/rest/conversations/{cid}", {"title": action.title})
            return 1
        await self._json("DELETE", f"/rest/conversations/{cid}")
        return 1


# --- direct ----------------------------------------------------------------------------------


class DirectClient:
    """The floor: the same storage calls in this process, no HTTP, no JSON, no auth."""

    def __init__(self, table: ChatTable, user_id: str) -> None:
        self._table = table
        self._user_id = user_id
        self.cursors: dict[str, MessagePosition] = {}

    async def prepare(self, dataset: Dataset) -> None:
        opened = await operations.open_conversation(
            self._table, user_id=self._user_id, conversation_id=dataset.focus_id, last=MESSAGE_PAGE
        )
        if opened.page.items:
            self.cursors[dataset.focus_id] = opened.page.items[0].position

    async def perform(self, action: Action) -> int:
        table, user_id, cid = self._table, self._user_id, action.conversation_id
        if action.kind == "home":
            screen = await operations.home_screen(table, user_id=user_id, first=HOME_PAGE)
            return len(screen.page.items)
        if action.kind in ("open", "older"):
            before = self.cursors.get(cid) if action.kind == "older" else None
            opened = await operations.open_conversation(
                table, user_id=user_id, conversation_id=cid, last=MESSAGE_PAGE, before=before
            )
            if opened.conversation is None:
                raise BenchFailure(f"conversation {cid} not found")
            return len(opened.page.items)
        if action.kind in ("send", "save"):
            new = [NewMessage(id=action.message_ids[0], role="user", content=USER_TEXT)]
            if action.kind == "save":
                new.append(
                    NewMessage(
                        id=action.message_ids[1],
                        role="assistant",
                        content=ASSISTANT_TEXT,
                        model_id="bench-model-1",
                    )
                )
            added = await operations.add_messages(
                table, user_id=user_id, conversation_id=cid, new=new
            )
            return len(added.messages)
        if action.kind == "rename":
            await operations.rename_conversation(
                table, user_id=user_id, conversation_id=cid, title=action.title
            )
            return 1
        await operations.delete_conversation(table, user_id=user_id, conversation_id=cid)
        return 1
