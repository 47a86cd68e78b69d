"""Our own export format, version 1; `schema/export.schema.json` is its contract.

Two layouts of the same records. JSON is one document, header first, then the projects, then
the conversations:
    {"format": "chat-history-api/export", "version": 1, "exportedAt": ...,
     "projects": [...], "conversations": [...]}
NDJSON is the header object alone on the first line, then one `{"project": {...}}` per line,
then one conversation per line, so a damaged line costs that record only. Projects come
first so that a reader creates each before the conversations in it. Field names and enum
values are the GraphQL schema's; timestamps are UTC with microseconds and a Z, as the API
serves them.
"""

from __future__ import annotations

import dataclasses
import io
import json
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import ijson

from . import jsonstream, tree
from .errors import MalformedConversation, MalformedExportError
from .jsonstream import as_list, as_object, iso_time, optional_str, required_str
from .model import (
    ExportFormat,
    Feedback,
    ImportedConversation,
    ImportedMessage,
    ImportedProject,
    Notes,
    Origin,
    ReadResult,
    RefusedConversation,
    Role,
    Status,
)

FORMAT: Final = "chat-history-api/export"
VERSION: Final = 1
# Every id of our own format is already a UUID; the namespace is never used to map one.
NAMESPACE: Final = uuid.UUID("3d0c2a4e-7f1b-4e8a-9c6d-2b5e8f0a1c03")
_ROLES: Final[dict[str, Role]] = {"USER": "user", "ASSISTANT": "assistant", "SYSTEM": "system"}
_ROLE_NAMES: Final = {role: name for name, role in _ROLES.items()}
_RATINGS: Final = ("UP", "DOWN")
_STATUSES: Final[dict[str, Status]] = {
    "COMPLETE": "complete",
    "STREAMING": "streaming",
    "STOPPED": "stopped",
    "FAILED": "failed",
    "INTERRUPTED": "interrupted",
}
_STATUS_NAMES: Final = {status: name for name, status in _STATUSES.items()}


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- writing: records to JSON-ready dicts (the writer streams them out).


def header(*, exported_at: datetime) -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, "exportedAt": format_timestamp(exported_at)}


def conversation_fields(conversation: ImportedConversation) -> dict[str, Any]:
    """A conversation's fields without its messages, which the writer streams after them.
    `projectId` only when it is in one: an export without projects reads as before them."""
    fields = {
        "id": conversation.id,
        "title": conversation.title,
        "modelId": conversation.model_id,
        "createdAt": format_timestamp(conversation.created_at),
        "updatedAt": format_timestamp(conversation.updated_at),
        "pinned": conversation.pinned,
        "archived": conversation.archived,
        "tags": list(conversation.tags),
        "activeLeafId": conversation.active_leaf_id,
    }
    if conversation.project_id is not None:
        fields["projectId"] = conversation.project_id
    return fields


def project_fields(project: ImportedProject) -> dict[str, Any]:
    return {
        "id": project.id,
        "name": project.name,
        "instructions": project.instructions,
        "createdAt": format_timestamp(project.created_at),
        "updatedAt": format_timestamp(project.updated_at),
    }


def message_fields(message: ImportedMessage) -> dict[str, Any]:
    feedback = message.feedback
    # Left out only where the file read left it out: its absence says what a null does not
    # (see _nodes). Storage holds no such message, so an export writes it for every one.
    parent = {} if message.follows_active_leaf else {"parentId": message.parent_id}
    fields: dict[str, Any] = {
        "id": message.id,
        **parent,
        "role": _ROLE_NAMES[message.role],
        "content": message.content,
        "createdAt": format_timestamp(message.created_at),
        "modelId": message.model_id,
        "isError": message.is_error,
        "errorMessage": message.error_message,
        "feedback": None
        if feedback is None
        else {
            "rating": feedback.rating,
            "comment": feedback.comment,
            "updatedAt": format_timestamp(feedback.updated_at),
        },
    }
    if message.status != "complete":
        # Absent means COMPLETE: every export written before streaming existed reads so.
        fields["status"] = _STATUS_NAMES[message.status]
    return fields


# --- reading.


def read(stream: io.BufferedReader, name: str) -> Iterator[ReadResult]:
    layout = _check_header(stream, name)
    if layout == "json":
        yield from _read_document(stream, name)
        return
    stream.readline()
    index = 0
    for line_number, line in enumerate(stream, start=2):
        if not line.strip():
            continue
        try:
            value: object = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            origin = Origin(file=name, index=index)
            reason = f"line {line_number} is not JSON: {exc}"
            yield RefusedConversation(origin=origin, reasons=(reason,))
        else:
            if isinstance(value, dict) and "project" in value:
                yield convert_project(value["project"], file=name, where=f"line {line_number}")
                continue
            yield convert(value, file=name, index=index)
        index += 1


