"""Input rules every transport shares, checked before anything is written.

Each failure is a ValidationError naming the input field as the client spelled it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import cast

from graphql_api.errors import ValidationError
from graphql_api.settings import InputLimits
from graphql_api.storage.checks import canonical_uuid, is_link_id
from graphql_api.storage.records import (
    FINISH_STATUSES,
    MESSAGE_STATUSES,
    ROLES,
    FinishStatus,
    MessageStatus,
    Rating,
    Role,
)
from graphql_api.storage.text import fold

TITLE_MAX_CHARS = 200
PROJECT_NAME_MAX_CHARS = 200
PROJECT_INSTRUCTIONS_MAX_CHARS = 8000
MAX_NODES = 100
MODEL_ID_MAX_CHARS = 128
ERROR_MESSAGE_MAX_BYTES = 4 * 1024


def uuid_id(value: str, *, field: str) -> str:
    """The canonical (lowercase) form of a UUID id; storage keys only ever hold that form."""
    canonical = canonical_uuid(value)
    if canonical is None:
        raise ValidationError(field, "must be a UUID (8-4-4-4-12 hex digits)")
    return canonical


def share_link_id(value: str, *, field: str = "id") -> str:
    """A share link's id as issued: 32 characters of base64url, case-sensitive."""
    if not is_link_id(value):
        raise ValidationError(field, "is not a share link id")
    return value


def node_id(value: str) -> str:
    """An id as node(id) looks it up: a UUID in its canonical lower case (any case names the
    same conversation or project), anything else (a share link's id) exactly as given."""
    return canonical_uuid(value) or value


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


def project_name(value: str, *, field: str = "name") -> str:
    """As a title: trimmed, 1 to PROJECT_NAME_MAX_CHARS characters, one line."""
    trimmed = value.strip()
    _utf8_size(trimmed, field)
    if not trimmed:
        raise ValidationError(field, "must not be empty")
    if len(trimmed) > PROJECT_NAME_MAX_CHARS:
        raise ValidationError(field, f"must be at most {PROJECT_NAME_MAX_CHARS} characters")
    if _has_control(trimmed):
        raise ValidationError(field, "must not contain control characters")
    return trimmed


def project_instructions(value: str | None, *, field: str = "instructions") -> str | None:
    """Free text (lines and tabs allowed), at most PROJECT_INSTRUCTIONS_MAX_CHARS characters;
    blank is none."""
    if value is None:
        return None
    _utf8_size(value, field)
    if len(value) > PROJECT_INSTRUCTIONS_MAX_CHARS:
        raise ValidationError(field, f"must be at most {PROJECT_INSTRUCTIONS_MAX_CHARS} characters")
    if any(unicodedata.category(char) == "Cc" and char not in "\n\r\t" for char in value):
        raise ValidationError(field, "must not contain control characters but line breaks and tabs")
    return value if value.strip() else None


def node_ids(values: Sequence[str], *, field: str = "ids") -> Sequence[str]:
    if len(values) > MAX_NODES:
        raise ValidationError(field, f"must hold at most {MAX_NODES} ids")
    return values


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


TAG_MAX_CHARS = 40
MAX_TAGS = 20
TITLE_SEARCH_MAX_CHARS = 200
FEEDBACK_COMMENT_MAX_BYTES = 4 * 1024


def tag(value: str, *, field: str = "tag") -> str:
    trimmed = value.strip()
    _utf8_size(trimmed, field)
    if not trimmed:
        raise ValidationError(field, "must not be empty")
    if len(trimmed) > TAG_MAX_CHARS:
        raise ValidationError(field, f"must be at most {TAG_MAX_CHARS} characters")
    if _has_control(trimmed):
        raise ValidationError(field, "must not contain control characters")
    return trimmed


def tags(values: Sequence[str], *, field: str = "tags") -> tuple[str, ...]:
    """Each trimmed; the same tag in another case (or accent) given twice is kept once."""
    kept: dict[str, str] = {}
    for index, value in enumerate(values):
        checked = tag(value, field=f"{field}[{index}]")
        kept.setdefault(fold(checked), checked)
    if len(kept) > MAX_TAGS:
        raise ValidationError(field, f"must be at most {MAX_TAGS} tags")
    return tuple(kept.values())


def title_search(value: str, *, field: str = "titleContains") -> str:
    _utf8_size(value, field)
    if not value.strip():
        raise ValidationError(field, "must not be empty")
    if len(value) > TITLE_SEARCH_MAX_CHARS:
        raise ValidationError(field, f"must be at most {TITLE_SEARCH_MAX_CHARS} characters")
    return value.strip()


def rating(value: str | None, *, field: str = "rating") -> Rating | None:
    if value is None:
        return None
    if value not in ("up", "down"):
        raise ValidationError(field, "must be UP or DOWN")
    return cast(Rating, value)


