"""The table after a soak, item by item, against the ledger of what the service acknowledged.

Read with the DynamoDB client directly (one consistent Scan of the whole table), never
through the service: the check must not share what it checks.
- Every acknowledged conversation has its item, and its messageCount is the number of its
  message items; no refused one left an item or a partition.
- Every acknowledged message (added whole, or started as a stream) has exactly one MSGID#
  marker and exactly one MSG item, with the content sent; a finished stream's content is its
  acknowledged deltas in seq order, an unfinished one's stored deltas are exactly those.
- No refused message left a marker, a message item or a delta.
- A message whose write got no clear answer in the end is stored at most once, with its
  marker if stored at all.
- Every message item in the table was acknowledged, or its write got no clear answer.
- An acknowledged rename's title (or one with no clear answer), never a refused one's, is
  the conversation's title.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from typing import Any

from graphql_api.storage import items, keys
from graphql_api.storage.client import DynamoDBClient
from graphql_api.storage.records import Item, MessageRecord
from tests.soak.traffic import PROBLEMS_KEPT, Ledger


@dataclasses.dataclass
class Verified:
    conversations: int = 0
    refused_conversations: int = 0
    messages: int = 0
    streams: int = 0
    finished: int = 0
    deltas: int = 0
    refused_messages: int = 0
    refused_deltas: int = 0
    unsettled: int = 0
    # Items read.
    items: int = 0
    problems: Counter[str] = dataclasses.field(default_factory=Counter)
    described: list[str] = dataclasses.field(default_factory=list)

    def problem(self, kind: str, detail: str) -> None:
        self.problems[kind] += 1
        if len(self.described) < PROBLEMS_KEPT:
            self.described.append(f"{kind}: {detail}")


async def scan(client: DynamoDBClient, table_name: str) -> list[Item]:
    request: dict[str, Any] = {"TableName": table_name, "ConsistentRead": True}
    found: list[Item] = []
    while True:
        response = await client.scan(**request)
        found.extend(response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return found
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


class Stored:
    """The table as one Scan read it: items by key, and each partition's message items by
    message id (a list, so "exactly once" can be checked)."""

    def __init__(self, found: list[Item]) -> None:
        self.count = len(found)
        self._by_key = {items.key_of(item): item for item in found}
        self._partitions = {pk for pk, _ in self._by_key}
        self.messages: defaultdict[str, defaultdict[str, list[Item]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for item in found:
            if item.get("type", {}).get("S") == items.MESSAGE:
                partition, _ = items.key_of(item)
                self.messages[partition][item["messageId"]["S"]].append(item)

    def get(self, key: items.Key) -> Item | None:
        return self._by_key.get((key["PK"]["S"], key["SK"]["S"]))

    def has(self, key: items.Key) -> bool:
        return self.get(key) is not None

    def has_partition(self, conversation_id: str) -> bool:
        return keys.conversation_partition(conversation_id) in self._partitions

    def message_items(self, conversation_id: str, message_id: str) -> list[Item]:
        return self.messages[keys.conversation_partition(conversation_id)].get(message_id, [])

    def message_count(self, conversation_id: str) -> int:
        partition = self.messages[keys.conversation_partition(conversation_id)]
        return sum(len(found) for found in partition.values())


async def verify(client: DynamoDBClient, table_name: str, ledger: Ledger) -> Verified:
    stored = Stored(await scan(client, table_name))
    result = Verified(
        unsettled=ledger.unsettled_writes, refused_deltas=ledger.refused_deltas, items=stored.count
    )
    _conversations(ledger, stored, result)
    _messages(ledger, stored, result)
    _refused(ledger, stored, result)
    _unsettled(ledger, stored, result)
    _unexplained(ledger, stored, result)
    return result


def _conversations(ledger: Ledger, stored: Stored, out: Verified) -> None:
    for conversation_id, owner in ledger.conversations.items():
        item = stored.get(items.conversation_key(owner, conversation_id))
        if item is None:
            out.problem("acknowledged conversation missing", conversation_id)
            continue
        out.conversations += 1
        conversation = items.conversation_from_item(item)
        counted = stored.message_count(conversation_id)
        if conversation.message_count != counted:
            out.problem(
                "messageCount is not the message items",
                f"{conversation_id}: {conversation.message_count} != {counted}",
            )
        titles = ledger.titles.get(conversation_id)
        unsettled = ledger.unsettled_titles.get(conversation_id, set())
        if titles is not None and conversation.title not in titles | unsettled:
            out.problem("title is no acknowledged rename's", conversation_id)
        if conversation.title in ledger.refused_titles.get(conversation_id, set()):
            out.problem("a refused rename's title is stored", conversation_id)
    for conversation_id, owner in ledger.refused_conversations.items():
        out.refused_conversations += 1
        if stored.has(items.conversation_key(owner, conversation_id)) or stored.has_partition(
            conversation_id
        ):
            out.problem("refused conversation stored", conversation_id)


def _once(
    stored: Stored, conversation_id: str, message_id: str, out: Verified
) -> MessageRecord | None:
    """The message's one item, when it has exactly one, and says when it has no marker."""
    if not stored.has(items.marker_key(conversation_id, message_id)):
        out.problem("acknowledged message without its marker", message_id)
    found = stored.message_items(conversation_id, message_id)
    if len(found) != 1:
        out.problem(f"acknowledged message stored {len(found)} times", message_id)
        return None
    return items.message_from_attributes(found[0])