def _read_document(stream: io.BufferedReader, name: str) -> Iterator[ReadResult]:
    """The projects, then the conversations, in one pass over the stream.

    ijson builds each conversation in C only when asked for one prefix. The projects are read
    first, event by event, up to where they end (a few KB, before any conversation); what
    that read took from the stream is then given again, ahead of the rest of it, to the fast
    reader of the conversations.
    """
    recording = _Recording(stream)
    try:
        projects = _leading_projects(recording)
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        raise MalformedExportError(
            f"{name}: the JSON breaks off among the projects: {exc}"
        ) from exc
    for index, raw in enumerate(projects):
        yield convert_project(raw, file=name, where=f"project #{index}")
    replay = io.BufferedReader(_Replay(bytes(recording.taken), stream))
    for index, raw in jsonstream.items(replay, prefix="conversations.item", name=name):
        yield convert(raw, file=name, index=index)


def _leading_projects(source: _Recording) -> list[object]:
    """The values of the document's `projects`, read until it ends or `conversations`
    starts (projects written after the conversations are not read)."""
    found: list[object] = []
    builder: ijson.ObjectBuilder | None = None
    for prefix, event, value in ijson.parse(source, use_float=True):
        if builder is not None:
            builder.event(event, value)
            if prefix == "projects.item" and event in ("end_map", "end_array"):
                found.append(builder.value)
                builder = None
        elif prefix == "projects.item":
            builder = ijson.ObjectBuilder()
            builder.event(event, value)
            if event not in ("start_map", "start_array"):
                found.append(builder.value)
                builder = None
        elif (prefix, event) == ("projects", "end_array") or (prefix, event, value) == (
            "",
            "map_key",
            "conversations",
        ):
            break
    return found


class _Recording:
    """A stream that keeps a copy of what it gives."""

    def __init__(self, stream: io.BufferedReader) -> None:
        self._stream = stream
        self.taken = bytearray()

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.taken += data
        return data


class _Replay(io.RawIOBase):
    """`first`, then the rest of `stream`."""

    def __init__(self, first: bytes, stream: io.BufferedReader) -> None:
        self._first = memoryview(first)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._first:
            size = min(len(buffer), len(self._first))
            buffer[:size] = self._first[:size]
            self._first = self._first[size:]
            return size
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def convert_project(raw: object, *, file: str, where: str) -> ImportedProject:
    """A project as the format writes it; a malformed one stops the import (its
    conversations would have nowhere to go)."""
    try:
        data = as_object(raw, where)
        created_at = _time(data.get("createdAt"), f"{where} createdAt")
        if created_at is None:
            raise MalformedConversation(f"{where} createdAt is missing")
        return ImportedProject(
            id=_uuid(data.get("id"), f"{where} id"),
            name=required_str(data.get("name"), f"{where} name"),
            instructions=optional_str(data.get("instructions"), f"{where} instructions"),
            created_at=created_at,
            updated_at=_time(data.get("updatedAt"), f"{where} updatedAt") or created_at,
        )
    except MalformedConversation as exc:
        raise MalformedExportError(f"{file}: {exc}") from None


def layout_of(stream: io.BufferedReader) -> ExportFormat | None:
    """ "json" or "ndjson" when the stream starts with our header, else None; consumes nothing."""
    layout, found = _sniff(stream)
    return layout if found.get("format") == FORMAT else None


def _sniff(stream: io.BufferedReader) -> tuple[ExportFormat | None, dict[str, object]]:
    # The header is read from the bytes already buffered: our writer puts it first, in well
    # under the 64 KB buffer. The document goes on with "conversations"; NDJSON's header ends.
    found: dict[str, object] = {}
    head = io.BytesIO(stream.peek(1))
    try:
        for prefix, event, value in ijson.parse(head, multiple_values=True):
            if prefix == "" and event == "map_key" and value in ("projects", "conversations"):
                return "json", found
            if prefix == "" and event == "end_map":
                return "ndjson", found
            if prefix in ("format", "version") and event in ("string", "number"):
                found[prefix] = value
    except ijson.JSONError:
        pass  # the buffered bytes end inside the document, or it is not JSON at all
    return None, found


def _check_header(stream: io.BufferedReader, name: str) -> ExportFormat:
    layout, found = _sniff(stream)
    if layout is None or found.get("format") != FORMAT:
        raise MalformedExportError(
            f"{name}: not a chat-history-api export: it must start with "
            f'{{"format": "{FORMAT}", "version": {VERSION}, ...}}'
        )
    if found.get("version") != VERSION:
        raise MalformedExportError(
            f"{name}: export version {found.get('version')!r}; this program reads version {VERSION}"
        )
    return layout


