"""Faults a real engine will not produce on demand, injected by a proxy in front of it.

Throttling, HTTP 500 and 503, responses slower than the read timeout, connection resets, and
UnprocessedKeys/UnprocessedItems: calls retry with backoff within a bounded time, then fail as
UnavailableError, never as a botocore type; a failed write leaves no partial state; once the
fault clears, the same client succeeds again.

Nothing here reads a stopwatch. A bounded time is shown by what bounds it: the attempts the
proxy counted (each ends at the read timeout at worst), or the deadline's own error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeAlias

import pytest
import pytest_asyncio
from botocore.exceptions import ClientError

from graphql_api.errors import ChatError, StorageRejectedError, UnavailableError, ValidationError
from graphql_api.storage.client import ChatTable, DynamoDBClient, client_config, open_client
from graphql_api.storage.conversations import (
    count_conversations,
    delete_conversation,
    get_conversation,
    get_conversations,
    list_conversations,
)
from graphql_api.storage.messages import add_messages
from graphql_api.storage.records import ConversationRecord
from graphql_api.storage.threads import list_messages
from tests import general_paths
from tests.conftest import credentials_for
from tests.factories import (
    a_conversation,
    conversation_items,
    new_id,
    new_message,
    own_table,
    partition_size,
    seed_messages,
    stored_messages,
)
from tests.faults import ANY, FaultProxy


@pytest_asyncio.fixture(scope="module")
async def table_name(dynamodb_client: DynamoDBClient) -> AsyncIterator[str]:
    """This module's own table, so its transactions stay fast (see factories.own_table)."""
    async with own_table(dynamodb_client, purpose="faults") as name:
        yield name


READ_TIMEOUT = 0.5
# One retry inside botocore is enough to show a passing fault is retried, and keeps lasting
# faults quick: botocore sleeps up to 2**attempt seconds between its attempts.
BOTOCORE_ATTEMPTS = 2
# ChatTable.deadline bounds every call, botocore's retries included. Here it sits far above
# the ~2 s the attempts can take, so on a loaded machine too the attempt limits end these
# calls and the counts below are exact; the deadline has a test of its own.
DEADLINE = 10.0
# Far above DEADLINE: only a call or a wait that never ends can reach it.
HANG_GUARD = DEADLINE * 3

Script: TypeAlias = Callable[[FaultProxy, str], None]

