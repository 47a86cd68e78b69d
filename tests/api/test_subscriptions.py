"""GraphQL over a real WebSocket to a real server (uvicorn on 127.0.0.1): Subscription.changes,
and queries and mutations on the same socket.

Writes go through the HTTP endpoint as a device's would, or over the socket; the client is the
`websockets` package speaking graphql-transport-ws (and the legacy graphql-ws).

No test here decides by how long something took: what must not happen is shown by a later
event arriving first (a marker write, a pong), and a token expires when the test says
(HeldMoments). Waits are bounded only so that a broken server fails a test, never hangs it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import re
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any, Final

import httpx
import pytest
import pytest_asyncio
from graphql import DocumentNode, GraphQLSchema
from graphql.language import parser
from graphql.validation import ValidationContext

from graphql_api.gql.trusted import from_operations
from graphql_api.settings import ObservabilitySettings, SubscriptionSettings
from tests.api.harness import (
    Api,
    add_messages,
    create_conversation,
    new_user,
    sync_token,
)
from tests.apps import AppFactory
from tests.clock import HeldMoments, MovableClock
from tests.observed import captured_logs
from tests.sockets import (
    LEGACY_WS,
    RECEIVE_SECONDS,
    TRANSPORT_WS,
    Closed,
    GraphQLSocket,
    LiveApi,
)
from tests.tokens import FakeUserPool, claims_of, tamper_payload, tamper_signature

CHANGES = """
subscription Changes($since: String, $conversationId: ID) {
  changes(since: $since, conversationId: $conversationId) {
    version kind conversationId syncToken
    conversation { id title }
    messages { content }
  }
}
"""
RENAME = """
mutation Rename($id: ID!, $title: String!) {
  renameConversation(input: {id: $id, title: $title}) { conversation { id } }
}
"""
CREATE = """
mutation Create($title: String!) {
  createConversation(input: {title: $title}) { conversation { id title } }
}
"""
DELETE = (
    "mutation Delete($id: ID!) { deleteConversation(input: {id: $id}) { deletedConversationId } }"
)
POLL_SECONDS = 2.0
PER_CONNECTION = 3
CONNECTIONS_PER_USER = 3
INIT_TIMEOUT_SECONDS = 1.0
MAX_MESSAGE_BYTES = 8 * 1024


def subscription_settings() -> SubscriptionSettings:
    return SubscriptionSettings(
        poll_seconds=POLL_SECONDS,
        per_connection=PER_CONNECTION,
        connections_per_user=CONNECTIONS_PER_USER,
        init_timeout_seconds=INIT_TIMEOUT_SECONDS,
        max_message_bytes=MAX_MESSAGE_BYTES,
    )


# A token's connection ends when the token does, not 30 s later.
NO_LEEWAY: Final = {"leeway_seconds": 0}


@pytest_asyncio.fixture(scope="module")
async def live(make_api: AppFactory) -> AsyncIterator[LiveApi]:
    async with make_api.live(subscriptions=subscription_settings(), cognito=NO_LEEWAY) as running:
        yield running


@pytest_asyncio.fixture
async def cached_live(make_api: AppFactory) -> AsyncIterator[LiveApi]:
    """`live` with the document cache on, whatever `make test-general` chooses: for the tests
    of the cache itself."""
    async with make_api.live(
        subscriptions=subscription_settings(),
        cognito=NO_LEEWAY,
        graphql_document_cache_size=512,
    ) as running:
        yield running


async def subscribed(socket: GraphQLSocket, live: LiveApi, user: str, **variables: Any) -> str:
    """Subscribed to `user`'s changes from now on: from `since`, read first unless given (see
    sync_token for why a test must not subscribe without one and then write)."""
    await socket.init(live.api.token(user))
    if "since" not in variables:
        variables["since"] = await sync_token(live.api, user)
    return await socket.subscribe(CHANGES, variables)


async def changes_of(socket: GraphQLSocket, sub: str, count: int) -> list[dict[str, Any]]:
    return [(await socket.next_data(sub))["changes"] for _ in range(count)]


# --- delivery -------------------------------------------------------------------------------


async def test_a_write_over_http_reaches_the_subscriber(live: LiveApi) -> None:
    user = new_user()
    async with live.socket() as socket:
        sub = await subscribed(socket, live, user)
        created = await create_conversation(live.api, user, "Hello")
        await add_messages(live.api, user, created["id"], ["question", "answer"])
        await live.api.data(DELETE, {"id": created["id"]}, user=user)

        create, add, delete = await changes_of(socket, sub, 3)

    assert [change["version"] for change in (create, add, delete)] == [1, 2, 3]
    assert create["kind"] == "CONVERSATION_CREATED"
    assert create["conversationId"] == created["id"]
    # Read when delivered: by then the conversation may already be gone.
    assert add["kind"] == "MESSAGES_ADDED"
    assert delete["kind"] == "CONVERSATION_DELETED"
    assert delete["conversation"] is None


async def test_messages_added_are_delivered_with_their_content(live: LiveApi) -> None:
    user = new_user()
    created = await create_conversation(live.api, user, "Kept")
    async with live.socket() as socket:
        sub = await subscribed(socket, live, user)
        await add_messages(live.api, user, created["id"], ["question", "answer"])
        (added,) = await changes_of(socket, sub, 1)
    assert added["kind"] == "MESSAGES_ADDED"
    assert added["version"] == 2
    assert added["conversation"] == {"id": created["id"], "title": "Kept"}
    assert [message["content"] for message in added["messages"]] == ["question", "answer"]


async def test_resubscribing_with_since_delivers_exactly_the_missed_writes_then_live(
    live: LiveApi,
) -> None:
    user = new_user()
    conversation = await create_conversation(live.api, user, "Before")
    async with live.socket() as socket:
        sub = await subscribed(socket, live, user)
        await live.api.data(RENAME, {"id": conversation["id"], "title": "Seen"}, user=user)
        (seen,) = await changes_of(socket, sub, 1)
    # Offline: five writes happen elsewhere.
    for n in range(5):
        await live.api.data(RENAME, {"id": conversation["id"], "title": f"t{n}"}, user=user)

    async with live.socket() as socket:
        sub = await subscribed(socket, live, user, since=seen["syncToken"])
        missed = await changes_of(socket, sub, 5)
        await live.api.data(RENAME, {"id": conversation["id"], "title": "Live"}, user=user)
        (live_change,) = await changes_of(socket, sub, 1)
        # A repeat of anything delivered would come before this marker.
        await live.api.data(RENAME, {"id": conversation["id"], "title": "Marker"}, user=user)
        (marker,) = await changes_of(socket, sub, 1)

    assert seen["version"] == 2
    assert [change["version"] for change in missed] == [3, 4, 5, 6, 7]
    assert (live_change["version"], marker["version"]) == (8, 9)
    # Each change resumes from just after itself.
    assert len({change["syncToken"] for change in [*missed, live_change]}) == 6


async def test_without_since_only_what_commits_after_subscribing(live: LiveApi) -> None:
    user = new_user()
    for n in range(3):
        await create_conversation(live.api, user, f"old {n}")
    async with live.socket() as socket:
        await socket.init(live.api.token(user))
        sub = await socket.subscribe(CHANGES)
        # Nothing says when the server has fixed its starting point, and a write before that
        # is history: write until one is news. The first delivered must be one of these.
        for attempt in range(10):
            await create_conversation(live.api, user, f"new {attempt}")
            with contextlib.suppress(TimeoutError):
                change = (await socket.next_data(sub, seconds=2.0))["changes"]
                break
        else:
            raise AssertionError("no write after subscribing was ever delivered")
    # Not the old three: the first news is one of these writes (a late delivery may be an
    # earlier attempt's), with the version it committed at.
    title = change["conversation"]["title"]
    assert title in {f"new {n}" for n in range(attempt + 1)}
    assert change["version"] == 4 + int(title.removeprefix("new "))


async def test_a_conversation_id_shows_only_that_conversations_changes(live: LiveApi) -> None:
    user = new_user()
    watched = await create_conversation(live.api, user, "watched")
    other = await create_conversation(live.api, user, "other")
    async with live.socket() as socket:
        sub = await subscribed(socket, live, user, conversationId=watched["id"])
        for title in ("a", "b"):
            await live.api.data(RENAME, {"id": other["id"], "title": title}, user=user)
            await live.api.data(RENAME, {"id": watched["id"], "title": title}, user=user)
        first, second = await changes_of(socket, sub, 2)
        await live.api.data(RENAME, {"id": other["id"], "title": "hidden"}, user=user)
        await live.api.data(RENAME, {"id": watched["id"], "title": "marker"}, user=user)
        (marker,) = await changes_of(socket, sub, 1)
    assert {first["conversationId"], second["conversationId"]} == {watched["id"]}
    # The other conversation's changes moved the version on all the same.
    assert (first["version"], second["version"], marker["version"]) == (4, 6, 8)


async def test_each_delivered_change_reads_the_conversation_afresh(live: LiveApi) -> None:
    user = new_user()
    conversation = await create_conversation(live.api, user, "first")
    async with live.socket() as socket:
        sub = await subscribed(socket, live, user)
        titles = []
        for title in ("second", "third", "fourth"):
            await live.api.data(RENAME, {"id": conversation["id"], "title": title}, user=user)
            (change,) = await changes_of(socket, sub, 1)
            titles.append(change["conversation"]["title"])
    assert titles == ["second", "third", "fourth"]


async def test_two_subscriptions_on_one_connection_each_get_every_change(live: LiveApi) -> None:
    user = new_user()
    async with live.socket() as socket:
        first = await subscribed(socket, live, user)
        second = await socket.subscribe(CHANGES, {"since": await sync_token(live.api, user)})
        await create_conversation(live.api, user, "both")
        got: dict[str, int] = {}
        for _ in range(2):
            message = await socket.receive()
            got[message["id"]] = message["payload"]["data"]["changes"]["version"]
    assert got == {first: 1, second: 1}


async def test_another_users_writes_never_reach_a_subscriber(live: LiveApi) -> None:
    alice, bob = new_user(), new_user()
    async with live.socket() as socket:
        sub = await subscribed(socket, live, alice)
        await create_conversation(live.api, bob, "bob's")
        # Announced after bob's: had bob's reached alice, it would have come first.
        await create_conversation(live.api, alice, "alice's")
        (change,) = await changes_of(socket, sub, 1)
    assert (change["version"], change["conversation"]["title"]) == (1, "alice's")


async def test_a_since_of_another_user_or_tampered_ends_the_subscription_as_bad_input(
    live: LiveApi,
) -> None:
    alice, bob = new_user(), new_user()
    bobs = await sync_token(live.api, bob)
    for since in (bobs, bobs[:-2] + ("AA" if not bobs.endswith("AA") else "BB"), "junk"):
        async with live.socket() as socket:
            sub = await subscribed(socket, live, alice, since=since)
            message = await socket.receive()
            assert (message["id"], message["type"]) == (sub, "next")
            (error,) = message["payload"]["errors"]
            assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "since"}
            assert await socket.receive() == {"id": sub, "type": "complete"}


async def test_a_subscription_catches_up_through_the_log_after_a_silent_gap(
    live: LiveApi, make_api: AppFactory
) -> None:
    """Writes this process never announced (another instance's, with no broadcast between
    them) reach the subscriber by its poll of the log."""
    user = new_user()
    async with live.socket() as socket:
        sub = await subscribed(socket, live, user)
        # Written behind the app's back: the same table, no announcement.
        async with make_api.live(subscriptions=subscription_settings(), cognito=NO_LEEWAY) as other:
            await create_conversation(other.api, user, "elsewhere")
            # Nothing announces it to this process: only the poll of the log can deliver it.
            (change,) = await changes_of(socket, sub, 1)
    assert change["conversation"]["title"] == "elsewhere"


async def test_thirty_concurrent_adds_through_two_instances_are_thirty_contiguous_changes(
    live: LiveApi, make_api: AppFactory
) -> None:
    """Two devices, each writing through its own instance of the service on one table: the
    version race between processes (no in-process queue helps there) still gives versions
    1..N with no gap or repeat and each message once, and a subscriber on one instance gets
    all of them in order (the other instance's through the log)."""
    user = new_user()
    conversations = [(await create_conversation(live.api, user, f"c{n}"))["id"] for n in range(3)]
    add = """
    mutation Add($input: AddMessageInput!) { addMessage(input: $input) { message { id } } }
    """

    async def device(http: httpx.AsyncClient, api: Api, offset: int) -> None:
        for n in range(offset, 30, 2):
            variables = {
                "input": {
                    "conversationId": conversations[n % 3],
                    "role": "USER",
                    "content": f"m{n}",
                }
            }
            body = {"query": add, "variables": variables}
            response = await http.post("/graphql", json=body, headers=api.headers(user))
            assert "errors" not in response.json(), response.text

    async with (
        make_api.live(subscriptions=subscription_settings(), cognito=NO_LEEWAY) as other,
        live.socket() as socket,
    ):
        sub = await subscribed(socket, live, user)
        async with httpx.AsyncClient(base_url=f"http://{other.address}") as second_http:
            await asyncio.gather(
                device(live.api.http, live.api, 0), device(second_http, other.api, 1)
            )
        delivered = await changes_of(socket, sub, 30)
        await create_conversation(live.api, user, "marker")
        (marker,) = await changes_of(socket, sub, 1)

    assert [change["version"] for change in delivered] == list(range(4, 34))
    # No repeat came between the thirty and the marker.
    assert marker["version"] == 34
    assert {change["kind"] for change in delivered} == {"MESSAGES_ADDED"}
    contents = [message["content"] for change in delivered for message in change["messages"]]
    assert sorted(contents) == sorted(f"m{n}" for n in range(30))


# --- authentication -------------------------------------------------------------------------


def refused_payloads(pool: FakeUserPool, other_pool: FakeUserPool) -> dict[str, Any]:
    user = new_user()
    good = pool.minter.access_token(sub=user)
    return {
        "no payload": None,
        "no Authorization": {},
        "not a string": {"Authorization": 42},
        "not bearer": {"Authorization": f"Basic {good}"},
        "malformed": {"Authorization": "Bearer not-a-token"},
        "bad signature": {"Authorization": f"Bearer {tamper_signature(good)}"},
        "changed claims": {"Authorization": f"Bearer {tamper_payload(good, {'sub': 'bob'})}"},
        "another pool": {"Authorization": f"Bearer {other_pool.minter.access_token(sub=user)}"},
        "expired": {"Authorization": f"Bearer {pool.minter.access_token(sub=user, lifetime=-5)}"},
        "an id token": {"Authorization": f"Bearer {pool.minter.id_token(sub=user)}"},
    }


@pytest.fixture(scope="module")
def other_pool() -> Iterator[FakeUserPool]:
    with FakeUserPool(pool_id="us-east-1_OtherPool9") as pool:
        yield pool


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", LEGACY_WS])
async def test_a_refused_token_closes_the_socket_4403_with_nothing_sent(
    live: LiveApi, user_pool: FakeUserPool, other_pool: FakeUserPool, protocol: str
) -> None:
    for name, payload in refused_payloads(user_pool, other_pool).items():
        async with live.socket(protocol=protocol) as socket:
            message: dict[str, Any] = {"type": "connection_init"}
            if payload is not None:
                message["payload"] = payload
            await socket.send(message)
            closed = await socket.closed()
            assert (closed.code, closed.received) == (4403, []), name


async def test_subscribing_before_connection_init_is_refused(live: LiveApi) -> None:
    async with live.socket() as socket:
        await socket.subscribe(CHANGES)
        closed = await socket.closed()
    assert (closed.code, closed.received) == (4401, [])


async def test_the_server_closes_the_socket_4403_when_the_token_expires(
    make_api: AppFactory, user_pool: FakeUserPool
) -> None:
    """The connection waits for its token's exp (a moment this test lets come when it wants):
    until then it serves, then it closes with 4403 and nothing else."""
    moments = HeldMoments()
    user = new_user()
    token = user_pool.minter.access_token(sub=user)
    async with (
        make_api.live(
            subscriptions=subscription_settings(), cognito=NO_LEEWAY, wait_until=moments
        ) as live,
        live.socket() as socket,
    ):
        await socket.init(token)
        await moments.waited_for()
        sub = await socket.subscribe(CHANGES, {"since": await sync_token(live.api, user)})
        await create_conversation(live.api, user, "while valid")
        (change,) = await changes_of(socket, sub, 1)
        await socket.handled()
        moments.arrive()
        closed = await socket.closed()
    assert moments.awaited == [claims_of(token)["exp"]]
    assert change["version"] == 1
    assert (closed.code, closed.reason) == (4403, "Token expired")


# --- limits and refusals --------------------------------------------------------------------


async def test_a_connection_runs_at_most_its_limit_of_subscriptions(live: LiveApi) -> None:
    user = new_user()
    async with live.socket() as socket:
        await socket.init(live.api.token(user))
        since = {"since": await sync_token(live.api, user)}
        subs = [await socket.subscribe(CHANGES, since) for _ in range(PER_CONNECTION)]
        over = await socket.subscribe(CHANGES, since)
        refused = await socket.receive()
        assert (refused["id"], refused["type"]) == (over, "error")
        assert refused["payload"][0]["message"] == "Subscription limit reached"
        # Ending one makes room for another.
        await socket.complete(subs[0])
        await socket.handled()
        again = await socket.subscribe(CHANGES, since)
        await create_conversation(live.api, user, "counted")
        ids = {(await socket.receive())["id"] for _ in range(PER_CONNECTION)}
    assert ids == {*subs[1:], again}


async def test_a_user_holds_at_most_the_limit_of_connections_per_process(live: LiveApi) -> None:
    user = new_user()
    async with (
        live.socket() as first,
        live.socket() as second,
        live.socket() as third,
    ):
        for socket in (first, second, third):
            await socket.init(live.api.token(user))
        async with live.socket() as fourth:
            await fourth.send(
                {
                    "type": "connection_init",
                    "payload": {"Authorization": f"Bearer {live.api.token(user)}"},
                }
            )
            closed = await fourth.closed()
            assert (closed.code, closed.received) == (4429, [])
        # Another user is not affected.
        async with live.socket() as others:
            await others.init(live.api.token(new_user()))
    # Closed connections free their places.
    for _ in range(50):
        async with live.socket() as socket:
            try:
                await socket.init(live.api.token(user))
            except Closed:
                await asyncio.sleep(0.1)
                continue
            break
    else:
        raise AssertionError("the user's places were never freed")


async def test_connection_init_must_come_within_the_timeout(live: LiveApi) -> None:
    async with live.socket() as socket:
        closed = await socket.closed(seconds=INIT_TIMEOUT_SECONDS + RECEIVE_SECONDS)
    assert (closed.code, closed.received) == (4408, [])


async def test_an_oversized_message_closes_the_socket(live: LiveApi) -> None:
    async with live.socket() as socket:
        await socket.init(live.api.token(new_user()))
        await socket.subscribe("subscription { changes { version } }" + " " * MAX_MESSAGE_BYTES)
        closed = await socket.closed()
    assert closed.code == 1009


# --- queries and mutations on the socket ------------------------------------------------------

OPEN = "query Open($id: ID!) { conversation(id: $id) { id title } }"


async def test_a_query_gets_one_next_then_complete(live: LiveApi) -> None:
    user = new_user()
    created = await create_conversation(live.api, user, "Read over the socket")
    async with live.socket() as socket:
        await socket.init(live.api.token(user))
        payload = await socket.run(OPEN, {"id": created["id"]})
    assert payload == {"data": {"conversation": {"id": created["id"], "title": created["title"]}}}


async def test_a_mutation_over_the_socket_is_seen_over_http_and_by_subscribers(
    live: LiveApi,
) -> None:
    user = new_user()
    async with live.socket() as socket:
        await socket.init(live.api.token(user))
        sub = await socket.subscribe(CHANGES, {"since": await sync_token(live.api, user)})
        created = await socket.run(CREATE, {"title": "Written over the socket"})
        (change,) = await changes_of(socket, sub, 1)
    conversation = created["data"]["createConversation"]["conversation"]
    read = await live.api.data(OPEN, {"id": conversation["id"]}, user=user)
    assert read["conversation"]["title"] == "Written over the socket"
    assert change["kind"] == "CONVERSATION_CREATED"
    assert change["conversationId"] == conversation["id"]


async def test_each_operation_reads_afresh_not_through_the_connections_loaders(
    live: LiveApi,
) -> None:
    user = new_user()
    created = await create_conversation(live.api, user, "before")
    async with live.socket() as socket:
        await socket.init(live.api.token(user))
        before = await socket.run(OPEN, {"id": created["id"]})
        await live.api.data(RENAME, {"id": created["id"], "title": "after"}, user=user)
        after = await socket.run(OPEN, {"id": created["id"]})
    assert before["data"]["conversation"]["title"] == "before"
    assert after["data"]["conversation"]["title"] == "after"


async def test_a_refused_request_is_an_error_message_a_field_error_a_next(live: LiveApi) -> None:
    user = new_user()
    async with live.socket() as socket:
        await socket.init(live.api.token(user))
        invalid = await socket.refused("{ tags { nope } }")
        uncoerced = await socket.refused(RENAME, {"id": str(uuid.uuid4()), "title": 5})
        missing = await socket.run(RENAME, {"id": str(uuid.uuid4()), "title": "x"})
        # The socket goes on serving.
        tags = await socket.run("{ tags { tag } }")
    assert [error["extensions"] for error in invalid] == [{"code": "BAD_USER_INPUT"}]
    assert "nope" in invalid[0]["message"]
    assert [error["extensions"] for error in uncoerced] == [{"code": "BAD_USER_INPUT"}]
    assert "$title" in uncoerced[0]["message"]
    assert missing["data"] is None
    assert [error["extensions"] for error in missing["errors"]] == [{"code": "NOT_FOUND"}]
    assert tags == {"data": {"tags": []}}


async def test_another_users_conversation_is_not_found_over_the_socket(live: LiveApi) -> None:
    alice, bob = new_user(), new_user()
    bobs = await create_conversation(live.api, bob, "bob's")
    async with live.socket() as socket:
        await socket.init(live.api.token(alice))
        read = await socket.run(OPEN, {"id": bobs["id"]})
        renamed = await socket.run(RENAME, {"id": bobs["id"], "title": "alice was here"})
    assert read == {"data": {"conversation": None}}
    assert [error["extensions"] for error in renamed["errors"]] == [{"code": "NOT_FOUND"}]
    still = await live.api.data(OPEN, {"id": bobs["id"]}, user=bob)
    assert still["conversation"]["title"] == "bob's"


async def test_each_operation_on_the_socket_writes_a_request_line(live: LiveApi) -> None:
    user = new_user()
    created = await create_conversation(live.api, user, "observed")
    async with live.socket() as socket:
        await socket.init(live.api.token(user))
        with captured_logs(ObservabilitySettings()) as logs:
            await socket.run(OPEN, {"id": created["id"]})
            await socket.run(RENAME, {"id": str(uuid.uuid4()), "title": "x"})
            await socket.refused("{ nope }")
    read, rename, invalid = [line for line in logs.access_lines() if line.get("protocol")]
    for line in (read, rename, invalid):
        assert (line["protocol"], line["route"], line["status"]) == (TRANSPORT_WS, "/graphql", None)
        assert re.fullmatch(r"[0-9a-f]{16}", line["user_hash"])
    assert user not in logs.text
    assert (read["operation_name"], read["operation_type"], read["outcome"]) == (
        "Open",
        "query",
        "ok",
    )
    assert read["error_codes"] == []
    assert read["dynamodb_requests"] >= 1
    assert (rename["operation_type"], rename["outcome"], rename["error_codes"]) == (
        "mutation",
        "client_error",
        ["NOT_FOUND"],
    )
    assert rename["dynamodb_requests"] >= 1
    # Refused before an operation was known: named by its route, as over HTTP.
    assert (invalid["operation"], invalid["operation_type"]) == ("WS /graphql", None)
    assert invalid["error_codes"] == ["BAD_USER_INPUT"]


# --- one pipeline: parsed, validated and cached once, whatever the transport --------------------


@dataclasses.dataclass
class DocumentWork:
    """How many times each document text was parsed and validated, by anyone in the process."""

    parsed: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    validated: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)

    def of(self, document: str) -> tuple[int, int]:
        return self.parsed[document], self.validated[document]


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> DocumentWork:
    """Counts graphql-core's own work: each parse builds a Parser (parser.parse looks it up in
    its module), each validation a ValidationContext (validate.validate likewise). The classes
    are the real ones, subclassed only to count."""
    counted = DocumentWork()

    class CountingParser(parser.Parser):
        def parse_document(self) -> DocumentNode:
            counted.parsed[self._lexer.source.body] += 1
            return super().parse_document()

    class CountingContext(ValidationContext):
        def __init__(self, schema: GraphQLSchema, ast: DocumentNode, *args: Any) -> None:
            counted.validated[ast.loc.source.body if ast.loc else ""] += 1
            super().__init__(schema, ast, *args)

    monkeypatch.setattr(parser, "Parser", CountingParser)
    # The module, not the function of the same name its package exports.
    validation = sys.modules["graphql.validation.validate"]
    monkeypatch.setattr(validation, "ValidationContext", CountingContext)
    return counted


