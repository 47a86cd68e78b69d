"""TransactWriteItems with named actions, so a cancellation is read by name, not by position.

A cancelled transaction reports one reason per action, in the order the actions were sent.
Reading them by index (`reasons[2::2]`) breaks silently the day an action is added; here each
action is added under a name, and the reasons come back keyed by those names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping
from typing import Any, Final

from botocore.exceptions import ClientError

from .client import ChatTable, error_code, error_from_client_error
from .items import Key
from .records import Item

TRANSACTION_LIMIT: Final = 100
# Cancellation reasons that say "try again", not "your condition is false".
_RETRYABLE_REASONS = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)
_UNDERSTOOD_REASONS = _RETRYABLE_REASONS | {"None", "ConditionalCheckFailed"}


@dataclasses.dataclass(frozen=True, slots=True)
class CancellationReason:
    code: str  # "None" for an action whose condition held
    item: Item | None  # the current item, when ReturnValuesOnConditionCheckFailure=ALL_OLD

    @property
    def condition_failed(self) -> bool:
        return self.code == "ConditionalCheckFailed"

    @property
    def conflicted(self) -> bool:
        return self.code in _RETRYABLE_REASONS


class TransactionCancelled(Exception):
    """Nothing was written; `reasons` says why, per action name."""

    def __init__(self, reasons: Mapping[Hashable, CancellationReason]) -> None:
        super().__init__("transaction cancelled")
        self.reasons = dict(reasons)

    def failed(self, name: Hashable) -> bool:
        """Whether the condition of the action called `name` was false."""
        return self.reasons[name].condition_failed

    def current(self, name: Hashable) -> Item | None:
        """The item the action called `name` found, when its condition failed and it asked."""
        reason = self.reasons[name]
        return reason.item if reason.condition_failed else None

    @property
    def conflicted(self) -> bool:
        """Whether any action met a concurrent transaction or throttling: worth retrying."""
        return any(reason.conflicted for reason in self.reasons.values())


def _expression(
    action: dict[str, Any],
    condition: str | None,
    values: Mapping[str, Any] | None,
    names: Mapping[str, str] | None,
    return_old: bool,
) -> dict[str, Any]:
    if condition is not None:
        action["ConditionExpression"] = condition
    if values:
        action["ExpressionAttributeValues"] = dict(values)
    if names:
        action["ExpressionAttributeNames"] = dict(names)
    if return_old:
        action["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return action


class Transaction:
    """Actions added by name, then committed as one TransactWriteItems."""

    def __init__(self, table: ChatTable) -> None:
        self._table = table
        self._actions: list[dict[str, Any]] = []
        self._names: list[Hashable] = []

    def __len__(self) -> int:
        return len(self._actions)

    def _add(self, name: Hashable, kind: str, action: dict[str, Any]) -> None:
        if name in self._names:
            raise ValueError(f"two actions named {name!r}")
        self._names.append(name)
        self._actions.append({kind: {"TableName": self._table.name, **action}})

    def put(
        self,
        name: Hashable,
        item: Item,
        *,
        condition: str | None = None,
        values: Mapping[str, Any] | None = None,
        names: Mapping[str, str] | None = None,
        return_old: bool = False,
    ) -> None:
        self._add(name, "Put", _expression({"Item": item}, condition, values, names, return_old))

    def update(
        self,
        name: Hashable,
        key: Key,
        *,
        update: str,
        condition: str | None = None,
        values: Mapping[str, Any] | None = None,
        names: Mapping[str, str] | None = None,
        return_old: bool = False,
    ) -> None:
        action = {"Key": key, "UpdateExpression": update}
        self._add(name, "Update", _expression(action, condition, values, names, return_old))

    def delete(
        self,
        name: Hashable,
        key: Key,
        *,
        condition: str | None = None,
        values: Mapping[str, Any] | None = None,
        names: Mapping[str, str] | None = None,
    ) -> None:
        self._add(name, "Delete", _expression({"Key": key}, condition, values, names, False))

    async def commit(self) -> None:
        """Write every action or none; TransactionCancelled when a condition or a race stopped
        it, a domain error when the engine refused it. Call inside `table.guard()`, which
        bounds it in time and turns connection failures into domain errors."""
        if len(self._actions) > TRANSACTION_LIMIT:
            raise ValueError(
                f"{len(self._actions)} actions exceed the limit of {TRANSACTION_LIMIT}"
            )
        try:
            await self._table.client.transact_write_items(TransactItems=self._actions)  # type: ignore[arg-type]
        except ClientError as exc:
            reasons = cancellation_reasons(exc)
            if reasons is None or not _understood(reasons, len(self._names)):
                # Refused, or cancelled for a reason no retry or settling changes: the count
                # of items tells an engine's smaller transaction limit from a bug of ours.
                raise error_from_client_error(
                    exc,
                    resource=self._table.name,
                    items=len(self._actions),
                    reasons=tuple(sorted({r.code for r in reasons or ()} - _UNDERSTOOD_REASONS)),
                ) from exc
            raise TransactionCancelled(dict(zip(self._names, reasons, strict=True))) from None


def _understood(reasons: list[CancellationReason], actions: int) -> bool:
    """Whether a cancellation names, for every action, a condition, a race or nothing: an
    engine that reports no reasons, or a ValidationError in one action, is refusing."""
    return len(reasons) == actions and all(reason.code in _UNDERSTOOD_REASONS for reason in reasons)


def cancellation_reasons(exc: ClientError) -> list[CancellationReason] | None:
    """The per-action reasons of a cancelled transaction; None for any other error."""
    if error_code(exc) != "TransactionCanceledException":
        return None
    reasons: list[dict[str, Any]] = list(exc.response.get("CancellationReasons", []))  # type: ignore[arg-type]
    return [CancellationReason(str(r.get("Code", "None")), r.get("Item")) for r in reasons]
