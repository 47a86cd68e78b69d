"""Reading messages along one path of a conversation's tree, a page at a time.

A path (the first message down to a leaf) is a run of depths 1..D: depth is a message's place
on every path through it, so a page is a range of depths and its neighbours are known without
reading them. The tree says which segment holds which depths of the path, so a page is one
Query per segment it spans (nearly always one).

A page's Query can often go out before the conversation is read, together with it:
`first_guess` reads what the page most likely is (the newest branch's newest messages for a
first page, the cursor's own segment for the next one); `read_page` then uses whatever of it
turns out to be on the path, and reads only the rest.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Coroutine, Iterable, Sequence
from typing import Any, Final

from . import items, keys
from .client import ChatTable
from .deltas import whole
from .records import ConversationRecord, Item, MessagePosition, MessageRecord, Page, Tree

# Messages read beyond a first page's size when guessing it before the conversation is known.
GUESS_SLACK: Final = 8


@dataclasses.dataclass(frozen=True, kw_only=True)
class PathWindow:
    """`limit` messages of the path to `leaf` (the active leaf when None), after `cursor`
    going forward (towards the leaf) or before it going backward."""

    limit: int
    forward: bool
    cursor: MessagePosition | None = None
    leaf: MessagePosition | None = None


@dataclasses.dataclass(frozen=True)
class _Span:
    """The depths a page covers on its path, and whether the path goes on either side."""

    low: int
    high: int
    has_previous: bool
    has_next: bool


def _span(window: PathWindow, leaf_depth: int) -> _Span:
    if window.forward:
        low = 1 if window.cursor is None else window.cursor.depth + 1
        high = min(leaf_depth, low + window.limit - 1)
    else:
        high = leaf_depth if window.cursor is None else min(leaf_depth, window.cursor.depth - 1)
        low = max(1, high - window.limit + 1)
    if high < low:
        # An empty page: it still says whether the path goes on before or after it.
        return _Span(low, low - 1, has_previous=low > 1, has_next=low <= leaf_depth)
    return _Span(low, high, has_previous=low > 1, has_next=high < leaf_depth)


def _runs(tree: Tree, leaf: MessagePosition, span: _Span) -> list[tuple[int, int, int]]:
    """The (segment, low, high) key ranges that hold the page's depths."""
    runs = []
    for segment, low, high in tree.path(leaf.segment, leaf.depth):
        low, high = max(low, span.low), min(high, span.high)
        if low <= high:
            runs.append((segment, low, high))
    return runs


async def first_guess(
    table: ChatTable, *, user_id: str, conversation_id: str, window: PathWindow
) -> list[Item]:
    """What the page most likely holds, read before the conversation is known."""
    if window.limit == 0 or window.leaf is not None:
        return []
    cursor = window.cursor
    if cursor is None:
        if window.forward:
            return await _query(table, user_id, conversation_id, 0, 1, window.limit, True)
        # The newest branch sorts last; it is where the user is, unless they switched. Just
        # below it in key order sit the messages it was forked from, after the few it was an
        # alternative to: a few more than the page covers a regenerate or an edit near the end.
        return await _query_range(
            table,
            user_id,
            conversation_id,
            keys.MESSAGES_LOW,
            keys.MESSAGES_HIGH,
            window.limit + GUESS_SLACK,
            False,
        )
    if window.forward:
        return await _query(
            table, user_id, conversation_id, cursor.segment, cursor.depth + 1, window.limit, True
        )
    return await _query(
        table, user_id, conversation_id, cursor.segment, cursor.depth - 1, window.limit, False
    )


