"""Relay's PageInfo, built from a page of storage records and their cursors, and what a
connection's selection asks of its edges."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import strawberry
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

Record = TypeVar("Record")


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


def selected_fields(selections: Iterable[Selection]) -> Iterator[SelectedField]:
    """The fields among `selections`, through fragment spreads and inline fragments."""
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        elif isinstance(selection, FragmentSpread | InlineFragment):
            yield from selected_fields(selection.selections)


def selected(info: strawberry.Info[Any], name: str) -> list[SelectedField]:
    """The sub-fields called `name` this field's selection asks for, through fragments too."""
    return [
        child
        for field in info.selected_fields
        for child in selected_fields(field.selections)
        if child.name == name
    ]


def selects_edge_cursors(info: strawberry.Info[Any]) -> bool:
    """Whether this connection field's selection reads `edges { cursor }` anywhere.

    Directives can only drop fields, never add them, so a selection without a cursor field
    never reads one; with one, even under @skip, the cursors are signed.
    """
    return any(
        child.name == "cursor"
        for edges in selected(info, "edges")
        for child in selected_fields(edges.selections)
    )


def edge_cursors(
    records: Sequence[Record], sign: Callable[[Record], str], *, every_edge: bool
) -> list[str]:
    """The cursor of each record's edge, or, when no edge's cursor is selected, only the two
    that pageInfo reports (the others stay empty and are never read): each cursor is a MAC,
    and clients that page by pageInfo never read the rest of a 50-message page's."""
    if every_edge or len(records) <= 2:
        return [sign(record) for record in records]
    unread = [""] * len(records)
    unread[0], unread[-1] = sign(records[0]), sign(records[-1])
    return unread
