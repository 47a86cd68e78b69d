"""Every write to a user's data goes through `commit`, which logs it as one change.

A write reads what it needs (always the user's PROFILE item, which holds the change-log
version), plans its actions from that snapshot, and commits them in ONE TransactWriteItems
together with two more: the PROFILE update that moves the version from what was read to the
next one (on the condition that it is still what was read), and the change-log item for that
next version. So:

- every committed write has exactly one change, numbered 1, 2, 3, ... per user with no gap:
  two concurrent writes of one user cannot both move the version from N, so the second is
  cancelled and tries again from a fresh snapshot;
- a write that fails writes no change, because nothing of the transaction is written;
- the snapshot is consistent for the whole transaction: no other write of the same user can
  have committed in between, or the version condition would have failed.

A write cannot forget its change: `Transaction`s for user data are only built here, and a
plan that changes nothing (a retried create, say) must say so by returning no change.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, Generic, TypeVar

from graphql_api.errors import UnavailableError

from . import items
from .batch import batch_get
from .client import ChatTable
from .items import Key
from .profile import ProfileUpdate, sweep_expired
from .records import ChangeKind, ChangeRecord, Item, MessagePosition
from .transaction import Transaction, TransactionCancelled

R = TypeVar("R")
logger = logging.getLogger(__name__)

PROFILE: Final = "profile"
CHANGE: Final = "change"
# Rounds of read-plan-commit before giving up; each lost race means another write of the same
# user committed (in another process: this one queues them). The deadline bounds the time.
MAX_ROUNDS: Final = 256


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What a write read, strongly consistent, at the start of its round."""

    user_id: str
    now: datetime
    found: Mapping[tuple[str, str], Item]

    def get(self, key: Key) -> Item | None:
        return self.found.get((key["PK"]["S"], key["SK"]["S"]))

    @property
    def profile(self) -> Item | None:
        return self.get(items.profile_key(self.user_id))

    @property
    def version(self) -> int:
        return items.change_version_of(self.profile)


@dataclasses.dataclass(frozen=True)
class ChangeDraft:
    kind: ChangeKind
    conversation_id: str | None
    messages: tuple[MessagePosition, ...] = ()
    project_id: str | None = None


@dataclasses.dataclass
class Plan(Generic[R]):
    """What a write will do, planned from one snapshot.

    `change` None means there is nothing to write: `result` is returned as it is (a retried
    create finding its conversation, an add whose messages are all stored already).
    `settle` is told of a cancellation the version did not cause, and either raises the
    domain error it means or returns, to read and plan again.
    """

    result: R
    change: ChangeDraft | None
    actions: Callable[[Transaction], None] = lambda transaction: None
    profile: ProfileUpdate = dataclasses.field(default_factory=ProfileUpdate)
    settle: Callable[[TransactionCancelled], Awaitable[None]] | None = None


async def commit(
    table: ChatTable,
    *,
    user_id: str,
    reads: Sequence[Key],
    plan: Callable[[Snapshot], Awaitable[Plan[R]]],
) -> R:
    """Read, plan and commit until the plan lands or the deadline passes; then tell the
    table's listener (live subscribers) about the change."""
    wanted = [items.key_of(key) for key in (items.profile_key(user_id), *reads)]
    async with table.guard(), table.writers.hold(user_id):
        for attempt in range(MAX_ROUNDS):
            snapshot = Snapshot(
                user_id=user_id, now=table.clock(), found=await batch_get(table, wanted)
            )
            planned = await plan(snapshot)
            if planned.change is None:
                return planned.result
            change = ChangeRecord(
                version=snapshot.version + 1,
                kind=planned.change.kind,
                conversation_id=planned.change.conversation_id,
                created_at=snapshot.now,
                messages=planned.change.messages,
                project_id=planned.change.project_id,
            )
            transaction = Transaction(table)
            planned.actions(transaction)
            sweep_expired(planned.profile, snapshot.profile, snapshot.now)
            _log(transaction, table, snapshot, planned.profile, change)
            try:
                await transaction.commit()
            except TransactionCancelled as cancelled:
                if cancelled.failed(PROFILE) or cancelled.conflicted:
                    # Another write of this user won the race (or DynamoDB asked us to back
                    # off): read again. Backing off spreads out a burst of one user's writes.
                    await table.backoff(min(attempt, 6))
                    continue
                if planned.settle is None:
                    raise UnavailableError("the write could not be completed; try again") from None
                await planned.settle(cancelled)
                continue
            break
        else:
            raise UnavailableError("too many concurrent changes; try again")
    await _tell(table, user_id, change)
    return planned.result


async def _tell(table: ChatTable, user_id: str, change: ChangeRecord) -> None:
    if table.listener is None:
        return
    try:
        await table.listener(user_id, change)
    except Exception:
        logger.warning("change %s committed but not announced", change.version, exc_info=True)


def _log(
    transaction: Transaction,
    table: ChatTable,
    snapshot: Snapshot,
    profile: ProfileUpdate,
    change: ChangeRecord,
) -> None:
    names: dict[str, str] = {"#version": "changeVersion"}
    values: dict[str, Any] = {":next": {"N": str(change.version)}}
    sets = ["#version = :next"]
    adds: list[str] = []
    for index, (attribute, value) in enumerate(profile.assign.items()):
        names[f"#s{index}"] = attribute
        values[f":s{index}"] = value
        sets.append(f"#s{index} = :s{index}")
    for index, (attribute, delta) in enumerate(profile.deltas.items()):
        names[f"#a{index}"] = attribute
        values[f":a{index}"] = {"N": str(delta)}
        adds.append(f"#a{index} :a{index}")
    removes = []
    for index, attribute in enumerate(sorted(profile.drop)):
        names[f"#r{index}"] = attribute
        removes.append(f"#r{index}")
    update = "SET " + ", ".join(sets)
    if adds:
        update += " ADD " + ", ".join(adds)
    if removes:
        update += " REMOVE " + ", ".join(removes)
    if snapshot.version == 0:
        condition = "attribute_not_exists(#version)"
    else:
        condition = "#version = :seen"
        values[":seen"] = {"N": str(snapshot.version)}
    transaction.update(
        PROFILE,
        items.profile_key(snapshot.user_id),
        update=update,
        condition=condition,
        names=names,
        values=values,
    )
    transaction.put(
        CHANGE,
        items.change_item(
            snapshot.user_id, change, expires_at=change.created_at + table.change_retention
        ),
        condition="attribute_not_exists(PK)",
    )
