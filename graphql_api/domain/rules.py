"""Input rules every transport shares, checked before anything is written.

Each failure is a ValidationError naming the input field as the client spelled it.
"""

from __future__ import annotations

import re
import unicodedata

from graphql_api.errors import ValidationError
from graphql_api.settings import InputLimits
from graphql_api.storage.records import ROLES, Role

TITLE_MAX_CHARS = 200
MODEL_ID_MAX_CHARS = 128
ERROR_MESSAGE_MAX_BYTES = 4 * 1024

# The 8-4-4-4-12 form only: uuid.UUID also takes braces, URNs and bare hex, which would give
# one conversation several spellings.
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def uuid_id(value: str, *, field: str) -> str:
    """The canonical (lowercase) form of a UUID id; storage keys only ever hold that form."""
    if not _UUID.fullmatch(value):
        raise ValidationError(field, "must be a UUID (8-4-4-4-12 hex digits)")
    return value.lower()


def _has_control(value: str) -> bool:
    return any(unicodedata.category(char) == "Cc" for char in value)


def _utf8_size(value: str, field: str) -> int:
    # JSON can carry lone surrogates, which no UTF-8 encoder (nor DynamoDB) accepts.
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValidationError(field, "must be valid Unicode text") from None


def title(value: str, *, field: str = "title") -> str:
    trimmed = value.strip()
    _utf8_size(trimmed, field)
    if not trimmed:
        raise ValidationError(field, "must not be empty")
    if len(trimmed) > TITLE_MAX_CHARS:
        raise ValidationError(field, f"must be at most {TITLE_MAX_CHARS} characters")
    if _has_control(trimmed):
        raise ValidationError(field, "must not contain control characters")
    return trimmed


def model_id(value: str | None, *, field: str = "modelId") -> str | None:
    if value is None:
        return None
    _utf8_size(value, field)
    if len(value) > MODEL_ID_MAX_CHARS:
        raise ValidationError(field, f"must be at most {MODEL_ID_MAX_CHARS} characters")
    if _has_control(value):
        raise ValidationError(field, "must not contain control characters")
    return value


def content(value: str, *, max_bytes: int, field: str = "content") -> str:
    size = _utf8_size(value, field)
    if size == 0:
        raise ValidationError(field, "must not be empty")
    if size > max_bytes:
        raise ValidationError(field, f"must be at most {max_bytes} bytes of UTF-8")
    return value


def error_message(value: str | None, *, field: str = "errorMessage") -> str | None:
    if value is not None and _utf8_size(value, field) > ERROR_MESSAGE_MAX_BYTES:
        raise ValidationError(field, f"must be at most {ERROR_MESSAGE_MAX_BYTES} bytes of UTF-8")
    return value


def role(value: str, *, field: str = "role") -> Role:
    if value not in ROLES:
        raise ValidationError(field, f"must be one of {', '.join(ROLES)}")
    return value


def batch_size(count: int, *, limits: InputLimits, field: str = "messages") -> int:
    if count == 0:
        raise ValidationError(field, "must not be empty")
    if count > limits.max_batch_messages:
        raise ValidationError(field, f"must be at most {limits.max_batch_messages} messages")
    return count


def expected_version(value: int | None, *, field: str = "expectedVersion") -> int | None:
    if value is not None and value < 1:
        raise ValidationError(field, "must be a positive version")
    return value