def _messages(ledger: Ledger, stored: Stored, out: Verified) -> None:
    for message_id, (conversation_id, content) in ledger.messages.items():
        message = _once(stored, conversation_id, message_id, out)
        if message is None:
            continue
        out.messages += 1
        if message.content != content:
            out.problem("message content is not what was sent", message_id)
    for message_id, stream in ledger.streams.items():
        message = _once(stored, stream.conversation_id, message_id, out)
        if message is None:
            continue
        out.streams += 1
        out.deltas += len(stream.deltas)
        if stream.unsettled:
            continue
        if stream.finished:
            out.finished += 1
            status = "complete" if stream.deltas else "stopped"
            if message.content != "".join(stream.deltas) or message.status != status:
                out.problem(
                    "finished stream is not its acknowledged deltas",
                    f"{message_id}: {message.status} {message.content!r} "
                    f"!= {''.join(stream.deltas)!r}",
                )
            continue
        # Unfinished (its finish refused to the end): the deltas themselves, and none after.
        texts = []
        for seq in range(1, len(stream.deltas) + 2):
            delta = stored.get(items.delta_key(stream.conversation_id, message_id, seq))
            texts.append(None if delta is None else items.delta_from_item(delta).text)
        if texts != [*stream.deltas, None]:
            out.problem("unfinished stream's deltas are not the acknowledged ones", message_id)


def _refused(ledger: Ledger, stored: Stored, out: Verified) -> None:
    for message_id, conversation_id in ledger.refused_messages.items():
        out.refused_messages += 1
        if (
            stored.has(items.marker_key(conversation_id, message_id))
            or stored.message_items(conversation_id, message_id)
            or stored.has(items.delta_key(conversation_id, message_id, 1))
        ):
            out.problem("refused message stored", message_id)


def _unsettled(ledger: Ledger, stored: Stored, out: Verified) -> None:
    for message_id, conversation_id in ledger.unsettled_messages.items():
        found = len(stored.message_items(conversation_id, message_id))
        marked = stored.has(items.marker_key(conversation_id, message_id))
        if found > 1 or marked != (found == 1):
            out.problem(
                "unsettled message stored more than once or without its marker",
                f"{message_id}: {found} items, marker {marked}",
            )


def _unexplained(ledger: Ledger, stored: Stored, out: Verified) -> None:
    known = ledger.messages.keys() | ledger.streams.keys() | ledger.unsettled_messages.keys()
    for partition in stored.messages.values():
        for message_id in partition:
            if message_id not in known:
                out.problem("message item nobody was told of", message_id)