def unseen(document: str) -> str:
    """`document` as text no cache has seen (a comment changes the text, not the operation)."""
    return f"{document}\n# {uuid.uuid4()}\n"


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_subscription_is_parsed_and_validated_once_then_served_from_the_cache(
    cached_live: LiveApi, work: DocumentWork, protocol: str
) -> None:
    user = new_user()
    since = await sync_token(cached_live.api, user)
    await create_conversation(cached_live.api, user, "replayed")
    document = unseen(CHANGES)
    async with cached_live.socket(protocol=protocol) as socket:
        await socket.init(cached_live.api.token(user))
        first = await socket.subscribe(document, {"since": since})
        replayed = [(await socket.next_data(first))["changes"]]
        after_first = work.of(document)
        second = await socket.subscribe(document, {"since": since})
        replayed.append((await socket.next_data(second))["changes"])
    assert [change["conversation"]["title"] for change in replayed] == ["replayed"] * 2
    assert after_first == (1, 1)
    assert work.of(document) == (1, 1)


async def test_queries_and_mutations_share_one_cache_across_http_and_the_socket(
    cached_live: LiveApi, work: DocumentWork
) -> None:
    user = new_user()
    query, mutation = unseen("{ tags { tag } }"), unseen(CREATE)
    async with cached_live.socket() as socket:
        await socket.init(cached_live.api.token(user))
        await cached_live.api.data(query, user=user)
        over_socket = await socket.run(query)
        await socket.run(mutation, {"title": "first over the socket"})
        await cached_live.api.data(mutation, {"title": "then over HTTP"}, user=user)
    assert over_socket == {"data": {"tags": []}}
    assert (work.of(query), work.of(mutation)) == ((1, 1), (1, 1))


