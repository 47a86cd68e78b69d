"""Message content of any size: past what fits in an item, it lives in the content bucket and
reads back the same; previews stay small; deleting takes the objects too."""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import aioboto3  # type: ignore[import-untyped]
import pytest_asyncio

from graphql_api.settings import INLINE_CONTENT_BYTES, ContentSettings
from graphql_api.storage import keys
from graphql_api.storage.items import PREVIEW_CHARS
from graphql_api.storage.messages import add_messages
from graphql_api.storage.records import NewMessage
from tests.api.harness import Api, create_conversation, new_id, sync_token
from tests.conftest import LOCAL_CREDENTIALS, REGION
from tests.factories import stored_item

ADD = """
mutation Add($input: AddMessageInput!) {
  addMessage(input: $input) { message { id content } conversation { lastMessage { content } } }
}
"""
LAST = """
query Last($id: ID!) {
  conversation(id: $id) { messages(last: 2) { edges { node { id content } } } }
}
"""
HOME = "{ conversations(first: 5) { edges { node { id lastMessage { content } } } } }"
FEED = """
query Feed($since: String) { changes(since: $since) { changes { messages { content } } } }
"""
THREE_MB = 3 * 1024 * 1024


def big(size: int, seed: str = "ab") -> str:
    return (seed * (size // len(seed) + 1))[:size]


@pytest_asyncio.fixture
async def objects(content_bucket: ContentSettings) -> AsyncIterator[Any]:
    session = aioboto3.Session(
        aws_access_key_id=LOCAL_CREDENTIALS[0],
        aws_secret_access_key=LOCAL_CREDENTIALS[1],
        region_name=REGION,
    )
    async with session.client("s3", endpoint_url=content_bucket.endpoint_url) as s3:
        yield s3


async def keys_under(s3: Any, bucket: str | None, conversation_id: str) -> list[str]:
    listed = await s3.list_objects_v2(Bucket=bucket, Prefix=f"content/{conversation_id}/")
    return [entry["Key"] for entry in listed.get("Contents", [])]


async def add(api: Api, user: str, conversation_id: str, content: str, **extra: Any) -> Any:
    variables = {
        "input": {
            "conversationId": conversation_id,
            "role": "ASSISTANT",
            "content": content,
            **extra,
        }
    }
    return await api.data(ADD, variables, user=user)


async def test_a_three_megabyte_message_reads_back_whole_from_every_path(
    api: Api, alice: str, objects: Any, content_bucket: ContentSettings
) -> None:
    conversation = await create_conversation(api, alice)
    since = (await api.data(FEED, {"since": None}, user=alice))["changes"]
    assert since["changes"] == []
    token = await sync_token(api, alice)
    content = "€" * (THREE_MB // 3)  # 3 MB of UTF-8, a million characters

    added = await add(api, alice, conversation["id"], content)

    assert added["addMessage"]["message"]["content"] == content
    preview = added["addMessage"]["conversation"]["lastMessage"]["content"]
    assert preview == content[:PREVIEW_CHARS]
    read = await api.data(LAST, {"id": conversation["id"]}, user=alice)
    assert [edge["node"]["content"] for edge in read["conversation"]["messages"]["edges"]] == [
        content
    ]
    feed = await api.data(FEED, {"since": token}, user=alice)
    assert feed["changes"]["changes"][-1]["messages"] == [{"content": content}]
    home = await api.data(HOME, user=alice)
    assert len(home["conversations"]["edges"][0]["node"]["lastMessage"]["content"]) <= (
        PREVIEW_CHARS
    )
    # The item holds the start and the object's key; the object holds it all.
    item = await stored_item(
        api.services.table, f"CONV#{conversation['id']}", keys.message_sk(0, 1)
    )
    assert item is not None
    assert item["content"]["S"] == content[:PREVIEW_CHARS]
    (key,) = await keys_under(objects, content_bucket.bucket, conversation["id"])
    assert item["contentRef"]["S"] == key
    body = await objects.get_object(Bucket=content_bucket.bucket, Key=key)
    assert (await body["Body"].read()).decode() == content


async def test_content_that_fits_an_item_stays_in_it(
    api: Api, alice: str, objects: Any, content_bucket: ContentSettings
) -> None:
    conversation = await create_conversation(api, alice)
    await add(api, alice, conversation["id"], big(INLINE_CONTENT_BYTES))

    assert await keys_under(objects, content_bucket.bucket, conversation["id"]) == []


async def test_a_retry_stores_one_message_and_one_object(
    api: Api, alice: str, objects: Any, content_bucket: ContentSettings
) -> None:
    conversation = await create_conversation(api, alice)
    message_id = new_id()
    content = big(INLINE_CONTENT_BYTES + 1)
    first = await add(api, alice, conversation["id"], content, id=message_id)
    again = await add(api, alice, conversation["id"], content, id=message_id)

    assert first["addMessage"]["message"] == again["addMessage"]["message"]
    assert len(await keys_under(objects, content_bucket.bucket, conversation["id"])) == 1


async def test_a_refused_add_leaves_no_object_behind(
    api: Api, alice: str, objects: Any, content_bucket: ContentSettings
) -> None:
    conversation = await create_conversation(api, alice)
    message_id = new_id()
    await add(api, alice, conversation["id"], big(INLINE_CONTENT_BYTES + 1), id=message_id)
    stored = await keys_under(objects, content_bucket.bucket, conversation["id"])

    variables = {
        "input": {
            "conversationId": conversation["id"],
            "id": message_id,
            "role": "ASSISTANT",
            "content": big(INLINE_CONTENT_BYTES + 1, "zy"),
        }
    }
    error = await api.error(ADD, variables, user=alice)

    assert error["extensions"]["code"] == "CONFLICT"
    assert await keys_under(objects, content_bucket.bucket, conversation["id"]) == stored


async def test_deleting_a_conversation_deletes_its_objects(
    api: Api, alice: str, objects: Any, content_bucket: ContentSettings
) -> None:
    conversation = await create_conversation(api, alice)
    for seed in ("ab", "cd", "ef"):
        await add(api, alice, conversation["id"], big(INLINE_CONTENT_BYTES + 10, seed))
    assert len(await keys_under(objects, content_bucket.bucket, conversation["id"])) == 3

    await api.data(
        "mutation($id: ID!) { deleteConversation(input: {id: $id}) { deletedConversationId } }",
        {"id": conversation["id"]},
        user=alice,
    )

    assert await keys_under(objects, content_bucket.bucket, conversation["id"]) == []


async def test_a_four_megabyte_message_costs_a_few_copies_of_itself_in_memory(
    api: Api, alice: str
) -> None:
    conversation = await create_conversation(api, alice)
    size = 4 * 1024 * 1024
    content = big(size)
    table = api.services.table

    tracemalloc.start()
    try:
        (stored,) = await add_messages(
            table,
            user_id=alice,
            conversation_id=conversation["id"],
            messages=[NewMessage(role="assistant", content=content)],
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert stored.content_ref is not None
    # The text, its UTF-8 bytes for the upload, and what the HTTP client holds while sending.
    assert peak < 5 * size, f"peak {peak / size:.1f} times the content"
