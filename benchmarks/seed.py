"""The seeded data: one table per dataset, written with batch_put (no transactions).

Items are exactly what storage writes for the same history: per message the message item and
its MSGID# marker, per conversation its item (with the lastMessage preview and messageCount)
and its OWNER item, and per user the PROFILE counter. One table per dataset, because moto's
Query scans its whole table and its transactions copy it: a small table keeps the write and
headline figures about the service, not about the size of unrelated data.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from graphql_api.storage import items
from graphql_api.storage.batch import batch_put
from graphql_api.storage.client import ChatTable
from graphql_api.storage.profile import list_counter
from graphql_api.storage.records import (
    ConversationRecord,
    Item,
    MessageRecord,
    Role,
    Segment,
    Tree,
)

_VOCABULARY = (
    "the model answered with a short summary of the request and listed three options for "
    "the next step including a table of costs a code sample in python and a note about "
    "latency limits retries idempotency keys pagination cursors dynamodb partitions and "
    "what to measure before changing anything in production"
)
_WORDS = _VOCABULARY.split()
_TEXT = " ".join(random.Random(7).choice(_WORDS) for _ in range(4000))  # noqa: S311
SEED_CHUNK = 2500


@dataclasses.dataclass(frozen=True, kw_only=True)
class DatasetSpec:
    """A user's history: one focus conversation (the one opened), others, and delete victims."""

    name: str
    focus_history: int
    others: int
    other_history: int
    # Conversations that writes go to, round robin, so concurrent writes do not contend.
    writable: int = 0
    victims: int = 0
    victim_history: int = 0
    # The focus conversation as a tree: this many branches of `focus_history` messages each,
    # every one an alternative to the first answer; the newest is active.
    focus_branches: int = 1
    # Of the others, how many are pinned (the newest ones) and archived (the oldest).
    pinned: int = 0
    archived: int = 0

    @property
    def conversations(self) -> int:
        return 1 + self.others + self.writable + self.victims

    @property
    def item_count(self) -> int:
        messages = (
            self.focus_history * self.focus_branches
            + self.others * self.other_history
            + self.writable * self.other_history
            + self.victims * self.victim_history
        )
        return 2 * messages + 2 * self.conversations + 1


@dataclasses.dataclass(frozen=True, kw_only=True)
class Dataset:
    """A seeded dataset, as the driver needs it (JSON-serializable)."""

    name: str
    table: str
    username: str
    user_id: str
    token: str
    focus_id: str
    focus_history: int
    conversations: int
    items: int
    writable_ids: list[str]
    victim_ids: list[str]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Dataset:
        return cls(**data)


def content(rng: random.Random, role: Role) -> str:
    # Short questions, longer answers: a page of 50 is then ~25 KB, like a real chat.
    length = rng.randint(80, 240) if role == "user" else rng.randint(400, 1200)
    start = rng.randrange(0, len(_TEXT) - length)
    return _TEXT[start : start + length]


