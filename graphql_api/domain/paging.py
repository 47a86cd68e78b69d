"""The page window a list's arguments ask for: direction, size and starting position."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Generic, TypeVar

from graphql_api.errors import ValidationError
from graphql_api.settings import InputLimits
from graphql_api.storage.records import ConversationPosition, MessagePosition, ProjectPosition

from .cursors import CursorError

PositionT = TypeVar("PositionT", ConversationPosition, MessagePosition, ProjectPosition)


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
        raise ValidationError(name, "must not be negative")
    if value > maximum:
        raise ValidationError(name, f"must be at most {maximum}")
    return value


def window(
    args: PageArgs,
    *,
    limits: InputLimits,
    default_forward: bool,
    decode: Callable[[str], PositionT],
) -> Window[PositionT]:
    """The window `args` ask for; ValidationError naming the argument when they are invalid.

    Only one direction at a time: `first`/`after` page forward, `last`/`before` backward, and
    with neither the list starts at its default end.
    """
    if args.first is not None and args.last is not None:
        raise ValidationError("first", "cannot be combined with last")
    if args.after is not None and args.before is not None:
        raise ValidationError("after", "cannot be combined with before")
    if args.first is not None and args.before is not None:
        raise ValidationError("before", "cannot be combined with first; use after")
    if args.last is not None and args.after is not None:
        raise ValidationError("after", "cannot be combined with last; use before")
    if args.first is not None or args.after is not None:
        forward = True
    elif args.last is not None or args.before is not None:
        forward = False
    else:
        forward = default_forward
    size_name, size = ("first", args.first) if forward else ("last", args.last)
    cursor_name, cursor = ("after", args.after) if forward else ("before", args.before)
    limit = _size(size_name, size, default=limits.default_page_size, maximum=limits.max_page_size)
    try:
        position = None if cursor is None else decode(cursor)
    except CursorError:
        raise ValidationError(cursor_name, "is not a valid cursor for this list") from None
    return Window(limit=limit, forward=forward, cursor=position)
