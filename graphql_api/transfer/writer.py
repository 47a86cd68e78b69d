"""The export writer: our format, written as it goes, one conversation in memory at most.

Projects go first (`project`), then conversations. A conversation too large to hold can be
streamed a message at a time with `begin`, `message` and `end`. The closing bracket of the
JSON document is written only by a clean `close`, so an export cut short by an error is not
valid JSON and cannot pass for a complete one.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import IO, Literal

from . import native
from .model import ExportFormat, ImportedConversation, ImportedMessage, ImportedProject


class ExportWriter:
    def __init__(
        self, out: IO[str], *, format: ExportFormat = "json", exported_at: datetime | None = None
    ) -> None:
        self._out = out
        self._format = format
        self._exported_at = exported_at or datetime.now(UTC)
        self._started = False
        self._section: Literal["projects", "conversations"] | None = None
        self._in_conversation = False
        self._first_record = True
        self._first_message = True
        self.projects = 0
        self.conversations = 0
        self.messages = 0

    def __enter__(self) -> ExportWriter:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if error is None:
            self.close()

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        header = native.encode(native.header(exported_at=self._exported_at))
        if self._format == "ndjson":
            self._out.write(header + "\n")
        else:
            self._out.write(header[:-1])

    def _enter(self, section: Literal["projects", "conversations"]) -> None:
        """Start the section of the records that follow; projects only before conversations."""
        self.start()
        if self._section == section:
            return
        if self._section == "conversations":
            raise RuntimeError("write the projects before the conversations")
        if self._format == "json":
            closing = "\n]" if self._section == "projects" else ""
            self._out.write(f'{closing},"{section}":[')
        self._section = section
        self._first_record = True

    def project(self, project: ImportedProject) -> None:
        self._enter("projects")
        fields = native.encode(native.project_fields(project))
        if self._format == "ndjson":
            self._out.write(f'{{"project":{fields}}}\n')
        else:
            self._out.write(("\n" if self._first_record else ",\n") + fields)
        self._first_record = False
        self.projects += 1

    def write(self, conversation: ImportedConversation) -> None:
        self.begin(conversation)
        for message in conversation.messages:
            self.message(message)
        self.end()

    def begin(self, conversation: ImportedConversation) -> None:
        """Opens a conversation; its `messages` are ignored: pass them to `message`."""
        if self._in_conversation:
            raise RuntimeError("end() the previous conversation first")
        self._enter("conversations")
        fields = native.encode(native.conversation_fields(conversation))
        separator = "" if self._first_record or self._format == "ndjson" else ","
        newline = "" if self._format == "ndjson" else "\n"
        self._out.write(f'{separator}{newline}{fields[:-1]},"messages":[')
        self._in_conversation = True
        self._first_record = False
        self._first_message = True

    def message(self, message: ImportedMessage) -> None:
        if not self._in_conversation:
            raise RuntimeError("begin() a conversation first")
        separator = "" if self._first_message else ","
        self._out.write(separator + native.encode(native.message_fields(message)))
        self._first_message = False
        self.messages += 1

    def end(self) -> None:
        if not self._in_conversation:
            raise RuntimeError("begin() a conversation first")
        self._out.write("]}\n" if self._format == "ndjson" else "]}")
        self._in_conversation = False
        self.conversations += 1

    def close(self) -> None:
        if self._in_conversation:
            raise RuntimeError("end() the last conversation before closing the export")
        self._enter("conversations")
        if self._format == "json":
            self._out.write("\n]}\n")
        self._out.flush()


def write_export(
    out: IO[str],
    conversations: Iterable[ImportedConversation],
    *,
    format: ExportFormat = "json",
    exported_at: datetime | None = None,
) -> ExportWriter:
    """Writes every conversation and closes the export; returns the writer for its counts."""
    with ExportWriter(out, format=format, exported_at=exported_at) as writer:
        for conversation in conversations:
            writer.write(conversation)
    return writer


async def write_export_async(
    out: IO[str],
    conversations: AsyncIterable[ImportedConversation],
    *,
    format: ExportFormat = "json",
    exported_at: datetime | None = None,
) -> ExportWriter:
    with ExportWriter(out, format=format, exported_at=exported_at) as writer:
        async for conversation in conversations:
            writer.write(conversation)
    return writer
