"""Opaque, signed cursors for the caller's lists.

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
from datetime import UTC, datetime, timedelta

from graphql_api.storage.records import ConversationPosition, MessagePosition

_VERSION = 1
_BODY = struct.Struct(">Bq16s")  # version, microseconds since the epoch, id as UUID bytes
_TAG_BYTES = 16
_CURSOR_BYTES = _BODY.size + _TAG_BYTES
# Well above any cursor we issue; refuses hostile input before any decoding work.
_MAX_CURSOR_CHARS = 96
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)


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
