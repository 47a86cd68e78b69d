"""How fast deleteAllMyData erases a seeded account, call by call, against moto (or any engine).

    python -m benchmarks.erase_rate --conversations 200 --messages 50
    DYNAMODB_ENDPOINT_URL=http://... python -m benchmarks.erase_rate ...   # another engine

The account is seeded with batch writes (benchmarks.seed: the items storage writes, no
transactions), a bystander's conversation beside it; then erase_user_data runs with its
default budget until done. Each call's wall time is what bounds a request; the total rate is
what an erasure of 10,000 conversations and 1,000,000 messages would take, scaled.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from benchmarks.children import running, start_child
from benchmarks.read_export import _machine
from benchmarks.seed import DatasetSpec, seed
from graphql_api.settings import DynamoDBSettings
from graphql_api.storage.client import open_table
from graphql_api.storage.erasure import DEFAULT_BUDGET, erase_user_data
from graphql_api.storage.table import create_table, delete_table

REGION = "us-east-1"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--messages", type=int, default=50, help="per conversation")
    args = parser.parse_args(argv)
    figures = asyncio.run(_run(args.conversations, args.messages))
    figures["machine"] = _machine()
    print(json.dumps(figures, indent=2))
    return 0


@contextlib.asynccontextmanager
async def _engine() -> AsyncIterator[str]:
    if endpoint := os.environ.get("DYNAMODB_ENDPOINT_URL"):
        yield endpoint
        return
    with tempfile.TemporaryDirectory() as logs:
        moto = await start_child("moto", "benchmarks.moto_engine", [], log_dir=Path(logs))
        async with running(moto):
            yield moto.detail


async def _run(conversations: int, messages: int) -> dict[str, Any]:
    async with _engine() as endpoint:
        name = f"erase-bench-{uuid.uuid4().hex[:8]}"
        settings = DynamoDBSettings(table_name=name, region=REGION, endpoint_url=endpoint)
        credentials = ("testing", "testing") if "127.0.0.1" in endpoint else None
        async with open_table(settings, credentials=credentials, deadline=60.0) as table:
            await create_table(table.client, table_name=name)
            try:
                spec = DatasetSpec(
                    name="erase",
                    focus_history=messages,
                    others=conversations - 1,
                    other_history=messages,
                )
                await seed(table, spec, user_id="erased")
                await seed(
                    table,
                    DatasetSpec(name="kept", focus_history=10, others=0, other_history=0),
                    user_id="bystander",
                )
                calls = []
                operations: collections.Counter[str] = collections.Counter()

                def count(model: Any, **_: Any) -> None:
                    operations[str(model.name)] += 1

                table.client.meta.events.register("before-call.dynamodb", count)
                started = time.perf_counter()
                while True:
                    began = time.perf_counter()
                    erased = await erase_user_data(table, user_id="erased")
                    calls.append((time.perf_counter() - began, erased))
                    if erased.done:
                        break
                total = time.perf_counter() - started
            finally:
                await delete_table(table.client, table_name=name)
    deleted = sum(erasure.messages_deleted for _, erasure in calls)
    durations = sorted(seconds for seconds, _ in calls)
    return {
        "conversations": conversations,
        "messages": conversations * messages,
        "budget_seconds": DEFAULT_BUDGET.total_seconds(),
        "calls": len(calls),
        "median_call_seconds": round(statistics.median(durations), 2),
        "longest_call_seconds": round(durations[-1], 2),
        "total_seconds": round(total, 1),
        "messages_deleted": deleted,
        "messages_per_second": round(deleted / total),
        "conversations_per_second": round(conversations / total, 1),
        "requests": dict(operations),
    }


if __name__ == "__main__":
    raise SystemExit(main())
