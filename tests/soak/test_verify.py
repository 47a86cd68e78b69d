"""The soak's item-by-item check, against a real table: it passes a table holding exactly
what was acknowledged, and finds each way a table can differ from its ledger. (Not slow: it
runs with the suite, so the soak's verdict on writes can be trusted.)"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest_asyncio

from graphql_api.storage.batch import batch_put
from graphql_api.storage.client import ChatTable, DynamoDBClient
from graphql_api.storage.conversations import update_conversation
from graphql_api.storage.items import message_item
from graphql_api.storage.messages import add_messages
from graphql_api.storage.records import MessageRecord, NewMessage
from graphql_api.storage.streams import Ending, append_delta, finish_message, start_message
from tests.factories import a_conversation, new_id, own_table
from tests.soak.traffic import Ledger, Stream
from tests.soak.verify import verify


@pytest_asyncio.fixture
async def table_name(dynamodb_client: DynamoDBClient) -> AsyncIterator[str]:
    """A table per test: the check reads the whole table, as the soak's does."""
    async with own_table(dynamodb_client, purpose="soak-verify") as name:
        yield name


@dataclasses.dataclass
class World:
    table: ChatTable
    ledger: Ledger
    messages: list[MessageRecord]


async def stream(table: ChatTable, user_id: str, conversation_id: str, deltas: list[str]) -> str:
    added = await start_message(
        table,
        user_id=user_id,
        conversation_id=conversation_id,
        message=NewMessage(role="assistant", content="", id=new_id()),
        max_streaming=16,
    )
    message_id = added.messages[0].id
    for seq, delta in enumerate(deltas, start=1):
        await append_delta(
            table,
            user_id=user_id,
            conversation_id=conversation_id,
            message_id=message_id,
            seq=seq,
            delta=delta,
            max_bytes=1024,
        )
    return message_id


async def world(dynamodb_client: DynamoDBClient, table_name: str) -> World:
    """A conversation with two messages, a finished stream and an unfinished one, and the
    ledger that says so, with a refused conversation and a refused message besides."""
    table = ChatTable(client=dynamodb_client, name=table_name, deadline=30.0)
    user_id = f"user-{new_id()}"
    conversation = await a_conversation(table, user_id=user_id)
    added = await add_messages(
        table,
        user_id=user_id,
        conversation_id=conversation.id,
        messages=[NewMessage(role="user", content=text, id=new_id()) for text in ("a", "b")],
    )
    finished = await stream(table, user_id, conversation.id, ["<1>", "<2>"])
    await finish_message(
        table,
        user_id=user_id,
        conversation_id=conversation.id,
        message_id=finished,
        ending=Ending(status="complete", last_seq=2),
    )
    unfinished = await stream(table, user_id, conversation.id, ["<only>"])
    ledger = Ledger(
        conversations={conversation.id: user_id},
        refused_conversations={new_id(): user_id},
        messages={m.id: (conversation.id, m.content) for m in added},
        streams={
            finished: Stream(conversation.id, ["<1>", "<2>"], finished=True),
            unfinished: Stream(conversation.id, ["<only>"]),
        },
        refused_messages={new_id(): conversation.id},
    )
    return World(table, ledger, added)


async def test_a_table_holding_what_was_acknowledged_passes(
    dynamodb_client: DynamoDBClient, table_name: str
) -> None:
    built = await world(dynamodb_client, table_name)
    verified = await verify(dynamodb_client, table_name, built.ledger)
    assert verified.described == []
    assert (verified.conversations, verified.messages, verified.streams) == (1, 2, 2)
    assert (verified.finished, verified.deltas) == (1, 3)
    assert (verified.refused_conversations, verified.refused_messages) == (1, 1)


async def test_an_acknowledged_message_that_is_missing_is_found(
    dynamodb_client: DynamoDBClient, table_name: str
) -> None:
    built = await world(dynamodb_client, table_name)
    conversation_id = built.messages[0].conversation_id
    built.ledger.messages[new_id()] = (conversation_id, "never stored")
    verified = await verify(dynamodb_client, table_name, built.ledger)
    assert verified.problems["acknowledged message stored 0 times"] == 1
    assert verified.problems["acknowledged message without its marker"] == 1


async def test_a_refused_message_that_was_stored_is_found(
    dynamodb_client: DynamoDBClient, table_name: str
) -> None:
    built = await world(dynamodb_client, table_name)
    landed = built.messages[0]
    del built.ledger.messages[landed.id]
    built.ledger.refused_messages[landed.id] = landed.conversation_id
    verified = await verify(dynamodb_client, table_name, built.ledger)
    assert verified.problems["refused message stored"] == 1
    assert verified.problems["message item nobody was told of"] == 1


async def test_a_message_stored_twice_is_found(
    dynamodb_client: DynamoDBClient, table_name: str
) -> None:
    built = await world(dynamodb_client, table_name)
    twice = built.messages[0]
    await batch_put(built.table, [message_item(dataclasses.replace(twice, depth=99))])
    verified = await verify(dynamodb_client, table_name, built.ledger)
    assert verified.problems["acknowledged message stored 2 times"] == 1
    assert verified.problems["messageCount is not the message items"] == 1


async def test_a_stream_holding_other_text_than_its_acknowledged_deltas_is_found(
    dynamodb_client: DynamoDBClient, table_name: str
) -> None:
    built = await world(dynamodb_client, table_name)
    for stream_ in built.ledger.streams.values():
        stream_.deltas.append("<refused, yet stored?>")
    verified = await verify(dynamodb_client, table_name, built.ledger)
    assert verified.problems["finished stream is not its acknowledged deltas"] == 1
    assert verified.problems["unfinished stream's deltas are not the acknowledged ones"] == 1


async def test_a_message_with_no_clear_answer_may_be_stored_once_but_not_twice(
    dynamodb_client: DynamoDBClient, table_name: str
) -> None:
    built = await world(dynamodb_client, table_name)
    once, twice = built.messages
    for message in (once, twice):
        del built.ledger.messages[message.id]
        built.ledger.unsettled_messages[message.id] = message.conversation_id
    await batch_put(built.table, [message_item(dataclasses.replace(twice, depth=99))])
    verified = await verify(dynamodb_client, table_name, built.ledger)
    assert verified.problems == {
        "unsettled message stored more than once or without its marker": 1,
        # The copy counts among the conversation's message items too.
        "messageCount is not the message items": 1,
    }


async def test_a_refused_rename_whose_title_was_stored_is_found(
    dynamodb_client: DynamoDBClient, table_name: str
) -> None:
    built = await world(dynamodb_client, table_name)
    (conversation_id, user_id), *_ = built.ledger.conversations.items()
    await update_conversation(
        built.table, user_id=user_id, conversation_id=conversation_id, title="refused"
    )
    built.ledger.titles[conversation_id] = {"acknowledged"}
    built.ledger.refused_titles[conversation_id] = {"refused"}
    verified = await verify(dynamodb_client, table_name, built.ledger)
    assert verified.problems == {
        "title is no acknowledged rename's": 1,
        "a refused rename's title is stored": 1,
    }
