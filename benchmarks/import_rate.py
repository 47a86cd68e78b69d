"""Import rate (messages per second) and peak memory of `chat-history-api import`.

    python -m benchmarks.import_rate --size-mb 5                 # moto, then replayed
    python -m benchmarks.import_rate --size-mb 5 --sink-mb 200   # and a 200 MB export's peak RSS

A generated ChatGPT export (benchmarks.gen_export) is imported by the real command, each run in
a fresh process that reports its own wall time and peak RSS (VmHWM):

1. moto: through the counting engine (benchmarks.canned_engine) in forward mode, into a new
   table, so moto does the work and its answers are recorded;
2. canned: the same import by the same user, replayed from that recording. The reads come back
   exactly as moto gave them (nothing stored yet), the transactions succeed at once: what is
   left is the command's own cost (reading, rules, planning, botocore, the HTTP round trips);
3. sink (--sink-mb): a larger export against an engine that finds nothing stored and accepts
   every write (the recording of a one-message import); for peak memory, since moto cannot
   hold it. A conversation in several parts is refused after its first part there (its
   earlier part is not found), which the summary counts; memory is what this measures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks import gen_export
from benchmarks.children import Child, running, start_child
from benchmarks.procstat import peak_rss_megabytes
from benchmarks.read_export import _machine
from graphql_api.settings import DynamoDBSettings
from graphql_api.storage.client import open_table
from graphql_api.storage.exports import all_messages
from graphql_api.storage.imports import ConversationImport, MessageImport, import_conversation
from graphql_api.storage.table import create_table

REGION = "us-east-1"
_PRIME_TIME = datetime(2022, 1, 1, tzinfo=UTC)
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=5.0)
    parser.add_argument("--sink-mb", type=float, help="also import an export this large")
    parser.add_argument("--work-dir", type=Path, help="default: a temporary folder")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        return _child(args.child)
    with contextlib.ExitStack() as stack:
        work = args.work_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        work.mkdir(parents=True, exist_ok=True)
        figures = asyncio.run(_run(work, args.size_mb, args.sink_mb))
    figures["machine"] = _machine()
    print(json.dumps(figures, indent=2))
    return 0


def _child(arguments: list[str]) -> int:
    """One import in this process; prints its figures as JSON on the last line."""
    from graphql_api.cli import main as cli

    summary = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(summary):
        code = cli(["import", *arguments])
    seconds = time.perf_counter() - started
    print(summary.getvalue(), file=sys.stderr)
    lines = summary.getvalue().splitlines()
    first = next((line for line in lines if line.startswith("imported ")), "")
    print(
        json.dumps(
            {
                "exit": code,
                "summary": first,
                "seconds": round(seconds, 2),
                "peak_rss_mb": round(peak_rss_megabytes(os.getpid()), 1),
            }
        )
    )
    return 0


async def _run(work: Path, size_mb: float, sink_mb: float | None) -> dict[str, Any]:
    export = _generated(work, size_mb)
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    moto = await start_child("moto", "benchmarks.moto_engine", [], log_dir=logs)
    async with running(moto):
        canned = await start_child(
            "canned", "benchmarks.canned_engine", ["--upstream", moto.detail], log_dir=logs
        )
        async with running(canned):
            return await _measure(canned, export, work, sink_mb)


async def _measure(
    canned: Child, export: Path, work: Path, sink_mb: float | None
) -> dict[str, Any]:
    table = f"import-bench-{uuid.uuid4().hex[:8]}"
    settings = DynamoDBSettings(table_name=table, region=REGION, endpoint_url=canned.detail)
    async with open_table(settings, credentials=("testing", "testing")) as opened:
        await create_table(opened.client, table_name=table)
    user = "bench-user"
    figures: dict[str, Any] = {"export_mb": _megabytes(export)}
    figures["moto"] = await _import(canned.detail, table, user, export)
    await _control(canned.detail, "mode?mode=replay")
    await _control(canned.detail, "reset")
    figures["canned"] = await _import(canned.detail, table, user, export)
    counts = await _control(canned.detail, "counts", method="GET")
    figures["canned"]["engine"] = {key: counts[key] for key in ("operations", "replay")}
    if sink_mb:
        await _control(canned.detail, "mode?mode=forward")
        await _prime_sink(settings)
        await _control(canned.detail, "mode?mode=replay")
        large = _generated(work, sink_mb)
        figures["sink"] = await _import(canned.detail, table, "sink-user", large)
        figures["sink"]["export_mb"] = _megabytes(large)
    return figures


def _megabytes(path: Path) -> float:
    return round(path.stat().st_size / 2**20, 1)


def _generated(work: Path, size_mb: float) -> Path:
    path = work / f"export-{size_mb:g}mb" / "conversations.json"
    if not path.exists():
        gen_export.write(path, size=int(size_mb * 2**20), part_size=None, seed=15)
    return path


async def _import(endpoint: str, table: str, user: str, export: Path) -> dict[str, Any]:
    environ = {
        **os.environ,
        **CREDENTIALS,
        "CHAT_TABLE_NAME": table,
        "AWS_REGION": REGION,
        "DYNAMODB_ENDPOINT_URL": endpoint,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.import_rate",
        "--child",
        "--user",
        user,
        str(export),
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    stdout, _ = await process.communicate()
    figures: dict[str, Any] = json.loads(stdout.decode().splitlines()[-1])
    messages = int(figures["summary"].split("(")[1].split()[0].replace(",", ""))
    figures["messages_per_second"] = round(messages / figures["seconds"], 1)
    return figures


async def _prime_sink(settings: DynamoDBSettings) -> None:
    """Record the answers of an account that holds nothing: a one-message import's read
    (all absent) and write, and a Query, as the last answer of each operation."""
    conversation = ConversationImport(
        id=str(uuid.uuid4()),
        title="prime",
        model_id=None,
        created_at=_PRIME_TIME,
        messages=[
            MessageImport(
                id=str(uuid.uuid4()),
                parent_id=None,
                role="user",
                content="prime",
                created_at=_PRIME_TIME,
            )
        ],
    )
    async with open_table(settings, credentials=("testing", "testing")) as table:
        await import_conversation(table, user_id="prime-user", conversation=conversation)
        async for _ in all_messages(table, user_id="prime-user", conversation_id=conversation.id):
            pass


async def _control(endpoint: str, path: str, *, method: str = "POST") -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{endpoint}/__bench__/{path}") as response,
    ):
        response.raise_for_status()
        return await response.json()


if __name__ == "__main__":
    raise SystemExit(main())
