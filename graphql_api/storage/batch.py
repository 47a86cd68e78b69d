"""BatchGetItem / BatchWriteItem within DynamoDB's limits.

Both batch calls may succeed with only part of the work done (UnprocessedKeys/Items, under
throttling or size limits); botocore does not retry those, so we do, with backoff.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from graphql_api.errors import UnavailableError

from .client import ChatTable
from .items import key, key_of
from .records import Item

BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25


T = TypeVar("T")


async def _all_or_nothing(steps: Sequence[Awaitable[T]]) -> list[T]:
    """Run `steps` together; on the first failure cancel the rest, then raise that failure.

    A bare gather() would leave the other chunks running after the caller has been told the
    call failed: writes landing after the error, on a client the caller may have closed.
    """
    tasks = [asyncio.ensure_future(step) for step in steps]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _chunks(values: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [values[start : start + size] for start in range(0, len(values), size)]


async def batch_get(
    table: ChatTable, keys: Sequence[tuple[str, str]], *, consistent: bool = True
) -> dict[tuple[str, str], Item]:
    """Items by (PK, SK); absent keys are absent from the result. Duplicates are read once."""
    unique = list(dict.fromkeys(keys))
    found: dict[tuple[str, str], Item] = {}
    chunks = _chunks(unique, BATCH_GET_LIMIT)
    for items in await _all_or_nothing([_get_chunk(table, chunk, consistent) for chunk in chunks]):
        for item in items:
            found[key_of(item)] = item
    return found


async def _get_chunk(
    table: ChatTable, keys: Sequence[tuple[str, str]], consistent: bool
) -> list[Item]:
    request: dict[str, Any] = {
        table.name: {
            "Keys": [key(pk, sk) for pk, sk in keys],
            "ConsistentRead": consistent,
        }
    }
    items: list[Item] = []
    for attempt in range(table.max_attempts):
        if attempt:
            await table.backoff(attempt)
        response = await table.client.batch_get_item(RequestItems=request)
        items.extend(response.get("Responses", {}).get(table.name, []))
        request = dict(response.get("UnprocessedKeys") or {})
        if not request:
            return items
    raise UnavailableError("DynamoDB left keys unprocessed after every retry")


async def batch_delete(
    table: ChatTable, keys: Sequence[tuple[str, str]], *, concurrency: int = 4
) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def delete_chunk(chunk: Sequence[tuple[str, str]]) -> None:
        async with gate:
            await _write_chunk(
                table,
                [{"DeleteRequest": {"Key": key(pk, sk)}} for pk, sk in chunk],
            )

    await _all_or_nothing([delete_chunk(chunk) for chunk in _chunks(keys, BATCH_WRITE_LIMIT)])


async def batch_put(table: ChatTable, items: Sequence[Item], *, concurrency: int = 4) -> None:
    """Unconditional puts, for seeding and imports; not atomic across chunks."""
    gate = asyncio.Semaphore(concurrency)

    async def put_chunk(chunk: Sequence[Item]) -> None:
        async with gate:
            await _write_chunk(table, [{"PutRequest": {"Item": item}} for item in chunk])

    await _all_or_nothing([put_chunk(chunk) for chunk in _chunks(items, BATCH_WRITE_LIMIT)])


async def _write_chunk(table: ChatTable, requests: list[dict[str, Any]]) -> None:
    pending: dict[str, Any] = {table.name: requests}
    for attempt in range(table.max_attempts):
        if attempt:
            await table.backoff(attempt)
        async with table.guard():
            response = await table.client.batch_write_item(RequestItems=pending)
        pending = dict(response.get("UnprocessedItems") or {})
        if not pending:
            return
    raise UnavailableError("DynamoDB left items unprocessed after every retry")