@pytest.mark.parametrize(
    ("messages", "code", "reason"),
    [
        (
            [{"id": "twice", "type": "subscribe", "payload": {"query": CHANGES}}] * 2,
            4409,
            "Subscriber for twice already exists",
        ),
        ([{"type": "nope"}], 4400, "Unknown message type: nope"),
        (
            [{"id": "1", "type": "subscribe", "payload": {"query": 42}}],
            4400,
            "The message's payload is not a GraphQL request",
        ),
    ],
    ids=["duplicate id", "unknown type", "not a request"],
)
async def test_a_message_the_protocol_does_not_allow_closes_the_socket(
    live: LiveApi, messages: list[dict[str, Any]], code: int, reason: str
) -> None:
    async with live.socket() as socket:
        await socket.init(live.api.token(new_user()))
        for message in messages:
            await socket.send(message)
        closed = await socket.closed()
    assert (closed.code, closed.reason) == (code, reason)


async def test_trusted_documents_only_holds_on_the_socket_too(make_api: AppFactory) -> None:
    """With TRUSTED_DOCUMENTS_ONLY, the socket runs the manifest's subscription and refuses
    any other document as HTTP does: the setting cannot be bypassed over WebSocket."""
    # As a client sends them: the manifest's text of each.
    bodies = {document.name: document.body for document in from_operations()}
    live_changes, create = bodies["LiveChanges"], bodies["CreateConversation"]
    # The manifest's own way to a syncToken: nothing else runs on this server.
    sync = bodies["SyncChanges"]
    user = new_user()
    async with (
        make_api.live(subscriptions=subscription_settings(), trusted_documents_only=True) as live,
        live.socket() as socket,
    ):
        await socket.init(live.api.token(user))
        ad_hoc = await socket.subscribe(CHANGES)
        refused = await socket.receive()
        assert (refused["id"], refused["type"]) == (ad_hoc, "error")
        assert refused["payload"][0]["extensions"] == {"code": "QUERY_NOT_IN_SAFELIST"}

        since = (await live.api.data(sync, {}, user=user))["changes"]["syncToken"]
        sub = await socket.subscribe(live_changes, {"since": since})
        await live.api.data(create, {"title": "Trusted"}, user=user)
        change = (await socket.next_data(sub))["changes"]
        assert (change["kind"], change["conversation"]["title"]) == (
            "CONVERSATION_CREATED",
            "Trusted",
        )


