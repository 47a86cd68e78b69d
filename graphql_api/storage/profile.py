"""The PROFILE item's counters: how many conversations each list and each tag holds, how
many of them are in some project (each project counts its own on its item, see projects.py),
and how many projects the user has.

The counters are moved in the same transaction as the conversations they count (through
writes.ProfileUpdate), so `totalCount` and `tags` are one consistent read. Temporary
conversations also leave an entry here naming what they count towards: once one has expired
it is subtracted at read time at once, and the next write of the user removes it for good,
whatever DynamoDB's TTL sweep has or has not done yet.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from .records import ConversationRecord
from .text import fold

_COUNT: Final = "count#"
_TAG: Final = "tag#"
_TAG_NAME: Final = "tagName#"
_TEMPORARY: Final = "temp#"
_STREAM: Final = "stream#"
_IN_PROJECTS: Final = "count#inProject#"
PROJECT_COUNTER: Final = "count#projects"


@dataclasses.dataclass
class ProfileUpdate:
    """Changes to the PROFILE item beside the version: counters and named entries."""

    deltas: dict[str, int] = dataclasses.field(default_factory=dict)
    assign: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    drop: set[str] = dataclasses.field(default_factory=set)

    def count(self, attribute: str, delta: int) -> None:
        total = self.deltas.get(attribute, 0) + delta
        if total:
            self.deltas[attribute] = total
        else:
            self.deltas.pop(attribute, None)


def list_counter(*, archived: bool, pinned: bool) -> str:
    return f"{_COUNT}{'archived' if archived else 'active'}#{'pinned' if pinned else 'unpinned'}"


def tag_counter(tag: str) -> str:
    return f"{_TAG}{fold(tag)}"


def in_projects_counter(*, archived: bool, pinned: bool) -> str:
    """How many of a list's conversations are in some project. The list of those in none is
    the difference, so conversations from before projects existed need no counter of it."""
    return (
        f"{_IN_PROJECTS}{'archived' if archived else 'active'}#{'pinned' if pinned else 'unpinned'}"
    )


def _counters_of(conversation: ConversationRecord) -> list[str]:
    counters = [list_counter(archived=conversation.archived, pinned=conversation.pinned)]
    if conversation.project_id is not None:
        counters.append(
            in_projects_counter(archived=conversation.archived, pinned=conversation.pinned)
        )
    counters += sorted({tag_counter(tag) for tag in conversation.tags})
    return counters


def record_change(
    update: ProfileUpdate,
    *,
    before: ConversationRecord | None,
    after: ConversationRecord | None,
) -> None:
    """Move the counters from what `before` counted towards to what `after` does."""
    for counter in _counters_of(before) if before is not None else ():
        update.count(counter, -1)
    for counter in _counters_of(after) if after is not None else ():
        update.count(counter, +1)
    if after is not None:
        for tag in after.tags:
            # The spelling shown for a tag is the one most recently given.
            update.assign[f"{_TAG_NAME}{fold(tag)}"] = {"S": tag}
    conversation = after or before
    if conversation is None or conversation.expires_at is None:
        return
    entry = f"{_TEMPORARY}{conversation.id}"
    if after is None:
        update.drop.add(entry)
    else:
        update.assign[entry] = {
            "M": {
                "expiresAt": {"N": str(math.ceil(after.expires_at.timestamp()))},  # type: ignore[union-attr]
                "counters": {"L": [{"S": counter} for counter in _counters_of(after)]},
            }
        }


def sweep_expired(update: ProfileUpdate, profile: Mapping[str, Any] | None, now: datetime) -> None:
    """Take expired temporary conversations out of the counters, for good."""
    for name, counters in _expired(profile, now):
        for counter in counters:
            update.count(counter, -1)
        update.drop.add(name)


def _expired(profile: Mapping[str, Any] | None, now: datetime) -> Iterable[tuple[str, list[str]]]:
    for name, value in (profile or {}).items():
        if not name.startswith(_TEMPORARY):
            continue
        entry = value["M"]
        if int(entry["expiresAt"]["N"]) <= now.timestamp():
            yield name, [counter["S"] for counter in entry["counters"]["L"]]


@dataclasses.dataclass(frozen=True)
class Counts:
    """The PROFILE counters as of `now`, expired temporary conversations taken out."""

    values: Mapping[str, int]
    tag_names: Mapping[str, str]

    def conversations(
        self, *, archived: bool | None, pinned: bool | None = None, in_project: bool | None = None
    ) -> int:
        """A list's count; `in_project` True: those in some project, False: in none."""
        total = 0
        for a in (False, True) if archived is None else (archived,):
            for p in (False, True) if pinned is None else (pinned,):
                grouped = self.values.get(in_projects_counter(archived=a, pinned=p), 0)
                if in_project is None:
                    total += self.values.get(list_counter(archived=a, pinned=p), 0)
                elif in_project:
                    total += grouped
                else:
                    total += self.values.get(list_counter(archived=a, pinned=p), 0) - grouped
        return total

    @property
    def projects(self) -> int:
        return self.values.get(PROJECT_COUNTER, 0)

    def tag(self, tag: str) -> int:
        return self.values.get(tag_counter(tag), 0)

    def tags(self) -> list[tuple[str, int]]:
        """Every tag in use with how many conversations carry it, most used first."""
        used = [
            (self.tag_names.get(name[len(_TAG) :], name[len(_TAG) :]), count)
            for name, count in self.values.items()
            if name.startswith(_TAG) and count > 0
        ]
        return sorted(used, key=lambda pair: (-pair[1], fold(pair[0])))


def counts(profile: Mapping[str, Any] | None, now: datetime) -> Counts:
    values: dict[str, int] = {}
    names: dict[str, str] = {}
    for name, value in (profile or {}).items():
        if name.startswith((_COUNT, _TAG)):
            values[name] = int(value["N"])
        elif name.startswith(_TAG_NAME):
            names[name[len(_TAG_NAME) :]] = value["S"]
    for _, counters in _expired(profile, now):
        for counter in counters:
            values[counter] = values.get(counter, 0) - 1
    return Counts(values=values, tag_names=names)


def stream_entry(conversation_id: str, message_id: str) -> str:
    """The PROFILE attribute of one open stream: a start adds it and a finish drops it, in
    their transactions, so a start counts the user's open streams in the item every write
    reads anyway."""
    return f"{_STREAM}{conversation_id}#{message_id}"


def open_streams(profile: Mapping[str, Any] | None) -> dict[str, tuple[str, str]]:
    """The open-stream entries: attribute name -> (conversation id, message id)."""
    entries: dict[str, tuple[str, str]] = {}
    for name in profile or {}:
        if name.startswith(_STREAM):
            conversation_id, _, message_id = name[len(_STREAM) :].partition("#")
            entries[name] = (conversation_id, message_id)
    return entries