async def read_page(
    table: ChatTable,
    *,
    user_id: str,
    conversation: ConversationRecord,
    tree: Tree,
    window: PathWindow,
    guessed: Sequence[Item] = (),
) -> Page[MessageRecord]:
    """The page `window` asks for, in path order (oldest first)."""
    leaf = window.leaf or conversation.active_leaf
    if leaf is None:
        return Page(items=[], has_previous=False, has_next=False)
    span = _span(window, leaf.depth)
    found = _by_position(guessed)
    wanted = _runs(tree, leaf, span)
    missing = [
        run for run in wanted if not all((run[0], d) in found for d in range(run[1], run[2] + 1))
    ]
    for batch in await _gather(_query_run(table, user_id, conversation.id, run) for run in missing):
        found.update(_by_position(batch))
    records = []
    for segment, low, high in sorted(wanted, key=lambda run: run[1]):
        for depth in range(low, high + 1):
            item = found.get((segment, depth))
            if item is not None:
                records.append(items.message_from_attributes(item))
    return Page(
        items=await whole(table, records),
        has_previous=span.has_previous,
        has_next=span.has_next,
    )


def _by_position(found: Iterable[Item]) -> dict[tuple[int, int], Item]:
    return {(int(item["segment"]["N"]), int(item["depth"]["N"])): item for item in found}


async def _gather(steps: Iterable[Coroutine[Any, Any, list[Item]]]) -> list[list[Item]]:
    return list(await asyncio.gather(*steps))


async def _query_run(
    table: ChatTable, user_id: str, conversation_id: str, run: tuple[int, int, int]
) -> list[Item]:
    segment, low, high = run
    return await _query_range(
        table,
        user_id,
        conversation_id,
        keys.message_sk(segment, low),
        keys.message_sk(segment, high),
        high - low + 1,
        True,
    )


async def _query(
    table: ChatTable,
    user_id: str,
    conversation_id: str,
    segment: int,
    depth: int,
    limit: int,
    ascending: bool,
) -> list[Item]:
    """Up to `limit` messages of one segment from `depth` on, in the given direction."""
    if depth < 1:
        return []
    if ascending:
        low, high = keys.message_sk(segment, depth), keys.message_sk(segment, keys.MAX_DEPTH)
    else:
        low, high = keys.message_sk(segment, 1), keys.message_sk(segment, depth)
    return await _query_range(table, user_id, conversation_id, low, high, limit, ascending)


async def _query_range(
    table: ChatTable,
    user_id: str,
    conversation_id: str,
    low: str,
    high: str,
    limit: int,
    ascending: bool,
) -> list[Item]:
    # Every message carries its owner and the query filters on it: a colliding or guessed
    # conversation id yields nothing, whatever its partition holds.
    request: dict[str, Any] = {
        "TableName": table.name,
        "KeyConditionExpression": "PK = :p AND SK BETWEEN :low AND :high",
        "FilterExpression": "userId = :user",
        "ExpressionAttributeValues": {
            ":p": {"S": keys.conversation_partition(conversation_id)},
            ":low": {"S": low},
            ":high": {"S": high},
            ":user": {"S": user_id},
        },
        "ScanIndexForward": ascending,
        "ConsistentRead": True,
    }
    found: list[Item] = []
    async with table.guard():
        while len(found) < limit:
            response = await table.client.query(**request, Limit=limit - len(found))
            found.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    return found[:limit]


async def list_messages(
    table: ChatTable,
    *,
    user_id: str,
    conversation_id: str,
    limit: int,
    cursor: MessagePosition | None = None,
    forward: bool = False,
    leaf: MessagePosition | None = None,
) -> Page[MessageRecord]:
    """One page along a path, reading the conversation first (two requests in turn): for
    tools and tests; the API reads both at once."""
    from .conversations import get_threads

    (thread,) = await get_threads(table, user_id=user_id, conversation_ids=[conversation_id])
    if thread is None:
        return Page(items=[], has_previous=False, has_next=False)
    return await read_page(
        table,
        user_id=user_id,
        conversation=thread.conversation,
        tree=thread.tree,
        window=PathWindow(limit=limit, forward=forward, cursor=cursor, leaf=leaf),
    )