FAULTS: dict[str, Script] = {
    "throttling": lambda proxy, op: proxy.throttle(op, times=None),
    "throughput exceeded": lambda proxy, op: proxy.fail(op, times=None),
    "http 500": lambda proxy, op: proxy.server_error(op, status=500, times=None),
    "http 503": lambda proxy, op: proxy.server_error(op, status=503, times=None),
    "slower than the read timeout": lambda proxy, op: proxy.delay(
        op, seconds=READ_TIMEOUT * 4, times=None
    ),
    "connection reset": lambda proxy, op: proxy.reset_connection(op, times=None),
}
ONE_SHOT: dict[str, Script] = {
    "throttling": lambda proxy, op: proxy.throttle(op),
    "throughput exceeded": lambda proxy, op: proxy.fail(op),
    "http 500": lambda proxy, op: proxy.server_error(op, status=500),
    "http 503": lambda proxy, op: proxy.server_error(op, status=503),
    "slower than the read timeout": lambda proxy, op: proxy.delay(op, seconds=READ_TIMEOUT * 4),
    "connection reset": lambda proxy, op: proxy.reset_connection(op),
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class RecordingTable(ChatTable):
    """A ChatTable that remembers each of its own backoffs (not botocore's)."""

    backoffs: list[int] = dataclasses.field(default_factory=list)

    async def backoff(self, attempt: int) -> None:
        self.backoffs.append(attempt)
        await super().backoff(attempt)


@pytest_asyncio.fixture(scope="module")
async def running_proxy(dynamodb_endpoint: str) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(dynamodb_endpoint) as running:
        yield running


@pytest.fixture
def proxy(running_proxy: FaultProxy) -> Iterator[FaultProxy]:
    running_proxy.reset()
    yield running_proxy
    running_proxy.reset()


@pytest_asyncio.fixture(scope="module")
async def faulty_client(
    running_proxy: FaultProxy, dynamodb_client: DynamoDBClient, dynamodb_endpoint: str
) -> AsyncIterator[DynamoDBClient]:
    """One client through the proxy for the whole module: every test's faults hit the same
    long-lived client, as they would in the service, and it must keep working after each."""
    config = client_config(
        max_pool_connections=8,
        connect_timeout=1,
        read_timeout=READ_TIMEOUT,
        max_attempts=BOTOCORE_ATTEMPTS,
    )
    async with open_client(
        region=dynamodb_client.meta.region_name,
        endpoint_url=running_proxy.url,
        config=config,
        credentials=credentials_for(dynamodb_endpoint),
        fast_path=general_paths.fast_path(),
    ) as client:
        yield client


@pytest.fixture
def faulty(
    proxy: FaultProxy, faulty_client: DynamoDBClient, chat_table: ChatTable
) -> RecordingTable:
    """The test's table through the proxy, with small bounds so faults resolve quickly."""
    return RecordingTable(
        client=faulty_client,
        name=chat_table.name,
        deadline=DEADLINE,
        max_attempts=4,
        backoff_base=0.01,
        backoff_cap=0.1,
    )


async def unavailable(call: Awaitable[Any]) -> UnavailableError:
    with pytest.raises(UnavailableError) as raised:
        await call
    return raised.value


# --- reads


READS: dict[str, tuple[str, Callable[[ChatTable, ConversationRecord], Awaitable[object]]]] = {
    "list conversations": (
        "Query",
        lambda table, c: list_conversations(table, user_id=c.user_id, limit=5),
    ),
    "list messages": (
        "Query",
        lambda table, c: list_messages(table, user_id=c.user_id, conversation_id=c.id, limit=5),
    ),
    "count": ("GetItem", lambda table, c: count_conversations(table, user_id=c.user_id)),
}


@pytest.mark.parametrize("fault", ONE_SHOT.keys())
async def test_a_read_retries_a_passing_fault_and_succeeds(
    chat_table: ChatTable, faulty: RecordingTable, proxy: FaultProxy, user_id: str, fault: str
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    ONE_SHOT[fault](proxy, "BatchGetItem")

    found = await get_conversation(faulty, user_id=user_id, conversation_id=conversation.id)

    assert found == conversation
    assert proxy.requests["BatchGetItem"] == 2


@pytest.mark.parametrize("read", READS.keys())
async def test_the_other_reads_retry_throttling_too(
    chat_table: ChatTable, faulty: RecordingTable, proxy: FaultProxy, user_id: str, read: str
) -> None:
    conversation, _ = await seed_messages(
        chat_table, await a_conversation(chat_table, user_id=user_id), 1
    )
    operation, call = READS[read]
    expected = await call(chat_table, conversation)
    proxy.throttle(operation)

    assert await call(faulty, conversation) == expected
    assert proxy.requests[operation] == 2


# --- lasting faults


@pytest.mark.parametrize("fault", FAULTS.keys())
async def test_a_lasting_fault_fails_reads_and_writes_in_bounded_time_and_then_clears(
    chat_table: ChatTable, faulty: RecordingTable, proxy: FaultProxy, user_id: str, fault: str
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    FAULTS[fault](proxy, ANY)

    outcomes = await asyncio.gather(
        get_conversation(faulty, user_id=user_id, conversation_id=conversation.id),
        add_messages(
            faulty, user_id=user_id, conversation_id=conversation.id, messages=[new_message()]
        ),
        return_exceptions=True,
    )

    assert [type(outcome) for outcome in outcomes] == [UnavailableError, UnavailableError]
    # Both were retried before giving up, and gave up at the limit: bounded in time. The add
    # never got past its first read (of what it writes over) to its transaction.
    assert proxy.requests["BatchGetItem"] == 2 * BOTOCORE_ATTEMPTS
    assert proxy.requests["TransactWriteItems"] == 0
    # No partial state: neither a message nor a changed count.
    assert await stored_messages(chat_table, conversation_id=conversation.id) == []
    assert (
        await get_conversation(chat_table, user_id=user_id, conversation_id=conversation.id)
        == conversation
    )
    # Once the fault clears, the same client works: no restart.
    proxy.clear()
    (added,) = await add_messages(
        faulty, user_id=user_id, conversation_id=conversation.id, messages=[new_message()]
    )
    current = await get_conversation(faulty, user_id=user_id, conversation_id=conversation.id)
    assert current is not None
    assert (current.message_count, current.last_message) == (1, added)


# --- writes whose answer was lost


LOST_RESPONSES: dict[str, Script] = {
    "http 500 after applying": lambda proxy, op: proxy.fail(
        op, status=500, error_type="InternalServerError", forward_first=True
    ),
    "reset after applying": lambda proxy, op: proxy.reset_connection(op, forward_first=True),
    "slow answer after applying": lambda proxy, op: proxy.delay(
        op, seconds=READ_TIMEOUT * 4, forward_first=True
    ),
}


@pytest.mark.parametrize("fault", LOST_RESPONSES.keys())
async def test_an_add_whose_answer_was_lost_is_stored_and_counted_once(
    chat_table: ChatTable, faulty: RecordingTable, proxy: FaultProxy, user_id: str, fault: str
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    LOST_RESPONSES[fault](proxy, "TransactWriteItems")

    (added,) = await add_messages(
        faulty, user_id=user_id, conversation_id=conversation.id, messages=[new_message("once")]
    )

    assert proxy.forwarded["TransactWriteItems"] >= 2  # the engine saw the retry too
    (item,) = await stored_messages(chat_table, conversation_id=conversation.id)
    assert item["messageId"]["S"] == added.id
    current = await get_conversation(chat_table, user_id=user_id, conversation_id=conversation.id)
    assert current is not None
    assert (current.message_count, current.last_message) == (1, added)


# --- UnprocessedKeys / UnprocessedItems


async def test_unprocessed_keys_are_fetched_again_with_backoff(
    chat_table: ChatTable, faulty: RecordingTable, proxy: FaultProxy, user_id: str
) -> None:
    owned = [await a_conversation(chat_table, user_id=user_id) for _ in range(3)]
    wanted = [new_id() for _ in range(40)] + [c.id for c in owned]
    # Each of the first three answers leaves all but 10 keys unprocessed.
    proxy.leave_unprocessed("BatchGetItem", keep=10, times=3)

    found = await get_conversations(faulty, user_id=user_id, conversation_ids=wanted)

    assert found == [None] * 40 + owned
    assert proxy.requests["BatchGetItem"] == 4
    assert faulty.backoffs == [1, 2, 3]


async def test_keys_left_unprocessed_on_every_attempt_are_unavailable(
    chat_table: ChatTable, faulty: RecordingTable, proxy: FaultProxy, user_id: str
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    proxy.leave_unprocessed("BatchGetItem", keep=0, times=None)

    await unavailable(get_conversation(faulty, user_id=user_id, conversation_id=conversation.id))

    assert proxy.requests["BatchGetItem"] == faulty.max_attempts
    assert proxy.forwarded["BatchGetItem"] == 0


async def test_unprocessed_items_are_written_again_until_the_delete_completes(
    chat_table: ChatTable, faulty: RecordingTable, proxy: FaultProxy, user_id: str
) -> None:
    conversation, _ = await seed_messages(
        chat_table, await a_conversation(chat_table, user_id=user_id), 40
    )
    # 80 items in 4 batches of 25/25/25/5; every batch is answered short at first.
    proxy.leave_unprocessed("BatchWriteItem", keep=7, times=6)

    await delete_conversation(faulty, user_id=user_id, conversation_id=conversation.id)

    assert (
        await conversation_items(chat_table, user_id=user_id, conversation_id=conversation.id) == []
    )
    assert proxy.requests["BatchWriteItem"] > 4
    assert faulty.backoffs
    assert all(attempt >= 1 for attempt in faulty.backoffs)


async def test_items_left_unprocessed_on_every_attempt_hide_the_conversation_until_retried(
    chat_table: ChatTable, faulty: RecordingTable, proxy: FaultProxy, user_id: str
) -> None:
    conversation, _ = await seed_messages(
        chat_table, await a_conversation(chat_table, user_id=user_id), 10
    )
    proxy.leave_unprocessed("BatchWriteItem", keep=0, times=None)

    await unavailable(delete_conversation(faulty, user_id=user_id, conversation_id=conversation.id))

    assert (
        await get_conversation(chat_table, user_id=user_id, conversation_id=conversation.id) is None
    )
    assert await partition_size(chat_table, conversation_id=conversation.id) == 21
    proxy.clear()
    await delete_conversation(faulty, user_id=user_id, conversation_id=conversation.id)
    assert await partition_size(chat_table, conversation_id=conversation.id) == 0


async def test_once_a_batched_delete_has_failed_no_other_batch_keeps_writing(
    chat_table: ChatTable, faulty: RecordingTable, proxy: FaultProxy, user_id: str
) -> None:
    conversation, _ = await seed_messages(
        chat_table, await a_conversation(chat_table, user_id=user_id), 60
    )
    # The first batch fails fast; its siblings are slowed down, still retrying.
    proxy.fail("BatchWriteItem", status=400, error_type="AccessDeniedException", times=1)
    proxy.delay("BatchWriteItem", seconds=0.2, times=None)

    with pytest.raises(ChatError):
        await delete_conversation(faulty, user_id=user_id, conversation_id=conversation.id)
    applied = proxy.forwarded["BatchWriteItem"]
    left = await partition_size(chat_table, conversation_id=conversation.id)
    # The held siblings were in the proxy when the delete failed: once every one of them is
    # answered or abandoned, a sibling still going would have landed a write.
    async with asyncio.timeout(HANG_GUARD):
        await proxy.settled()

    assert proxy.forwarded["BatchWriteItem"] == applied
    assert await partition_size(chat_table, conversation_id=conversation.id) == left


# --- error translation


@pytest.mark.parametrize(
    ("error_type", "message", "expected"),
    [
        pytest.param(
            "ValidationException",
            "Item size has exceeded the maximum allowed size",
            ValidationError,
            id="item too large",
        ),
        pytest.param("AccessDeniedException", "no", StorageRejectedError, id="access denied"),
        pytest.param("ResourceNotFoundException", "no table", StorageRejectedError, id="no table"),
        pytest.param("UnrecognizedClientException", "bad key", StorageRejectedError, id="bad key"),
        pytest.param(
            "ValidationException",
            "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: "
            "Member must have length less than or equal to 10",
            StorageRejectedError,
            id="an engine's smaller transaction limit",
        ),
    ],
)
async def test_engine_errors_reach_callers_as_domain_errors(
    chat_table: ChatTable,
    faulty: RecordingTable,
    proxy: FaultProxy,
    user_id: str,
    error_type: str,
    message: str,
    expected: type[ChatError],
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    proxy.fail("TransactWriteItems", status=400, error_type=error_type, message=message)

    with pytest.raises(ChatError) as raised:
        await add_messages(
            faulty,
            user_id=user_id,
            conversation_id=conversation.id,
            messages=[new_message(), new_message(), new_message(), new_message()],
        )

    assert type(raised.value) is expected
    assert isinstance(raised.value.__cause__, ClientError)  # kept for logs, not for callers
    assert proxy.requests["TransactWriteItems"] == 1  # not retried: retrying cannot help


async def test_a_refused_transaction_names_what_an_operator_needs_and_not_the_message(
    chat_table: ChatTable, faulty: RecordingTable, proxy: FaultProxy, user_id: str
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    # An engine that takes 10 items in a transaction; its message quotes what it refused.
    proxy.fail(
        "TransactWriteItems",
        error_type="ValidationException",
        message="Value '[{content: secret words}]' at 'transactItems' failed to satisfy "
        "constraint: Member must have length less than or equal to 10",
    )

    with pytest.raises(StorageRejectedError) as raised:
        await add_messages(
            faulty,
            user_id=user_id,
            conversation_id=conversation.id,
            messages=[new_message("secret words") for _ in range(4)],
        )

    # Each message is an item and its id marker, then the conversation, PROFILE and CHG#.
    assert raised.value.details() == {
        "service": "DynamoDB",
        "code": "ValidationException",
        "operation": "TransactWriteItems",
        "table": chat_table.name,
        "request_id": proxy.error_ids[-1],
        "http_status": 400,
        "items": 4 * 2 + 3,
    }
    assert "secret" not in str(raised.value)


async def test_a_cancellation_for_another_reason_than_a_condition_is_a_refusal(
    chat_table: ChatTable, faulty: RecordingTable, proxy: FaultProxy, user_id: str
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    reasons = [{"Code": "None"}] * 4 + [{"Code": "ValidationError", "Message": "too big"}]
    proxy.fail(
        "TransactWriteItems",
        error_type="TransactionCanceledException",
        message="Transaction cancelled, please refer cancellation reasons for specific reasons",
        fields={"CancellationReasons": reasons},
    )

    with pytest.raises(StorageRejectedError) as raised:
        await add_messages(
            faulty, user_id=user_id, conversation_id=conversation.id, messages=[new_message()]
        )

    # Not a CONFLICT to retry: the same write would be refused again.
    assert raised.value.code == "TransactionCanceledException"
    assert raised.value.details()["cancellation_reasons"] == "ValidationError"
    assert raised.value.details()["items"] == len(reasons)
    assert proxy.requests["TransactWriteItems"] == 1


async def test_a_cancellation_that_gives_no_reasons_is_a_refusal_not_a_crash(
    chat_table: ChatTable, faulty: RecordingTable, proxy: FaultProxy, user_id: str
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    proxy.fail(
        "TransactWriteItems",
        error_type="TransactionCanceledException",
        message="Transaction cancelled",
    )

    with pytest.raises(StorageRejectedError) as raised:
        await add_messages(
            faulty, user_id=user_id, conversation_id=conversation.id, messages=[new_message()]
        )

    assert raised.value.code == "TransactionCanceledException"
    assert "cancellation_reasons" not in raised.value.details()


async def test_an_engine_that_refuses_connections_is_unavailable(chat_table: ChatTable) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    # Nothing listens there any more: every connect is refused.
    config = client_config(
        max_pool_connections=2, connect_timeout=0.5, read_timeout=0.5, max_attempts=2
    )
    async with open_client(
        region=chat_table.client.meta.region_name,
        endpoint_url=url,
        config=config,
        credentials=("testing", "testing"),
        fast_path=general_paths.fast_path(),
    ) as client:
        nowhere = ChatTable(client=client, name=chat_table.name, deadline=DEADLINE)

        await unavailable(count_conversations(nowhere, user_id="u"))


async def test_a_server_error_of_unknown_kind_is_unavailable(
    chat_table: ChatTable, faulty: RecordingTable, proxy: FaultProxy, user_id: str
) -> None:
    proxy.fail(ANY, status=502, error_type="BadGateway", message="upstream", times=None)

    error = await unavailable(count_conversations(faulty, user_id=user_id))

    assert isinstance(error.__cause__, ClientError)
    assert proxy.requests["GetItem"] == BOTOCORE_ATTEMPTS


async def test_a_call_gives_up_at_the_tables_deadline_even_mid_request(
    chat_table: ChatTable, faulty: RecordingTable, proxy: FaultProxy, user_id: str
) -> None:
    # Slower than the deadline but within the read timeout: only the deadline can end it,
    # and its timer always fires before the read timeout's or the held answer's.
    proxy.delay(ANY, seconds=READ_TIMEOUT * 0.9, times=None)
    hurried = dataclasses.replace(faulty, deadline=READ_TIMEOUT * 0.4)

    with pytest.raises(UnavailableError, match="did not answer in time"):
        await count_conversations(hurried, user_id=user_id)

    assert proxy.requests["GetItem"] <= 1, "cut short in its first attempt, not retried"
