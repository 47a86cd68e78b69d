"""import, export and delete-user-data as an operator runs them: a fresh process, only the
DynamoDB settings in its environment, a real endpoint."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aioboto3  # type: ignore[import-untyped]
import jsonschema
import pytest
import pytest_asyncio

from benchmarks import gen_export
from graphql_api.settings import ContentSettings, Settings
from graphql_api.storage.client import ChatTable, DynamoDBClient
from graphql_api.storage.conversations import create_conversation
from graphql_api.storage.exports import all_conversations, all_messages
from graphql_api.storage.projects import create_project, read_project
from graphql_api.transfer import write_export
from tests import general_paths
from tests.conftest import REGION, credentials_for
from tests.factories import own_table
from tests.transfer_checks import FIXTURES, imported, read_all

ROOT = Path(__file__).resolve().parents[2]
CLI = (sys.executable, "-m", "graphql_api.cli")
SETTINGS_VARIABLES = set(Settings.variables())
SCHEMA = json.loads((ROOT / "schema" / "export.schema.json").read_text())


@pytest_asyncio.fixture
async def table_name(dynamodb_client: DynamoDBClient) -> AsyncIterator[str]:
    """A table per test: the fixtures' conversation ids are the same in several files, and an
    id belongs to the first user who imports it."""
    async with own_table(dynamodb_client, purpose="cli-transfer") as name:
        yield name


@pytest.fixture
def environ(dynamodb_endpoint: str, table_name: str) -> dict[str, str]:
    """The environment of an operator's shell: the DynamoDB settings (and the suite's choice
    of paths) and nothing else."""
    inherited = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    values = {
        **inherited,
        **general_paths.environment(),
        "CHAT_TABLE_NAME": table_name,
        "AWS_REGION": REGION,
        "DYNAMODB_ENDPOINT_URL": dynamodb_endpoint,
    }
    if credentials := credentials_for(dynamodb_endpoint):
        values |= {"AWS_ACCESS_KEY_ID": credentials[0], "AWS_SECRET_ACCESS_KEY": credentials[1]}
    return values


def run(
    environ: dict[str, str], *arguments: str | Path, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - a fixed command
        [*CLI, *map(str, arguments)],
        cwd=ROOT,
        env=environ,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


async def stored(table: ChatTable, user: str) -> dict[str, list[str]]:
    """Each of the user's conversations with its message ids, in key order."""
    found = {}
    async for conversation in all_conversations(table, user_id=user):
        found[conversation.id] = [
            message.id
            async for message in all_messages(table, user_id=user, conversation_id=conversation.id)
        ]
    return found


def expected(*paths: Path, format: str = "auto") -> dict[str, list[str]]:
    return {
        conversation.id: sorted(message.id for message in conversation.messages)
        for conversation in imported(read_all(*paths, format=format))
    }


def sorted_ids(found: dict[str, list[str]]) -> dict[str, list[str]]:
    return {cid: sorted(ids) for cid, ids in found.items()}


@pytest.mark.parametrize(
    "paths",
    [
        ["chatgpt-export.zip"],
        ["chatgpt-split"],
        ["claude-conversations.json"],
        ["chat-history-export.ndjson"],
    ],
    ids=["chatgpt", "chatgpt-split", "claude", "ours"],
)
async def test_import_stores_every_readable_conversation_and_says_what_it_did(
    environ: dict[str, str], chat_table: ChatTable, paths: list[str]
) -> None:
    user = f"user-{uuid.uuid4()}"
    files = [FIXTURES / path for path in paths]

    first = run(environ, "import", "--user", user, *files)
    again = run(environ, "import", "--user", user, *files)

    conversations = len(expected(*files))
    messages = sum(len(ids) for ids in expected(*files).values())
    summary = f"imported {conversations} conversations ({messages} messages)"
    assert first.stdout.startswith(summary), first.stdout + first.stderr
    assert sorted_ids(await stored(chat_table, user)) == expected(*files)
    refused = len(read_all(*files)) - len(imported(read_all(*files)))
    assert first.returncode == (1 if refused else 0), first.stderr
    if refused:
        assert f"refused {refused} conversations:" in first.stdout
        assert first.stderr.splitlines()[-1] == (
            f"import: {refused} conversations refused (listed above)"
        )
    assert again.stdout.startswith("imported 0 conversations (0 messages)"), again.stdout
    assert (
        f"skipped as already there: {conversations} conversations, {messages} messages"
        in again.stdout
    )
    assert "Traceback" not in first.stderr + again.stderr


def test_import_of_a_missing_file_says_so_on_one_line(
    environ: dict[str, str], tmp_path: Path
) -> None:
    result = run(environ, "import", "--user", "someone", tmp_path / "nope.json")

    assert result.returncode == 1
    assert result.stderr == f"import: {tmp_path / 'nope.json'}: no such file or folder\n"


