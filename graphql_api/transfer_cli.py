"""The operator commands that move one user's history: `import`, `export`, `delete-user-data`.

They talk to DynamoDB directly with the service's DynamoDB settings, and to the content bucket
with its content settings (CONTENT_BUCKET, S3_ENDPOINT_URL) when large messages are kept
there; no token and no Cognito settings: they are operator tools, like create-table. They run
the operations the API runs (`UserChat`), so an import is checked by the same rules and
stored by the same functions as importConversations, and delete-user-data is deleteAllMyData
until it is done.

- import streams the files (graphql_api.transfer reads one conversation at a time) and sends
  each conversation in parts within one API call's bound. Imports are idempotent by ids, so an
  interrupted import run again goes on where it stopped and duplicates nothing.
- export writes the projects, then pages through the conversations and their messages and
  writes our format as it goes (one conversation in memory, and one large content read from
  the bucket at a time); with
  --output it writes PATH.partial and renames it at the end, so a file at PATH is always a
  complete export.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import secrets
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Final, TypeAlias

from .domain import rules
from .domain.chat import Chat, UserChat
from .domain.imports import (
    FeedbackDraft,
    ImportConversationDraft,
    ImportMessageDraft,
    ImportProjectDraft,
)
from .errors import ChatError, ConflictError, NotFoundError, ValidationError
from .settings import INLINE_CONTENT_BYTES, ContentSettings, DynamoDBSettings, InputLimits
from .storage.client import open_table
from .storage.content import open_content_store
from .storage.conversations import ConversationFilter
from .storage.records import UNSET, ConversationRecord, MessageRecord, ProjectRecord
from .transfer import (
    SOURCE_FORMATS,
    ExportReader,
    ExportWriter,
    Feedback,
    ImportedConversation,
    ImportedMessage,
    ImportedProject,
    Origin,
    Progress,
    RefusedConversation,
    TransferError,
    import_batches,
)

_Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

EXIT_FAILURE: Final = 1
EXIT_INTERRUPTED: Final = 130
# Operator tools wait longer than a request does: a local engine (the dev stack's moto) can
# take seconds over one large transaction.
DEADLINE_SECONDS: Final = 120.0
READ_TIMEOUT_VARIABLE: Final = "DYNAMODB_READ_TIMEOUT"
# A part's error messages (at most 4 KB each, rare) are not counted by import_batches: half
# the call's content bound leaves room for them.
PART_BYTES: Final = rules.IMPORT_MAX_BYTES // 2
_RESUME_HINT: Final = "run the same command again to go on where it stopped"


def add_commands(commands: _Commands) -> None:
    """Adds import, export and delete-user-data to the `chat-history-api` parser."""
    importer = _command(
        commands,
        "import",
        _import,
        "Import a ChatGPT, Claude or chat-history-api export into one user's history. "
        "Idempotent: run it again after an interruption and it goes on where it stopped.",
    )
    importer.add_argument("--user", required=True, help="the user's id (the token's sub)")
    importer.add_argument(
        "--format", choices=["auto", *SOURCE_FORMATS], default="auto", help="default: detect"
    )
    importer.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="export zips, folders or JSON files"
    )
    exporter = _command(
        commands,
        "export",
        _export,
        "Export everything of one user in chat-history-api's format (schema/export.schema.json).",
    )
    exporter.add_argument("--user", required=True, help="the user's id (the token's sub)")
    exporter.add_argument("--format", choices=["json", "ndjson"], default="json")
    exporter.add_argument("--output", type=Path, help="default: standard output")
    deleter = _command(
        commands,
        "delete-user-data",
        _delete,
        "Delete every conversation, project, message and change of one user (deleteAllMyData).",
    )
    deleter.add_argument("--user", required=True, help="the user's id (the token's sub)")
    deleter.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def _command(
    commands: _Commands, name: str, handler: Callable[[argparse.Namespace], int], help_text: str
) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(command=_piped(handler), command_name=name)
    return parser


def _piped(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except BrokenPipeError:
            # Whoever read the output went away (`| head`): stop quietly, as Unix tools do,
            # and keep Python from complaining again when it flushes stdout at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_FAILURE

    return run


def _fail(command: str, reason: str) -> int:
    print(f"{command}: {reason}", file=sys.stderr)
    return EXIT_FAILURE


@contextlib.asynccontextmanager
async def _user_chat(user_id: str, *, connections: int) -> AsyncIterator[UserChat]:
    """The user's operations on the table, and on the content bucket when there is one (as
    the service opens them: services.open_services)."""
    settings = _settings()
    content = ContentSettings.from_env(os.environ)
    limits = InputLimits.from_env(os.environ)
    if content.bucket is None:
        # As Settings.content_limit: without a bucket, content must fit in its item.
        limits = dataclasses.replace(
            limits, max_content_bytes=min(limits.max_content_bytes, INLINE_CONTENT_BYTES)
        )
    async with (
        open_content_store(content, settings) as store,
        open_table(
            settings, max_pool_connections=connections, deadline=DEADLINE_SECONDS, content=store
        ) as table,
    ):
        # The commands hand out no cursors, so the key that signs them does not matter here.
        chat = Chat(table=table, limits=limits, cursor_secret=secrets.token_bytes(32))
        yield chat.for_user(user_id)


def _check_settings() -> None:
    """A configuration error stops a command before it reads a file or writes one."""
    _settings()
    ContentSettings.from_env(os.environ)
    InputLimits.from_env(os.environ)


def _settings() -> DynamoDBSettings:
    # A server gives up on a slow answer after 5 s; an operator's command would rather wait
    # (moto, in the dev stack, takes seconds over a large transaction), unless told otherwise.
    if READ_TIMEOUT_VARIABLE in os.environ:
        return DynamoDBSettings.from_env(os.environ)
    return DynamoDBSettings.from_env(os.environ, read_timeout=DEADLINE_SECONDS)


# --- import ------------------------------------------------------------------------------


def _import(args: argparse.Namespace) -> int:
    _check_settings()
    try:
        reader = ExportReader(args.paths, format=args.format)
    except TransferError as exc:
        return _fail("import", str(exc))
    progress = Progress(
        out=sys.stdout,
        action="import",
        total=reader.total_bytes,
        position=lambda: reader.bytes_read,
    )
    try:
        asyncio.run(_run_import(args.user, reader, progress))
    except KeyboardInterrupt:
        progress.close()
        return _interrupted("import")
    except TransferError as exc:
        progress.close()
        return _fail("import", f"{exc}; the conversations before it are imported")
    except ProjectRefused as exc:
        progress.close()
        return _fail("import", f"{exc}; the records before it are imported")
    except ChatError as exc:
        # DynamoDB failed us (unreachable, throttled past every retry): what is stored stays.
        progress.close()
        return _fail("import", f"{exc}; {_RESUME_HINT}")
    summary = progress.close()
    if summary.refused:
        return _fail("import", f"{len(summary.refused):,} conversations refused (listed above)")
    return 0


def _interrupted(command: str) -> int:
    print(f"{command}: interrupted; {_RESUME_HINT}", file=sys.stderr)
    return EXIT_INTERRUPTED


class ProjectRefused(ChatError):
    """A project of the file the rules refuse: the conversations in it would have nowhere to
    go, so the import stops there."""


async def _run_import(user_id: str, reader: ExportReader, progress: Progress) -> None:
    async with _user_chat(user_id, connections=4) as chat:
        for result in reader:
            if isinstance(result, RefusedConversation):
                progress.refused(result)
            elif isinstance(result, ImportedProject):
                await import_project(chat, result)
            else:
                await import_conversation(chat, result, progress)


async def import_project(chat: UserChat, project: ImportedProject) -> None:
    """Create the project as it was, unless the user has it (then it is left as it is)."""
    try:
        await chat.import_project(
            ImportProjectDraft(
                id=project.id,
                name=project.name,
                instructions=project.instructions,
                created_at=project.created_at,
                updated_at=project.updated_at,
            )
        )
    except (ValidationError, ConflictError) as exc:
        raise ProjectRefused(f"project {project.id} ({project.name!r}): {exc}") from None


async def import_conversation(
    chat: UserChat, conversation: ImportedConversation, progress: Progress
) -> None:
    """Check the whole conversation, then send it in parts that each fit one API call."""
    added, created = 0, False
    try:
        chat.check_import(conversation_draft(conversation))
        for part in import_batches(
            conversation, max_messages=rules.IMPORT_MAX_MESSAGES, max_bytes=PART_BYTES
        ):
            (outcome,) = await chat.import_conversations([conversation_draft(part)])
            added += outcome.added
            created = created or outcome.created
    except (ValidationError, ConflictError, NotFoundError) as exc:
        origin = conversation.origin or Origin(file="?", index=0, source_id=conversation.id)
        progress.refused(RefusedConversation(origin=origin, reasons=(str(exc),)))
        return
    if added or created:
        progress.imported(conversation, new_messages=added)
    else:
        progress.already_there(conversation)


def conversation_draft(conversation: ImportedConversation) -> ImportConversationDraft:
    return ImportConversationDraft(
        id=conversation.id,
        title=conversation.title,
        model_id=conversation.model_id,
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
        active_leaf_id=conversation.active_leaf_id,
        pinned=conversation.pinned,
        archived=conversation.archived,
        tags=conversation.tags,
        messages=[_message_draft(message) for message in conversation.messages],
        project_id=conversation.project_id,
    )


def _message_draft(message: ImportedMessage) -> ImportMessageDraft:
    feedback = message.feedback
    return ImportMessageDraft(
        id=message.id,
        parent_id=UNSET if message.follows_active_leaf else message.parent_id,
        role=message.role,
        content=message.content,
        created_at=message.created_at,
        model_id=message.model_id,
        is_error=message.is_error,
        error_message=message.error_message,
        status=message.status,
        feedback=None
        if feedback is None
        else FeedbackDraft(
            rating=None if feedback.rating is None else feedback.rating.lower(),
            comment=feedback.comment,
            updated_at=feedback.updated_at,
        ),
    )


# --- export ------------------------------------------------------------------------------


def _export(args: argparse.Namespace) -> int:
    _check_settings()
    try:
        with _destination(args.output) as out:
            asyncio.run(_run_export(args.user, out, args.format))
    except KeyboardInterrupt:
        print("export: interrupted; nothing was written to the output", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        return _fail("export", f"cannot write {args.output}: {exc.strerror}")
    return 0


@contextmanager
def _destination(output: Path | None) -> Iterator[IO[str]]:
    """Standard output, or PATH.partial renamed to PATH once the export is whole."""
    if output is None:
        yield sys.stdout
        return
    partial = output.with_name(output.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8", newline="\n") as out:
            yield out
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)


async def _run_export(user_id: str, out: IO[str], format: str) -> None:
    async with _user_chat(user_id, connections=4) as chat:
        total = sum(
            [
                await chat.count_conversations(ConversationFilter(archived=archived))
                for archived in (False, True)
            ]
        )
        progress = Progress(out=sys.stderr, action="export", total=total)
        with ExportWriter(out, format="ndjson" if format == "ndjson" else "json") as writer:
            async for project in chat.export_projects():
                writer.project(exported_project(project))
            async for conversation, messages in chat.export_conversations():
                # Message by message, so that one large content at most is in memory.
                writer.begin(exported(conversation, []))
                for message in messages:
                    if message.content_ref is not None:
                        message = await chat.whole(message)
                    writer.message(_exported_message(message))
                writer.end()
                progress.advance(conversations=1, messages=len(messages))
        progress.close()


def exported(
    conversation: ConversationRecord, messages: list[MessageRecord]
) -> ImportedConversation:
    """A stored conversation in the transfer model our export writer takes."""
    leaf = conversation.active_leaf
    return ImportedConversation(
        id=conversation.id,
        title=conversation.title,
        model_id=conversation.model_id,
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
        messages=[_exported_message(message) for message in messages],
        active_leaf_id=None if leaf is None else leaf.message_id,
        pinned=conversation.pinned,
        archived=conversation.archived,
        tags=conversation.tags,
        project_id=conversation.project_id,
    )


def exported_project(project: ProjectRecord) -> ImportedProject:
    """A stored project in the transfer model our export writer takes."""
    return ImportedProject(
        id=project.id,
        name=project.name,
        instructions=project.instructions,
        created_at=project.created_at,
        updated_at=project.updated_at,
    )


def _exported_message(message: MessageRecord) -> ImportedMessage:
    feedback = message.feedback
    return ImportedMessage(
        id=message.id,
        parent_id=message.parent_id,
        role=message.role,
        content=message.content,
        created_at=message.created_at,
        model_id=message.model_id,
        is_error=message.is_error,
        error_message=message.error_message,
        status=message.status,
        feedback=None
        if feedback is None
        else Feedback(
            rating=None if feedback.rating is None else "UP" if feedback.rating == "up" else "DOWN",
            comment=feedback.comment,
            updated_at=feedback.updated_at,
        ),
    )


# --- delete-user-data --------------------------------------------------------------------


def _delete(args: argparse.Namespace) -> int:
    _check_settings()
    try:
        confirmed = asyncio.run(_run_delete(args.user, ask=not args.yes))
    except KeyboardInterrupt:
        return _interrupted("delete-user-data")
    if not confirmed:
        return _fail("delete-user-data", "not confirmed; nothing was deleted")
    return 0


async def _run_delete(user_id: str, *, ask: bool) -> bool:
    async with _user_chat(user_id, connections=8) as chat:
        remaining = sum(
            [
                await chat.count_conversations(ConversationFilter(archived=archived))
                for archived in (False, True)
            ]
        )
        if ask and not _confirmed(user_id, remaining):
            return False
        progress = Progress(out=sys.stdout, action="delete", total=remaining)
        while True:
            erased = await chat.delete_all_data()
            progress.advance(
                conversations=remaining - erased.conversations_remaining,
                messages=erased.messages_deleted,
            )
            remaining = erased.conversations_remaining
            if erased.done:
                break
        progress.close()
        return True


def _confirmed(user_id: str, conversations: int) -> bool:
    print(
        f"Delete every conversation ({conversations:,}), project, message and change of user "
        f"{user_id!r}? This cannot be undone. Type yes to go on: ",
        end="",
        file=sys.stderr,
        flush=True,
    )
    answer = sys.stdin.readline()
    if not sys.stdin.isatty():
        # The answer was not echoed, so end the question's line.
        print(file=sys.stderr)
    return answer.strip().lower() in ("y", "yes")
