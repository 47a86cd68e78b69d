"""Checks every storage function applies to what it is given, whichever aggregate it serves.

The rules below the transports already refuse bad input with a message for the client; these
are the storage layer's own guarantees, so that no caller can smuggle a key separator into a
key or write an item DynamoDB would refuse.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Final

from graphql_api.errors import ValidationError

from .items import item_size

ITEM_SIZE_LIMIT: Final = 400 * 1024
# The 8-4-4-4-12 form only: uuid.UUID also takes braces, URNs and bare hex, which would give
# one id several spellings.
_CANONICAL_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# A share link's id: 24 random bytes (192 bits) in unpadded base64url, 32 characters: never a
# UUID's 36, so a link's id names no conversation or project (keys.py).
LINK_ID_BYTES: Final = 24
_LINK_ID: Final = re.compile(r"[A-Za-z0-9_-]{32}")
# Room a message must leave for the conversation's own attributes when it becomes the
# conversation's lastMessage preview; titles and model ids are far smaller than this.
CONVERSATION_HEADROOM: Final = 8 * 1024


def canonical_uuid(value: str) -> str | None:
    """`value` in the one form ids are stored in (8-4-4-4-12, lowercase), or None if it is
    not a UUID in that form in any case."""
    lowered = value.lower()
    return lowered if _CANONICAL_UUID.fullmatch(lowered) else None


def checked_id(value: str, *, field: str) -> str:
    """A canonical lowercase UUID, so ids can never smuggle key separators into a key."""
    if not isinstance(value, str):
        raise ValidationError(field, "must be a UUID")
    canonical = canonical_uuid(value)
    if canonical is not None:
        return canonical
    try:
        uuid.UUID(value)
    except ValueError:
        raise ValidationError(field, "must be a UUID") from None
    # Braces, a URN or bare hex: a UUID, but one id must have one spelling.
    raise ValidationError(field, "must be a UUID in canonical 8-4-4-4-12 form")


def is_id(value: str) -> bool:
    try:
        checked_id(value, field="id")
    except ValidationError:
        return False
    return True


def is_link_id(value: object) -> bool:
    """Whether `value` has the shape of a share link's id (whether or not one exists)."""
    return isinstance(value, str) and _LINK_ID.fullmatch(value) is not None


def checked_user(user_id: str) -> str:
    if not user_id or "#" in user_id:
        raise ValidationError("userId", "is not a valid user id")
    return user_id


def ensure_fits(item: dict[str, Any], *, field: str, reserve: int = 0) -> None:
    if item_size(item) + reserve > ITEM_SIZE_LIMIT:
        raise ValidationError(field, "is too large: the item would exceed DynamoDB's 400 KB limit")