@pytest.fixture(scope="module")
def generated_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("generated")
    path = folder / "conversations.json"
    gen_export.write(path, size=1_200_000, part_size=None, seed=15)
    return path


async def test_an_import_killed_midway_and_run_again_duplicates_nothing(
    environ: dict[str, str], chat_table: ChatTable, generated_export: Path
) -> None:
    user = f"user-{uuid.uuid4()}"
    wanted = expected(generated_export)
    # Popen returns at once; the test then polls the table while the import runs.
    process = subprocess.Popen(  # noqa: S603, ASYNC220 - a fixed command
        [*CLI, "import", "--user", user, str(generated_export)],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while len(await stored(chat_table, user)) < 5 and time.monotonic() < deadline:
            assert process.poll() is None, "the import ended before it could be interrupted"
            await asyncio.sleep(0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    partial = await stored(chat_table, user)
    assert 5 <= len(partial) < len(wanted)

    rerun = run(environ, "import", "--user", user, generated_export)

    assert rerun.returncode == 0, rerun.stderr
    assert "skipped as already there" in rerun.stdout
    assert sorted_ids(await stored(chat_table, user)) == wanted
    async for conversation in all_conversations(chat_table, user_id=user):
        assert conversation.message_count == len(wanted[conversation.id])


async def test_an_export_imports_back_into_an_empty_account_as_it_was(
    environ: dict[str, str], tmp_path: Path
) -> None:
    user = f"user-{uuid.uuid4()}"
    for fixture in ("chatgpt-export.zip", "claude-conversations.json"):
        run(environ, "import", "--user", user, FIXTURES / fixture)
    first, second = tmp_path / "first.json", tmp_path / "second.ndjson"

    exported = run(environ, "export", "--user", user, "--output", first)
    deleted = run(environ, "delete-user-data", "--user", user, "--yes")
    empty = run(environ, "export", "--user", user, "--format", "ndjson")
    reimported = run(environ, "import", "--user", user, first)
    again = run(environ, "export", "--user", user, "--format", "ndjson", "--output", second)

    for result in (exported, deleted, empty, reimported, again):
        assert result.returncode == 0, result.stderr
    assert exported.stderr.startswith("exported 8 conversations (32 messages)")
    assert len(empty.stdout.splitlines()) == 1  # the header alone
    document = json.loads(first.read_text())
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    lines = [json.loads(line) for line in second.read_text().splitlines()]
    assert lines[1:] == document["conversations"]
    assert not (tmp_path / "first.json.partial").exists()


def flat_file(path: Path, conversation_id: str, indices: range) -> Path:
    """Our format as another tool might write it: messages without parentId."""
    messages = [
        {
            "id": f"6d2e3f40-0000-4000-8000-{index:012d}",
            "role": "ASSISTANT" if index % 2 else "USER",
            "content": f"m{index}",
            "createdAt": f"2024-08-01T09:00:{index:02d}.000000Z",
            "modelId": None,
            "isError": False,
            "errorMessage": None,
        }
        for index in indices
    ]
    conversation = {
        "id": conversation_id,
        "title": "Flat",
        "modelId": None,
        "createdAt": "2024-08-01T09:00:00.000000Z",
        "updatedAt": messages[-1]["createdAt"],
        "messages": messages,
    }
    document = {
        "format": "chat-history-api/export",
        "version": 1,
        "exportedAt": "2024-08-02T00:00:00.000000Z",
        "conversations": [conversation],
    }
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    path.write_text(json.dumps(document))
    return path


async def test_a_flat_file_imports_as_one_thread_and_a_later_file_continues_it(
    environ: dict[str, str], chat_table: ChatTable, tmp_path: Path
) -> None:
    user = f"user-{uuid.uuid4()}"
    cid = str(uuid.uuid4())
    first = flat_file(tmp_path / "first.json", cid, range(5))
    rest = flat_file(tmp_path / "rest.json", cid, range(5, 10))

    runs = [run(environ, "import", "--user", user, path) for path in (first, rest, first, rest)]

    for result in runs:
        assert result.returncode == 0, result.stderr
    assert runs[1].stdout.startswith("imported 1 conversations (5 messages)"), runs[1].stdout
    assert runs[3].stdout.startswith("imported 0 conversations (0 messages)"), runs[3].stdout
    messages = [m async for m in all_messages(chat_table, user_id=user, conversation_id=cid)]
    assert [m.content for m in messages] == [f"m{index}" for index in range(10)]
    assert [m.parent_id for m in messages] == [None, *(m.id for m in messages[:-1])]
    assert {m.segment for m in messages} == {0}
    (conversation,) = [c async for c in all_conversations(chat_table, user_id=user)]
    assert conversation.message_count == 10
    assert conversation.active_leaf is not None
    assert conversation.active_leaf.message_id == messages[-1].id


async def test_delete_user_data_asks_first_unless_told_yes(
    environ: dict[str, str], chat_table: ChatTable
) -> None:
    user = f"user-{uuid.uuid4()}"
    run(environ, "import", "--user", user, FIXTURES / "claude-conversations.json")

    declined = run(environ, "delete-user-data", "--user", user, stdin="no\n")
    kept = await stored(chat_table, user)
    confirmed = run(environ, "delete-user-data", "--user", user, stdin="yes\n")
    gone = await stored(chat_table, user)
    unasked = run(environ, "delete-user-data", "--user", user, "--yes")

    assert declined.returncode == 1
    assert declined.stderr.startswith(
        f"Delete every conversation (4), project, message and change of user {user!r}?"
    )
    assert declined.stderr.endswith("\ndelete-user-data: not confirmed; nothing was deleted\n")
    assert len(kept) == 4
    assert confirmed.returncode == 0, confirmed.stderr
    assert confirmed.stdout.startswith("deleted 4 conversations (12 messages)")
    assert gone == {}
    assert unasked.returncode == 0
    assert unasked.stderr == ""
    assert unasked.stdout.startswith("deleted 0 conversations (0 messages)")


async def test_large_messages_go_through_the_content_bucket_both_ways(
    environ: dict[str, str], tmp_path: Path, content_bucket: ContentSettings
) -> None:
    user = f"user-{uuid.uuid4()}"
    environ |= {
        "CONTENT_BUCKET": str(content_bucket.bucket),
        "S3_ENDPOINT_URL": str(content_bucket.endpoint_url),
    }
    (conversation,) = imported(read_all(FIXTURES / "chat-history-export.json"))[:1]
    large = "ü" * 700_000  # 1.4 MB of UTF-8
    messages = [
        dataclasses.replace(message, content=large) if index == 1 else message
        for index, message in enumerate(conversation.messages)
    ]
    source = tmp_path / "large.json"
    with source.open("w", encoding="utf-8") as out:
        write_export(out, [dataclasses.replace(conversation, messages=messages)])

    imported_run = run(environ, "import", "--user", user, source)
    exported_run = run(environ, "export", "--user", user)
    deleted_run = run(environ, "delete-user-data", "--user", user, "--yes")

    assert imported_run.returncode == 0, imported_run.stderr
    (back,) = json.loads(exported_run.stdout)["conversations"]
    assert back["messages"][1]["content"] == large
    assert deleted_run.returncode == 0, deleted_run.stderr
    session = aioboto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    async with session.client("s3", endpoint_url=content_bucket.endpoint_url) as s3:
        listed = await s3.list_objects_v2(
            Bucket=str(content_bucket.bucket), Prefix=f"content/{conversation.id}/"
        )
    assert listed.get("Contents", []) == []


async def test_projects_export_and_import_back_with_their_conversations(
    environ: dict[str, str], dynamodb_client: DynamoDBClient, table_name: str, tmp_path: Path
) -> None:
    user = f"user-{uuid.uuid4()}"
    table = ChatTable(client=dynamodb_client, name=table_name, deadline=30.0)
    trip = await create_project(
        table,
        user_id=user,
        project_id=str(uuid.uuid4()),
        name="Trip",
        instructions="Metric units.",
        max_projects=10,
    )
    await create_project(
        table,
        user_id=user,
        project_id=str(uuid.uuid4()),
        name="Empty",
        instructions=None,
        max_projects=10,
    )
    for index in range(3):
        await create_conversation(
            table, user_id=user, title=f"c{index}", project_id=trip.id if index else None
        )
    document_path, lines_path = tmp_path / "export.json", tmp_path / "again.ndjson"

    exported = run(environ, "export", "--user", user, "--output", document_path)
    deleted = run(environ, "delete-user-data", "--user", user, "--yes")
    gone = await read_project(table, user_id=user, project_id=trip.id)
    reimported = run(environ, "import", "--user", user, document_path)
    again = run(environ, "export", "--user", user, "--format", "ndjson", "--output", lines_path)

    for result in (exported, deleted, reimported, again):
        assert result.returncode == 0, result.stderr
    assert gone is None
    document = json.loads(document_path.read_text())
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert sorted(project["name"] for project in document["projects"]) == ["Empty", "Trip"]
    assert sorted(c.get("projectId") or "" for c in document["conversations"]) == sorted(
        ["", trip.id, trip.id]
    )
    lines = [json.loads(line) for line in lines_path.read_text().splitlines()]
    assert lines[1:3] == [{"project": project} for project in document["projects"]]
    assert lines[3:] == document["conversations"]
    back = await read_project(table, user_id=user, project_id=trip.id)
    assert back is not None
    assert (back.name, back.instructions, back.created_at) == (
        "Trip",
        "Metric units.",
        trip.created_at,
    )
    assert back.conversation_count() == 2