def convert(raw: object, *, file: str, index: int) -> ReadResult:
    origin = Origin(file=file, index=index)
    try:
        data = as_object(raw, "the conversation")
        title = data.get("title")
        origin = Origin(
            file=file,
            index=index,
            source_id=data.get("id") if isinstance(data.get("id"), str) else None,
            title=title if isinstance(title, str) else None,
        )
        notes = Notes()
        messages = as_list(data.get("messages"), "messages")
        header = tree.Header(
            source_id=_uuid(data.get("id"), "id"),
            title=required_str(title, "title"),
            model_id=optional_str(data.get("modelId"), "modelId"),
            created_at=_time(data.get("createdAt"), "createdAt"),
            updated_at=_time(data.get("updatedAt"), "updatedAt"),
            active_source_id=_optional_uuid(data.get("activeLeafId"), "activeLeafId"),
            pinned=_bool(data.get("pinned", False), "pinned"),
            archived=_bool(data.get("archived", False), "archived"),
            tags=tuple(required_str(tag, "tag") for tag in as_list(data.get("tags", []), "tags")),
        )
        built = tree.build(
            header, _nodes(messages), namespace=NAMESPACE, origin=origin, notes=notes
        )
        project_id = _optional_uuid(data.get("projectId"), "projectId")
        if isinstance(built, ImportedConversation) and project_id is not None:
            return dataclasses.replace(built, project_id=project_id)
        return built
    except MalformedConversation as exc:
        return RefusedConversation(origin=origin, reasons=(str(exc),))
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        return RefusedConversation(origin=origin, reasons=(f"unexpected structure: {exc}",))


def _nodes(messages: list[Any]) -> list[tree.Node]:
    """The messages, read as importConversations reads them: `parentId: null` is a first
    message; without parentId, a message follows the one before it, and the first one the
    conversation's active leaf where it is stored (a first message where nothing is)."""
    nodes: list[tree.Node] = []
    for position, raw in enumerate(messages):
        what = f"message #{position}"
        message = as_object(raw, what)
        source_id = _uuid(message.get("id"), f"{what} id")
        if "parentId" in message:
            parent = _optional_uuid(message["parentId"], f"{what} parentId")
        else:
            parent = nodes[-1].source_id if nodes else None
        nodes.append(
            tree.Node(
                source_id=source_id,
                parent_source_id=parent,
                message=_message(message, what),
                follows_active_leaf=not nodes and "parentId" not in message,
            )
        )
    return nodes


def _message(message: Mapping[str, Any], what: str) -> tree.Message:
    role = message.get("role")
    if role not in _ROLES:
        raise MalformedConversation(f"{what} role is {role!r}, not USER, ASSISTANT or SYSTEM")
    status = message.get("status", "COMPLETE")
    if status not in _STATUSES:
        raise MalformedConversation(f"{what} status is {status!r}, not a MessageStatus")
    if status == "COMPLETE":
        content = required_str(message.get("content"), f"{what} content")
    else:
        # A stream stopped, failed or cut off before its first delta has no text.
        content = optional_str(message.get("content"), f"{what} content") or ""
    return tree.Message(
        role=_ROLES[str(role)],
        content=content,
        created_at=_time(message.get("createdAt"), f"{what} createdAt"),
        model_id=optional_str(message.get("modelId"), f"{what} modelId"),
        is_error=_bool(message.get("isError", False), f"{what} isError"),
        error_message=optional_str(message.get("errorMessage"), f"{what} errorMessage"),
        feedback=_feedback(message.get("feedback"), f"{what} feedback"),
        status=_STATUSES[str(status)],
    )


def _feedback(raw: object, what: str) -> Feedback | None:
    if raw is None:
        return None
    data = as_object(raw, what)
    rating = data.get("rating")
    if rating is not None and rating not in _RATINGS:
        raise MalformedConversation(f"{what} rating is {rating!r}, not UP, DOWN or null")
    updated_at = _time(data.get("updatedAt"), f"{what} updatedAt")
    if updated_at is None:
        raise MalformedConversation(f"{what} updatedAt is missing")
    return Feedback(
        rating="UP" if rating == "UP" else "DOWN" if rating == "DOWN" else None,
        comment=optional_str(data.get("comment"), f"{what} comment"),
        updated_at=updated_at,
    )


def _uuid(value: object, what: str) -> str:
    text = required_str(value, what)
    try:
        parsed = uuid.UUID(text)
    except ValueError:
        raise MalformedConversation(f"{what} {text!r} is not a UUID") from None
    if str(parsed) != text.lower():
        raise MalformedConversation(f"{what} {text!r} is not a UUID in 8-4-4-4-12 form")
    return str(parsed)


def _optional_uuid(value: object, what: str) -> str | None:
    return None if value is None else _uuid(value, what)


def _time(value: object, what: str) -> datetime | None:
    return iso_time(value, what, naive_is_utc=False)


def _bool(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise MalformedConversation(f"{what} is not true or false")
    return value


def encode(fields: Mapping[str, Any]) -> str:
    """One record as compact JSON on one line (NDJSON needs the one line)."""
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
