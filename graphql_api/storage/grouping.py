"""How a conversation's write moves the counts kept on its projects' items.

A project item counts its conversations per list (archived or not, pinned or not:
items.project_counter), so a project's `conversationCount` and its lists' `totalCount` are
read with the project itself. Every write that puts a conversation in a project, takes it out,
archives or pins one there, or deletes one, moves these counts in its own transaction, with
ADD: the write need not read the project a conversation leaves (its id is on the conversation
item the write reads anyway), and writes of one user commit one at a time (the PROFILE
version), so the counts stay exact.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from graphql_api.errors import ProjectNotFoundError, UnavailableError

from . import items
from .records import ConversationRecord, ProjectRecord
from .transaction import Transaction, TransactionCancelled

# A project that is there, and a project at all: ids of conversations and projects share the
# key range, and an ADD on a missing item would create a stray one.
_A_PROJECT: Final = "attribute_exists(PK) AND #type = :project"
# A conversation enters only a project that is not being deleted: deleteProject waits for its
# counts to reach zero.
_OPEN: Final = " AND attribute_not_exists(deleting)"


def project_action(project_id: str) -> tuple[str, str]:
    return ("project", project_id)


def live_project(item: dict[str, Any] | None) -> ProjectRecord | None:
    """The project of an item of the CONV# range: None when there is none, it is a
    conversation, or the project is being deleted."""
    if item is None or not items.is_project(item):
        return None
    project = items.project_from_item(item)
    return None if project.deleting else project


def entering(before: ConversationRecord | None, after: ConversationRecord | None) -> str | None:
    """The project `after` is in that `before` was not in."""
    if after is None or after.project_id is None:
        return None
    if before is not None and before.project_id == after.project_id:
        return None
    return after.project_id


def record_grouping(
    transaction: Transaction,
    *,
    user_id: str,
    before: ConversationRecord | None,
    after: ConversationRecord | None,
) -> None:
    """Move the project counts from what `before` counted towards to what `after` does."""
    deltas: dict[str, dict[str, int]] = {}
    for record, sign in ((before, -1), (after, +1)):
        if record is None or record.project_id is None:
            continue
        counter = items.project_counter(archived=record.archived, pinned=record.pinned)
        moved = deltas.setdefault(record.project_id, {})
        moved[counter] = moved.get(counter, 0) + sign
    joined = entering(before, after)
    for project_id, moved in deltas.items():
        changed = sorted((counter, delta) for counter, delta in moved.items() if delta)
        if not changed:
            continue
        names = {"#type": "type"}
        values: dict[str, Any] = {":project": {"S": items.PROJECT}}
        adds = []
        for index, (counter, delta) in enumerate(changed):
            names[f"#c{index}"] = counter
            values[f":d{index}"] = {"N": str(delta)}
            adds.append(f"#c{index} :d{index}")
        transaction.update(
            project_action(project_id),
            items.project_key(user_id, project_id),
            update="ADD " + ", ".join(adds),
            condition=_A_PROJECT + (_OPEN if project_id == joined else ""),
            names=names,
            values=values,
        )


def settle_grouping(
    joined: str | None,
) -> Callable[[TransactionCancelled], Awaitable[None]]:
    """A plan's `settle` for a write that moves project counts: the project a conversation
    was entering went (or started deleting) after the read, so read and plan again, which
    then refuses it; any other refusal is not ours to explain."""

    async def settle(cancelled: TransactionCancelled) -> None:
        if joined is not None and cancelled.failed(project_action(joined)):
            return
        raise UnavailableError("the write could not be completed; try again")

    return settle


def ensure_open(item: dict[str, Any] | None) -> ProjectRecord:
    """The project a conversation is to enter, or ProjectNotFoundError."""
    project = live_project(item)
    if project is None:
        raise ProjectNotFoundError("project not found")
    return project
