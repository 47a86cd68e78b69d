"""DateTime: ISO-8601 in UTC with microseconds and a Z suffix, the form storage sorts by
(storage.records.format_timestamp, which the REST routes write too)."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry
from strawberry.types.scalar import ScalarDefinition

from graphql_api.storage.records import format_timestamp


def parse_datetime(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("DateTime must be an ISO-8601 string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("DateTime must carry a UTC offset")
    return parsed.astimezone(UTC)


DATETIME: ScalarDefinition = strawberry.scalar(
    name="DateTime",
    description="ISO-8601 date and time in UTC, e.g. 2025-01-31T12:00:00.000000Z.",
    serialize=format_timestamp,
    parse_value=parse_datetime,
)

SCALAR_MAP: dict[object, ScalarDefinition] = {datetime: DATETIME}
