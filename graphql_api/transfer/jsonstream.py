"""Streaming JSON: one value at a time off a byte stream, and checked access into it.

The yajl2_c backend that ijson's wheels carry builds each conversation in C; a Python
backend would be several times slower on a file of hundreds of MB.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import ijson

from .errors import MalformedConversation, MalformedExportError


def first_char(stream: io.BufferedReader) -> str:
    """The first non-blank character of the stream, without consuming it ("" when empty)."""
    head = stream.peek(1).lstrip()[:1]
    return head.decode("ascii", errors="replace")


def items(stream: io.BufferedIOBase, *, prefix: str, name: str) -> Iterator[tuple[int, object]]:
    """The values under `prefix`, numbered from 0; a broken stream ends in one clear error."""
    index = 0
    try:
        for value in ijson.items(stream, prefix, use_float=True):
            yield index, value
            index += 1
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        raise MalformedExportError(
            f"{name}: the JSON breaks off in conversation #{index}: {_said(exc)}; "
            f"the {index} conversation(s) before it were read"
        ) from exc


def conversation_list(
    stream: io.BufferedReader, *, name: str, app: str
) -> Iterator[tuple[int, object]]:
    """The conversations of an export that is one JSON list of them (ChatGPT's, Claude's),
    numbered from 0."""
    if first_char(stream) != "[":
        raise MalformedExportError(f"{name}: a {app} export is a JSON list of conversations")
    return items(stream, prefix="item", name=name)


def _said(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."


# --- checked access. Every failure names what was expected where, for a refusal reason.


def as_object(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MalformedConversation(f"{what} is {_kind(value)}, not an object")
    return value


def as_list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise MalformedConversation(f"{what} is {_kind(value)}, not a list")
    return value


def optional_str(value: object, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise MalformedConversation(f"{what} is {_kind(value)}, not text")


def required_str(value: object, what: str) -> str:
    text = optional_str(value, what)
    if not text:
        raise MalformedConversation(f"{what} is missing")
    return text


def epoch_time(value: object, what: str) -> datetime | None:
    """Epoch seconds as an aware UTC datetime; None, 0 and blanks mean "not recorded"."""
    if value is None or value == 0 or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedConversation(f"{what} is {_kind(value)}, not epoch seconds")
    if not math.isfinite(value):
        raise MalformedConversation(f"{what} is not a finite number")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise MalformedConversation(f"{what} ({value}) is out of range") from None


def iso_time(value: object, what: str, *, naive_is_utc: bool) -> datetime | None:
    """An ISO-8601 timestamp in UTC. A source that writes no offset may be taken as UTC."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MalformedConversation(f"{what} is {_kind(value)}, not an ISO-8601 timestamp")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise MalformedConversation(f"{what} ({value!r}) is not an ISO-8601 timestamp") from None
    if moment.tzinfo is None:
        if not naive_is_utc:
            raise MalformedConversation(f"{what} ({value!r}) has no UTC offset")
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    return "an object"