def feedback_comment(value: str | None, *, field: str = "comment") -> str | None:
    if value is None:
        return None
    if _utf8_size(value, field) > FEEDBACK_COMMENT_MAX_BYTES:
        raise ValidationError(field, f"must be at most {FEEDBACK_COMMENT_MAX_BYTES} bytes of UTF-8")
    return value


# --- imports (importConversations and the import command) ---------------------------------

IMPORT_MAX_CONVERSATIONS = 100
IMPORT_MAX_MESSAGES = 500
# Content and error messages of one call, in UTF-8 bytes, unless the call holds one message:
# with the ids, times and JSON around them, a call stays under a 1 MiB request body.
IMPORT_MAX_BYTES = 768 * 1024
# An import's times come from other devices' clocks, which may run a little ahead of ours;
# further ahead than this is a mistake that would pin a conversation to the top of the list.
IMPORT_CLOCK_SKEW = timedelta(days=1)


def import_size(
    *, conversations: int, messages: int, content_bytes: int, field: str = "conversations"
) -> None:
    """One call's bound; a larger conversation is imported in parts, with the same ids."""
    if conversations == 0:
        raise ValidationError(field, "must not be empty")
    if conversations > IMPORT_MAX_CONVERSATIONS:
        raise ValidationError(field, f"must be at most {IMPORT_MAX_CONVERSATIONS} in one call")
    if messages > IMPORT_MAX_MESSAGES:
        raise ValidationError(
            field,
            f"must hold at most {IMPORT_MAX_MESSAGES} messages in one call; import a large "
            "conversation in parts with the same ids",
        )
    if content_bytes > IMPORT_MAX_BYTES and messages > 1:
        # One message larger than this (up to MAX_CONTENT_BYTES) is a call of its own.
        raise ValidationError(
            field,
            f"must hold at most {IMPORT_MAX_BYTES} bytes of message content in one call (or "
            "one message alone); import a large conversation in parts with the same ids",
        )


def message_status(value: str, *, field: str = "status") -> MessageStatus:
    """An imported message's status; a streaming or interrupted one is stored to read
    INTERRUPTED, and a late finishMessage completes it."""
    if value not in MESSAGE_STATUSES:
        raise ValidationError(
            field, "must be one of COMPLETE, STREAMING, STOPPED, FAILED, INTERRUPTED"
        )
    return value


def imported_content(
    value: str, *, status: MessageStatus, max_bytes: int, field: str = "content"
) -> str:
    """As `content`, but a message streamed and not complete may be empty (stopped, failed
    or cut off before its first delta)."""
    if status == "complete":
        return content(value, max_bytes=max_bytes, field=field)
    checked = final_content(value, max_bytes=max_bytes, field=field)
    return "" if checked is None else checked


def past_moment(value: datetime, *, now: datetime, field: str) -> datetime:
    """An imported time: aware, and not later than now (give or take a device's clock)."""
    if value.tzinfo is None:
        raise ValidationError(field, "must carry a UTC offset")
    if value > now + IMPORT_CLOCK_SKEW:
        raise ValidationError(field, "must not be in the future")
    return value.astimezone(UTC)


# --- streamed messages (startMessage, appendMessage, finishMessage) --------------------------


def seq(value: int, *, field: str = "seq") -> int:
    """A delta's place in its message: 1, 2, 3, ..."""
    if value < 1:
        raise ValidationError(field, "must be 1 or more (the first delta is seq 1)")
    return value


def last_seq(value: int, *, field: str = "lastSeq") -> int:
    """The last seq a finisher sent; 0 when it sent none."""
    if value < 0:
        raise ValidationError(field, "must be 0 or more")
    return value


def after_seq(value: int, *, field: str = "afterSeq") -> int:
    """Where a reader's text of a stream ends: the last seq it received, 0 for none."""
    if value < 0:
        raise ValidationError(field, "must be 0 or more (0: from the start)")
    return value


def delta(value: str, *, max_bytes: int, field: str = "delta") -> str:
    """Held as content is: not empty, as an empty delta would take a seq and carry nothing."""
    return content(value, max_bytes=max_bytes, field=field)


def finish_status(value: str, *, field: str = "status") -> FinishStatus:
    if value not in FINISH_STATUSES:
        raise ValidationError(field, "must be COMPLETE, STOPPED or FAILED")
    return value


def final_content(value: str | None, *, max_bytes: int, field: str = "content") -> str | None:
    """The text a finish gives, which replaces the streamed one; empty is allowed (a stopped
    or failed answer may have none), over the content limit is not."""
    if value is not None and _utf8_size(value, field) > max_bytes:
        raise ValidationError(field, f"must be at most {max_bytes} bytes of UTF-8")
    return value


def finish_error_message(
    status: FinishStatus, value: str | None, *, field: str = "errorMessage"
) -> str | None:
    """Only a FAILED message carries an error message (and is an error: storage sets
    isError from the status)."""
    if value is not None and status != "failed":
        raise ValidationError(field, "is only for a message finished as FAILED")
    return error_message(value, field=field)
