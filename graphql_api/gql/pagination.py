"""Opaque, signed cursors and the page window a connection's arguments ask for.

A cursor is base64url(version | position | tag). The position is a timestamp in
microseconds and an item id; the tag is a truncated HMAC-SHA256 over the kind of list, the
scope it was issued for (a hash of the caller's user id, and for messages the conversation
id) and the position. The scope is never written into the cursor: a cursor used by another
user, in another conversation or on another kind of list simply fails its tag.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import hashlib
import hmac
import re
import struct
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

import strawberry

from graphql_api.storage.records import ConversationPosition, MessagePosition

from .errors import UserInputError

_VERSION = 1
_BODY = struct.Struct(">Bq16s")  # version, microseconds since the epoch, id as UUID bytes
_TAG_BYTES = 16
_CURSOR_BYTES = _BODY.size + _TAG_BYTES
# Well above any cursor we issue; refuses hostile input before any decoding work.
_MAX_CURSOR_CHARS = 96
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)

PositionT = TypeVar("PositionT", ConversationPosition, MessagePosition)


class CursorError(Exception):
    """A cursor that is malformed, tampered with or issued for another list."""


class Kind(enum.Enum):
    CONVERSATIONS = b"conversations"
    MESSAGES = b"messages"


@dataclasses.dataclass(frozen=True)
class CursorCodec:
    """Cursors for one caller; build one per request."""

    secret: bytes
    user_id: str

    def conversation(self, position: ConversationPosition) -> str:
        return self._encode(Kind.CONVERSATIONS, b"", position.updated_at, position.conversation_id)

    def message(self, conversation_id: str, position: MessagePosition) -> str:
        return self._encode(
            Kind.MESSAGES, _uuid_bytes(conversation_id), position.created_at, position.message_id
        )

    def decode_conversation(self, cursor: str) -> ConversationPosition:
        moment, item_id = self._decode(Kind.CONVERSATIONS, b"", cursor)
        return ConversationPosition(updated_at=moment, conversation_id=item_id)

    def decode_message(self, conversation_id: str, cursor: str) -> MessagePosition:
        moment, item_id = self._decode(Kind.MESSAGES, _uuid_bytes(conversation_id), cursor)
        return MessagePosition(created_at=moment, message_id=item_id)

    def _tag(self, kind: Kind, scope: bytes, body: bytes) -> bytes:
        user = hashlib.sha256(self.user_id.encode()).digest()
        # Every part but the body has a fixed length or comes first, so no two different
        # (kind, scope, body) triples can produce the same MAC input.
        message = b"|".join((b"cursor", kind.value, user, scope, body))
        return hmac.new(self.secret, message, hashlib.sha256).digest()[:_TAG_BYTES]

    def _encode(self, kind: Kind, scope: bytes, moment: datetime, item_id: str) -> str:
        micros = (moment - _EPOCH) // _ONE_MICROSECOND
        body = _BODY.pack(_VERSION, micros, _uuid_bytes(item_id))
        raw = body + self._tag(kind, scope, body)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def _decode(self, kind: Kind, scope: bytes, cursor: str) -> tuple[datetime, str]:
        raw = _unbase64(cursor)
        body, tag = raw[: _BODY.size], raw[_BODY.size :]
        if not hmac.compare_digest(tag, self._tag(kind, scope, body)):
            raise CursorError("cursor does not belong to this list")
        version, micros, item_id = _BODY.unpack(body)
        if version != _VERSION:
            raise CursorError("unsupported cursor version")
        try:
            moment = _EPOCH + micros * _ONE_MICROSECOND
        except OverflowError:
            raise CursorError("cursor position out of range") from None
        return moment, str(uuid.UUID(bytes=item_id))


def _uuid_bytes(value: str) -> bytes:
    # Storage only ever holds canonical UUIDs, so every id we sign fits in 16 bytes.
    return uuid.UUID(value).bytes


def _unbase64(cursor: str) -> bytes:
    # Unpadded base64url only, so each cursor has exactly one spelling.
    if len(cursor) > _MAX_CURSOR_CHARS or not _BASE64URL.fullmatch(cursor):
        raise CursorError("malformed cursor")
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        raw = base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise CursorError("malformed cursor") from None
    # Trailing bits the decoder ignores would give one cursor several spellings.
    if len(raw) != _CURSOR_BYTES or base64.urlsafe_b64encode(raw).rstrip(b"=") != cursor.encode():
        raise CursorError("malformed cursor")
    return raw


@dataclasses.dataclass(frozen=True, kw_only=True)
class PageArgs:
    """A connection's arguments as the client sent them."""

    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Window(Generic[PositionT]):
    """What to read: `limit` items after `cursor` (forward) or before it (backward)."""

    limit: int
    forward: bool
    cursor: PositionT | None


def _size(name: str, value: int | None, *, default: int, maximum: int) -> int:
    if value is None:
        return default
    if value < 0:
        raise UserInputError(name, "must not be negative")
    if value > maximum:
        raise UserInputError(name, f"must be at most {maximum}")
    return value


def window(
    args: PageArgs,
    *,
    default_forward: bool,
    default_size: int,
    max_size: int,
    decode: Callable[[str], PositionT],
) -> Window[PositionT]:
    """The window `args` ask for; UserInputError naming the argument when they are invalid.

    Only one direction at a time: `first`/`after` page forward, `last`/`before` backward, and
    with neither the list starts at its default end.
    """
    if args.first is not None and args.last is not None:
        raise UserInputError("first", "cannot be combined with last")
    if args.after is not None and args.before is not None:
        raise UserInputError("after", "cannot be combined with before")
    if args.first is not None and args.before is not None:
        raise UserInputError("before", "cannot be combined with first; use after")
    if args.last is not None and args.after is not None:
        raise UserInputError("after", "cannot be combined with last; use before")
    if args.first is not None or args.after is not None:
        forward = True
    elif args.last is not None or args.before is not None:
        forward = False
    else:
        forward = default_forward
    size_name, size = ("first", args.first) if forward else ("last", args.last)
    cursor_name, cursor = ("after", args.after) if forward else ("before", args.before)
    limit = _size(size_name, size, default=default_size, maximum=max_size)
    try:
        position = None if cursor is None else decode(cursor)
    except CursorError:
        raise UserInputError(cursor_name, "is not a valid cursor for this list") from None
    return Window(limit=limit, forward=forward, cursor=position)


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None

    @classmethod
    def of(cls, cursors: list[str], *, has_previous: bool, has_next: bool) -> PageInfo:
        return cls(
            has_next_page=has_next,
            has_previous_page=has_previous,
            start_cursor=cursors[0] if cursors else None,
            end_cursor=cursors[-1] if cursors else None,
        )