@pytest.mark.parametrize(
    ("document", "message", "code"),
    [
        (
            "subscription { changes { conversation { messages { edges { node { conversation "
            "{ messages { edges { node { id } } } } } } } } } }",
            "query is nested",
            "MAX_DEPTH_LIMIT",
        ),
        (
            "subscription { " + " ".join(f"a{n}: changes {{ version }}" for n in range(16)) + " }",
            "aliases",
            "MAX_ALIASES_LIMIT",
        ),
        ("subscription { changes { nope } }", "Cannot query field 'nope'", "BAD_USER_INPUT"),
        ("subscription { changes { version }", "Syntax Error", "BAD_USER_INPUT"),
    ],
)
async def test_subscriptions_are_held_to_the_http_documents_limits(
    live: LiveApi, document: str, message: str, code: str
) -> None:
    async with live.socket() as socket:
        await socket.init(live.api.token(new_user()))
        sub = await socket.subscribe(document)
        refused = await socket.receive()
    assert (refused["id"], refused["type"]) == (sub, "error")
    (error,) = refused["payload"]
    assert message in error["message"]
    assert error["extensions"] == {"code": code}


# --- the legacy protocol --------------------------------------------------------------------


async def test_the_legacy_graphql_ws_protocol_delivers_changes(live: LiveApi) -> None:
    user = new_user()
    async with live.socket(protocol=LEGACY_WS) as socket:
        await socket.init(live.api.token(user))
        sub = await socket.subscribe(CHANGES, {"since": await sync_token(live.api, user)})
        await create_conversation(live.api, user, "legacy")
        data = await socket.next_data(sub)
    assert data["changes"]["conversation"]["title"] == "legacy"


