"""GraphQL types read straight from the domain records they are built from.

A type such as Message is built from its record by `from_record`, and execution then reads
the built object's attributes. Planned execution (planned.py) can skip the object: when every
field a document selects of the type reads from the record itself, it reads them there, and a
page of 50 messages builds no Message at all.

`reads_record(Record, field=reader, ...)` on a type declares how: each field reads the
record's attribute of the same name unless a reader is given for it, and a field whose type is
itself read from a record reads that type's record. The contract, which the tests check for
every field of every such type: a reader gives what `from_record` puts in the field, or, for a
field of a record-read type, the record that type's `from_record` builds it from. A field the
record does not hold and no reader names is not read from the record: a selection that asks
for it builds the object, as does one asking for a field with a resolver.

A field that yields such a type built from a record its parent holds (an edge's node) says so
with `metadata=record_of("record")`: its resolver builds the object, which is the general way;
the planned way reads the parent's `record` instead.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

Record = TypeVar("Record")
Type = TypeVar("Type", bound=type)

_VIEW: Final = "__record_view__"
_RECORD_OF: Final = "graphql_api.record_of"

Reader = Callable[[Any], Any]


@dataclasses.dataclass(frozen=True, slots=True)
class RecordView:
    """How a type's fields read from its record (see the module's docstring)."""

    record: type
    readers: Mapping[str, Reader]

    def reader(self, python_name: str) -> Reader | None:
        """How field `python_name` reads from the record; None when the record cannot say."""
        reader = self.readers.get(python_name)
        if reader is not None:
            return reader
        if python_name in _attributes(self.record):
            return operator.attrgetter(python_name)
        return None


def reads_record(
    record: type[Record], **readers: Callable[[Record], Any]
) -> Callable[[Type], Type]:
    """Declare the decorated type readable from `record` (put it above @strawberry.type)."""

    def declare(cls: Type) -> Type:
        unknown = set(readers) - set(getattr(cls, "__annotations__", {}))
        if unknown:
            raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(unknown))}")
        setattr(cls, _VIEW, RecordView(record, readers))
        return cls

    return declare


def view_of(cls: Any) -> RecordView | None:
    """The record view `cls` declares itself (not one a base class declares)."""
    view = vars(cls).get(_VIEW) if isinstance(cls, type) else None
    return view if isinstance(view, RecordView) else None


def record_of(attribute: str) -> dict[str, str]:
    """A field's metadata: its value is built from the record in its parent's `attribute`."""
    return {_RECORD_OF: attribute}


def record_attribute(metadata: Mapping[Any, Any] | None) -> str | None:
    """The attribute `record_of` named in a field's metadata, if any."""
    attribute = (metadata or {}).get(_RECORD_OF)
    return attribute if isinstance(attribute, str) else None


def _attributes(record: type) -> frozenset[str]:
    if dataclasses.is_dataclass(record):
        return frozenset(field.name for field in dataclasses.fields(record))
    return frozenset(getattr(record, "__annotations__", {}))