def new_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def conversation_items(
    rng: random.Random,
    *,
    user_id: str,
    conversation_id: str,
    history: int,
    start: datetime,
    spacing: timedelta,
    branches: int = 1,
    pinned: bool = False,
    archived: bool = False,
) -> Iterator[Item]:
    """The items of one conversation, messages alternating user/assistant from `start`; with
    `branches`, each segment after the first forks from the first message and holds `history`
    messages of its own."""
    last: MessageRecord | None = None
    root: MessageRecord | None = None
    children: list[str] = []
    index = 0
    for segment in range(branches):
        parent = root if segment else None
        first_depth = 2 if segment else 1
        for depth in range(first_depth, first_depth + history):
            role: Role = "user" if depth % 2 == 1 else "assistant"
            last = MessageRecord(
                id=new_id(rng),
                conversation_id=conversation_id,
                user_id=user_id,
                role=role,
                content=content(rng, role),
                created_at=start + index * spacing,
                model_id=None if role == "user" else "bench-model-1",
                is_error=False,
                error_message=None,
                parent_id=None if parent is None else parent.id,
                segment=segment,
                depth=depth,
            )
            index += 1
            if root is None:
                root = last
            if depth == 2:
                children.append(last.id)
            parent = last
            yield items.message_item(last)
            yield items.marker_item(last)
    if branches > 1:
        yield items.tree_item(
            conversation_id,
            Tree(
                segments={n: Segment(number=n, parent=0, fork_depth=1) for n in range(1, branches)},
                children={(0, 1): tuple(children)},
                revision=branches - 1,
            ),
        )
    yield items.owner_item(conversation_id, user_id)
    yield items.conversation_item(
        ConversationRecord(
            id=conversation_id,
            user_id=user_id,
            title=f"Conversation {conversation_id[:8]}",
            model_id="bench-model-1",
            created_at=start,
            updated_at=start + max(index - 1, 0) * spacing,
            message_count=index,
            version=1,
            last_message=None if last is None else items.preview(last),
            active_leaf=None if last is None else last.position,
            segment_count=branches,
            pinned=pinned,
            archived=archived,
        )
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class SeededIds:
    focus_id: str
    writable_ids: list[str]
    victim_ids: list[str]


async def seed(table: ChatTable, spec: DatasetSpec, *, user_id: str) -> SeededIds:
    """Write `spec`'s history for `user_id`, all in the past, the focus conversation newest."""
    rng = random.Random(f"{spec.name}/{user_id}")  # noqa: S311 - reproducible data, not secrets
    now = datetime.now(UTC).replace(microsecond=0)
    focus_id = new_id(rng)
    writable = [new_id(rng) for _ in range(spec.writable)]
    victims = [new_id(rng) for _ in range(spec.victims)]
    others = [new_id(rng) for _ in range(spec.others)]
    plan: list[tuple[str, int]] = [
        *((cid, spec.victim_history) for cid in victims),
        *((cid, spec.other_history) for cid in others),
        *((cid, spec.other_history) for cid in writable),
        (focus_id, spec.focus_history * spec.focus_branches),
    ]
    # The oldest others archived, the newest pinned: the lists they land in are what matters.
    archived = set(others[: spec.archived])
    pinned = set(others[len(others) - spec.pinned :]) if spec.pinned else set()
    # Messages one second apart (a millisecond for huge histories), conversations one after the
    # other, ending a day ago: every write the benchmark makes comes later.
    spacings = [timedelta(seconds=1) if n <= 10_000 else timedelta(milliseconds=1) for _, n in plan]
    total = sum(((n + 1) * s for (_, n), s in zip(plan, spacings, strict=True)), timedelta())
    start = now - timedelta(days=1) - total
    chunk: list[Item] = [
        items.profile_item(
            user_id,
            counters={
                list_counter(archived=True, pinned=False): spec.archived,
                list_counter(archived=False, pinned=True): spec.pinned,
                list_counter(archived=False, pinned=False): (
                    spec.conversations - spec.archived - spec.pinned
                ),
            },
        )
    ]
    for (conversation_id, history), spacing in zip(plan, spacings, strict=True):
        branches = spec.focus_branches if conversation_id == focus_id else 1
        for item in conversation_items(
            rng,
            user_id=user_id,
            conversation_id=conversation_id,
            history=history // branches,
            start=start,
            spacing=spacing,
            branches=branches,
            pinned=conversation_id in pinned,
            archived=conversation_id in archived,
        ):
            chunk.append(item)
            if len(chunk) >= SEED_CHUNK:
                await batch_put(table, chunk, concurrency=4)
                chunk = []
        start += (history + 1) * spacing
    if chunk:
        await batch_put(table, chunk, concurrency=4)
    return SeededIds(focus_id=focus_id, writable_ids=writable, victim_ids=victims)
