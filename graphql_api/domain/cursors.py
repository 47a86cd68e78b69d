"""Opaque, signed positions in the caller's lists: page cursors and sync tokens.

A cursor is base64url(body | tag). The body is a fixed layout per kind of list with a
version byte first; the tag is a 128-bit keyed BLAKE2b over the kind, the scope it was issued
for (a hash of the caller's user id, and for messages the conversation id, for conversations
which list) and the body. The scope is never written into the cursor: one used by another
user, in another conversation or on another kind of list simply fails its tag.

Version 2 tagged with a truncated HMAC-SHA256 instead, at twice the cost per cursor (a page
signs one per edge). Its cursors and sync tokens are still read, because a device may hold a
sync token for days, but never issued.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import functools
import hashlib
import hmac
import re
import struct
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from graphql_api.storage.checks import LINK_ID_BYTES
from graphql_api.storage.records import (
    ConversationPosition,
    ConversationRecord,
    MessagePosition,
    MessageRecord,
    ProjectPosition,
    ShareLinkPosition,
)

_VERSION = 3
_HMAC_VERSION = 2
_TAG_BYTES = 16
# Keyed BLAKE2b is a MAC in one C call; its key is at most 64 bytes, the secret any length.
_KEY_PERSON = b"cursor-key"
# Well above any cursor we issue; refuses hostile input before any decoding work.
_MAX_CURSOR_CHARS = 96
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)
# The `group` of the list of conversations in no project.
NO_PROJECT = "-"


class CursorError(Exception):
    """A cursor that is malformed, tampered with or issued for another list."""


class Kind(enum.Enum):
    # version, pinned, microseconds since the epoch of the last update, the id as UUID bytes
    CONVERSATIONS = (b"conversations", struct.Struct(">B?q16s"))
    # version, segment, depth, the id as UUID bytes
    MESSAGES = (b"messages", struct.Struct(">Bii16s"))
    # version, the change-log version, microseconds since the epoch it was issued at
    CHANGES = (b"changes", struct.Struct(">Bqq"))
    # version, microseconds since the epoch of the last update, the id as UUID bytes
    PROJECTS = (b"projects", struct.Struct(">Bq16s"))
    # version, microseconds since the epoch of the creation, the link id's random bytes
    SHARE_LINKS = (b"shareLinks", struct.Struct(f">Bq{LINK_ID_BYTES}s"))

    @property
    def label(self) -> bytes:
        return self.value[0]

    @property
    def body(self) -> struct.Struct:
        return self.value[1]


# Read once: a page signs one cursor per edge, and an enum member's value is a property.
_CONVERSATIONS_BODY = Kind.CONVERSATIONS.body
_MESSAGES_BODY = Kind.MESSAGES.body


@dataclasses.dataclass(frozen=True, kw_only=True)
class SyncPosition:
    """How far a device has synced: the last change version it has, and when it was told."""

    version: int
    issued_at: datetime


@dataclasses.dataclass(frozen=True)
class CursorCodec:
    """Cursors for one caller; build one per request."""

    secret: bytes
    user_id: str

    def conversation(
        self,
        position: ConversationPosition,
        *,
        archived: bool = False,
        group: str | None = None,
    ) -> str:
        """A position in a conversation list: the home list or the archive, or with `group`
        (a project id, or NO_PROJECT) the one of a project or of those in none."""
        return self._conversation(
            position.pinned, position.updated_at, position.conversation_id, archived, group
        )

    def conversation_of(
        self, record: ConversationRecord, *, archived: bool = False, group: str | None = None
    ) -> str:
        """The cursor of `record`'s position, without building the position (a page signs
        one per edge)."""
        return self._conversation(record.pinned, record.updated_at, record.id, archived, group)

    def _conversation(
        self,
        pinned: bool,
        updated_at: datetime,
        conversation_id: str,
        archived: bool,
        group: str | None,
    ) -> str:
        body = _CONVERSATIONS_BODY.pack(
            _VERSION, pinned, _micros(updated_at), _uuid_bytes(conversation_id)
        )
        return self._sign(Kind.CONVERSATIONS, _list_scope(archived, group), body)

    def decode_conversation(
        self, cursor: str, *, archived: bool = False, group: str | None = None
    ) -> ConversationPosition:
        _, pinned, micros, item_id = self._open(
            Kind.CONVERSATIONS, _list_scope(archived, group), cursor
        )
        return ConversationPosition(
            pinned=pinned, updated_at=_moment(micros), conversation_id=_uuid(item_id)
        )

    def project(self, position: ProjectPosition) -> str:
        body = Kind.PROJECTS.body.pack(
            _VERSION, _micros(position.updated_at), _uuid_bytes(position.project_id)
        )
        return self._sign(Kind.PROJECTS, b"", body)

    def decode_project(self, cursor: str) -> ProjectPosition:
        _, micros, item_id = self._open(Kind.PROJECTS, b"", cursor)
        return ProjectPosition(updated_at=_moment(micros), project_id=_uuid(item_id))

    def share_link(self, position: ShareLinkPosition) -> str:
        body = Kind.SHARE_LINKS.body.pack(
            _VERSION, _micros(position.created_at), _link_bytes(position.link_id)
        )
        return self._sign(Kind.SHARE_LINKS, b"", body)

    def decode_share_link(self, cursor: str) -> ShareLinkPosition:
        _, micros, raw = self._open(Kind.SHARE_LINKS, b"", cursor)
        link_id = base64.urlsafe_b64encode(raw).decode("ascii")
        return ShareLinkPosition(created_at=_moment(micros), link_id=link_id)

    def message(self, conversation_id: str, position: MessagePosition) -> str:
        return self._message(conversation_id, position.segment, position.depth, position.message_id)

    def message_of(self, conversation_id: str, record: MessageRecord) -> str:
        """The cursor of `record`'s position, without building the position (a page signs
        one per edge)."""
        return self._message(conversation_id, record.segment, record.depth, record.id)

    def _message(self, conversation_id: str, segment: int, depth: int, message_id: str) -> str:
        body = _MESSAGES_BODY.pack(_VERSION, segment, depth, _uuid_bytes(message_id))
        return self._sign(Kind.MESSAGES, self._conversation_scope(conversation_id), body)

    def decode_message(self, conversation_id: str, cursor: str) -> MessagePosition:
        _, segment, depth, item_id = self._open(
            Kind.MESSAGES, self._conversation_scope(conversation_id), cursor
        )
        if segment < 0 or depth < 1:
            raise CursorError("cursor position out of range")
        return MessagePosition(segment=segment, depth=depth, message_id=_uuid(item_id))

    def sync_token(self, position: SyncPosition) -> str:
        body = Kind.CHANGES.body.pack(_VERSION, position.version, _micros(position.issued_at))
        return self._sign(Kind.CHANGES, b"", body)

    def decode_sync_token(self, token: str) -> SyncPosition:
        _, version, micros = self._open(Kind.CHANGES, b"", token)
        if version < 0:
            raise CursorError("sync token out of range")
        return SyncPosition(version=version, issued_at=_moment(micros))

    @functools.cached_property
    def _key(self) -> bytes:
        return hashlib.blake2b(self.secret, digest_size=64, person=_KEY_PERSON).digest()

    @functools.cached_property
    def _user(self) -> bytes:
        return hashlib.sha256(self.user_id.encode()).digest()

    @functools.cached_property
    def _conversation_scopes(self) -> dict[str, bytes]:
        return {}

    def _conversation_scope(self, conversation_id: str) -> bytes:
        scope = self._conversation_scopes.get(conversation_id)
        if scope is None:
            scope = self._conversation_scopes[conversation_id] = _uuid_bytes(conversation_id)
        return scope

    @functools.cached_property
    def _prefixes(self) -> dict[tuple[int, bytes], bytes]:
        return {}

    def _prefix(self, kind: Kind, scope: bytes) -> bytes:
        # No label holds the separator, the user hash has a fixed length and each kind fixes
        # its body's length (and so its scope's), so no two different (kind, scope, body)
        # triples can produce the same MAC input. Built once per list, not once per edge.
        # (Keyed by the member's id: an enum member hashes in Python, its id in C.)
        prefix = self._prefixes.get((id(kind), scope))
        if prefix is None:
            prefix = b"|".join((b"cursor", kind.label, self._user, scope, b""))
            self._prefixes[id(kind), scope] = prefix
        return prefix

    @functools.cached_property
    def _signers(self) -> dict[tuple[int, bytes], hashlib.blake2b]:
        return {}

    def _signer(self, kind: Kind, scope: bytes) -> hashlib.blake2b:
        """The keyed BLAKE2b that has read the prefix of (kind, scope): each cursor of a list
        copies it and adds only its body, instead of keying and hashing the prefix again."""
        signer = self._signers.get((id(kind), scope))
        if signer is None:
            signer = hashlib.blake2b(key=self._key, digest_size=_TAG_BYTES)
            signer.update(self._prefix(kind, scope))
            self._signers[id(kind), scope] = signer
        return signer

    def _tag(self, version: int, kind: Kind, scope: bytes, body: bytes) -> bytes:
        if version == _HMAC_VERSION:
            message = self._prefix(kind, scope) + body
            return hmac.digest(self.secret, message, "sha256")[:_TAG_BYTES]
        tag = self._signer(kind, scope).copy()
        tag.update(body)
        return tag.digest()

    def _sign(self, kind: Kind, scope: bytes, body: bytes) -> str:
        raw = body + self._tag(_VERSION, kind, scope, body)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def _open(self, kind: Kind, scope: bytes, cursor: str) -> tuple[Any, ...]:
        raw = _unbase64(cursor, kind.body.size + _TAG_BYTES)
        body, tag = raw[: kind.body.size], raw[kind.body.size :]
        version = body[0]
        if version not in (_VERSION, _HMAC_VERSION):
            raise CursorError("unsupported cursor version")
        if not hmac.compare_digest(tag, self._tag(version, kind, scope, body)):
            raise CursorError("cursor does not belong to this list")
        return kind.body.unpack(body)


def _list_scope(archived: bool, group: str | None) -> bytes:
    # The home lists' scopes are those of version 2, so their cursors stay valid; a group's
    # adds the group (a project's 16 bytes, or "none"). Scopes may differ in length: each
    # kind's body has a fixed one, so the MAC input still reads back one way only.
    listed = b"archived" if archived else b"active"
    if group is None:
        return listed
    return listed + b"|" + (b"none" if group == NO_PROJECT else _uuid_bytes(group))


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _ONE_MICROSECOND


def _moment(micros: int) -> datetime:
    try:
        return _EPOCH + micros * _ONE_MICROSECOND
    except OverflowError:
        raise CursorError("cursor position out of range") from None


def _uuid(raw: bytes) -> str:
    return str(uuid.UUID(bytes=raw))


def _uuid_bytes(value: str) -> bytes:
    # Storage only ever holds canonical UUIDs, so every id we sign fits in 16 bytes; their
    # hex digits read directly cost a third of parsing a UUID (a page signs one per edge).
    # Anything else (braces, a URN, bare hex, not hex at all) gets uuid.UUID's verdict.
    if len(value) == 36 and value[8] == value[13] == value[18] == value[23] == "-":
        try:
            raw = bytes.fromhex(value.replace("-", ""))
        except ValueError:
            pass
        else:
            if len(raw) == 16:
                return raw
    return uuid.UUID(value).bytes


def _link_bytes(link_id: str) -> bytes:
    """A link id's random bytes (its base64url has no padding: 24 bytes are 32 characters)."""
    return base64.urlsafe_b64decode(link_id)


def _unbase64(cursor: str, size: int) -> bytes:
    # Unpadded base64url only, so each cursor has exactly one spelling.
    if len(cursor) > _MAX_CURSOR_CHARS or not _BASE64URL.fullmatch(cursor):
        raise CursorError("malformed cursor")
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        raw = base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise CursorError("malformed cursor") from None
    # Trailing bits the decoder ignores would give one cursor several spellings.
    if len(raw) != size or base64.urlsafe_b64encode(raw).rstrip(b"=") != cursor.encode():
        raise CursorError("malformed cursor")
    return raw
