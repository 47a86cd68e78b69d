"""A conversation cut into parts that each fit one import call."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Final

from .model import ImportedConversation, ImportedMessage

# JSON names, ids, timestamps and model of one message, beside its content.
MESSAGE_OVERHEAD_BYTES: Final = 400


def import_batches(
    conversation: ImportedConversation, *, max_messages: int, max_bytes: int
) -> Iterator[ImportedConversation]:
    """The conversation with consecutive slices of its messages, parents always first.

    Every part carries the conversation's own fields, so each is a valid call on its own and
    the calls may be repeated (imports are idempotent by id). A message larger than
    `max_bytes` travels alone; the server decides whether it fits.
    """
    if max_messages < 1:
        raise ValueError("max_messages must be at least 1")
    part: list[ImportedMessage] = []
    size = 0
    for message in conversation.messages:
        cost = len(message.content.encode()) + MESSAGE_OVERHEAD_BYTES
        if part and (len(part) >= max_messages or size + cost > max_bytes):
            yield dataclasses.replace(conversation, messages=part)
            part, size = [], 0
        part.append(message)
        size += cost
    if part or not conversation.messages:
        yield dataclasses.replace(conversation, messages=part)