async def test_the_legacy_protocol_runs_queries_and_mutations_and_refuses_as_the_new_one(
    live: LiveApi,
) -> None:
    """graphql-ws's `start` may carry any operation: one `data`, then `complete`. Its `error`
    carries one error."""
    user = new_user()
    async with live.socket(protocol=LEGACY_WS) as socket:
        await socket.init(live.api.token(user))
        created = await socket.run(CREATE, {"title": "legacy write"})
        conversation = created["data"]["createConversation"]["conversation"]
        read = await socket.run(OPEN, {"id": conversation["id"]})
        invalid = await socket.refused("{ tags { nope } }")
        await socket.send({"id": "malformed", "type": "start", "payload": {"query": 42}})
        malformed = await socket.receive()
    assert read == {"data": {"conversation": {"id": conversation["id"], "title": "legacy write"}}}
    assert invalid["extensions"] == {"code": "BAD_USER_INPUT"}
    assert (malformed["id"], malformed["type"]) == ("malformed", "error")
    assert malformed["payload"]["extensions"] == {"code": "BAD_REQUEST"}


# --- resync and counting, on an app of their own --------------------------------------------


async def test_a_since_older_than_the_retention_ends_with_resync_required_and_counts(
    make_api: AppFactory,
) -> None:
    clock = MovableClock()
    async with make_api.live(
        clock=clock,
        subscriptions=subscription_settings(),
        observability=ObservabilitySettings(metrics_enabled=True),
    ) as live:
        settings = live.api.services.settings
        user = new_user()
        stale = await sync_token(live.api, user)
        await create_conversation(live.api, user)
        clock.advance(settings.retention.change_retention + timedelta(hours=1))
        async with live.socket() as socket:
            sub = await subscribed(socket, live, user, since=stale)
            message = await socket.receive()
            complete = await socket.receive()
            # Reload, then go on from a token handed out now: live again.
            fresh = await sync_token(live.api, user)
            sub = await socket.subscribe(CHANGES, {"since": fresh})
            await _wait_for_gauge(live, 1)
            await create_conversation(live.api, user, "after the reload")
            (change,) = await changes_of(socket, sub, 1)
            await socket.complete(sub)
            await _wait_for_gauge(live, 0)
    assert message["type"] == "next"
    assert message["payload"]["data"] is None
    (error,) = message["payload"]["errors"]
    assert error["extensions"] == {"code": "RESYNC_REQUIRED"}
    assert "reload" in error["message"]
    assert complete["type"] == "complete"
    assert change["version"] == 2


async def _wait_for_gauge(live: LiveApi, expected: float) -> None:
    for _ in range(100):
        text = (await live.api.http.get("/metrics")).text
        for line in text.splitlines():
            if (
                line.startswith("chat_api_subscriptions_open ")
                and float(line.split()[1]) == expected
            ):
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"chat_api_subscriptions_open never read {expected}")
