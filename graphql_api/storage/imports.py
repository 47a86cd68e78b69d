"""Imports: conversations brought in whole from elsewhere (the app's local history, another
app's export), keeping their ids, branches, timestamps and order.

An import is idempotent by ids. The conversation is created with its own createdAt,
updatedAt, title and model unless the caller has it already (then those are left as they
are); an id another user holds is a conflict, as for create. A message whose MSGID# marker
exists is skipped, whatever it holds. The others are placed as `messages.add_to_conversation`
places a message with a parent: after the parent in the parent's segment when the parent has
no child yet, else on a new branch. A message given without a parent (UNSET, as a flat list
comes) follows the one before it in `messages`; the first of the list follows the stored
active leaf, as add places a message without one, and is a first message in a conversation
without messages. Placement depends only on what is stored and on the order of the messages,
so importing a conversation in parts, in order, over several calls gives what one call gives
(a flat list's later part continues from the active leaf, which the part before leaves at its
last message unless `active_leaf_id` names another).

Content too large for an item is put in the content bucket first, as add does, under a key
naming the message and its content (so writing it again is harmless); a refused transaction
deletes what it put there. Every write goes through writes.commit. One transaction holds at
most MAX_MESSAGES_PER_TRANSACTION messages (two actions each, beside the conversation, the
owner, the tree, the profile and the change) and MAX_BYTES_PER_TRANSACTION of their items,
so a large part takes several transactions, each its own change.

Unlike add, messages keep their own createdAt, and the invariants add relies on still hold:
- the conversation's updatedAt is at least every message's createdAt: it moves forward to the
  newest imported message (or the imported updatedAt), never back, so the next add starts
  after it and the home list keeps the imported order;
- a child is later than its parent: one that is not moves to 1 µs after it, as the export
  readers do;
- the active leaf is a segment's tip: the named leaf (without one, the last message imported)
  followed down its newest children, as setActiveBranch does;
- branches are numbered in the order they are imported, so at every fork the newest branch
  has the highest number; segmentCount and messageCount move with what is written.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Final

from graphql_api.errors import ConflictError, NotFoundError, ValidationError

from . import items, keys
from .batch import batch_get
from .checks import checked_id, checked_user, ensure_fits
from .client import ChatTable
from .content import is_large, object_key
from .deltas import streamed_preview
from .grouping import ensure_open, record_grouping
from .messages import newest_descendant_run, segment_tip
from .profile import record_change
from .records import (
    ONE_TICK,
    ROLES,
    ConversationRecord,
    Feedback,
    MessagePosition,
    MessageRecord,
    MessageStatus,
    Role,
    Segment,
    Tree,
    Unset,
    format_timestamp,
)
from .transaction import TRANSACTION_LIMIT, Transaction, TransactionCancelled
from .writes import ChangeDraft, Plan, Snapshot, commit

# Two actions per message, plus the conversation, the owner, the tree, the profile, the change.
MAX_MESSAGES_PER_TRANSACTION: Final = (TRANSACTION_LIMIT - 5) // 2
# DynamoDB refuses a transaction over 4 MB; the conversation, tree and profile take the rest.
MAX_BYTES_PER_TRANSACTION: Final = 3 * 1024 * 1024
# What a message's two items hold beside its content and error message: keys, ids, times.
_ITEM_OVERHEAD_BYTES: Final = 1024
_ABSENT: Final = "attribute_not_exists(PK)"
_ROOT: Final = (0, 0)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MessageImport:
    id: str
    # None: a first message. UNSET: the message before it in the list, or for the list's
    # first message the stored active leaf (a first message when there is none).
    parent_id: str | Unset | None
    role: Role
    content: str
    created_at: datetime
    model_id: str | None = None
    is_error: bool = False
    error_message: str | None = None
    feedback: Feedback | None = None
    # A message that was streaming (or interrupted) where it comes from is stored streaming,
    # its text the base of later deltas: its createdAt is its last activity, so it reads as
    # interrupted (unless imported within the lease), and a late finish completes it.
    status: MessageStatus = "complete"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ConversationImport:
    """A conversation as imported; `messages` lists every parent before its children."""

    id: str
    title: str
    model_id: str | None
    created_at: datetime
    updated_at: datetime | None = None
    # The newest message of the branch the user was on; None: the last message imported.
    active_leaf_id: str | None = None
    pinned: bool = False
    archived: bool = False
    tags: tuple[str, ...] = ()
    messages: Sequence[MessageImport] = ()
    # The caller's project it goes in when it is created; a stored one stays where it is.
    project_id: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Imported:
    conversation: ConversationRecord
    # Whether this call created the conversation, and how many messages it wrote or found.
    created: bool
    added: int
    skipped: int


@dataclasses.dataclass(frozen=True, slots=True)
class _Placed:
    position: MessagePosition
    created_at: datetime


@dataclasses.dataclass
class _Call:
    """What the transactions of one call stored so far."""

    placed: dict[str, _Placed] = dataclasses.field(default_factory=dict)
    occupied: dict[tuple[int, int], str] = dataclasses.field(default_factory=dict)
    # False once a transaction met a position taken meanwhile (a device adding to the same
    # conversation): from then on what lies after a parent is read, not remembered.
    trusted: bool = True
    # Content bucket keys the current transaction's new messages were uploaded under.
    uploaded: list[str] = dataclasses.field(default_factory=list)
    conversation: ConversationRecord | None = None
    created: bool = False
    added: int = 0
    skipped: int = 0


@dataclasses.dataclass(frozen=True)
class _Stored:
    """What one transaction wrote (or, with no records, found already there)."""

    conversation: ConversationRecord
    records: list[MessageRecord]
    skipped: int
    created: bool


async def import_conversation(
    table: ChatTable, *, user_id: str, conversation: ConversationImport
) -> Imported:
    """Create the conversation if absent and add the messages it does not hold yet.

    Raises ConflictError when another user holds the id (or it is being deleted), and
    ValidationError for a message whose parent is neither stored nor before it.
    """
    user_id = checked_user(user_id)
    header = _checked(table, user_id, conversation)
    call = _Call()
    for window in _windows(header.messages, offloaded=table.content is not None):
        call.uploaded = []
        try:
            stored = await commit(
                table,
                user_id=user_id,
                reads=_reads(user_id, header, window, call),
                plan=_planner(table, user_id, header, window, call),
            )
        except (ConflictError, NotFoundError, ValidationError):
            # Refused before anything committed: what was uploaded for it is nobody's.
            if table.content is not None and call.uploaded:
                await table.content.delete(call.uploaded)
            raise
        call.conversation = stored.conversation
        call.created = call.created or stored.created
        call.added += len(stored.records)
        call.skipped += stored.skipped
        for record in stored.records:
            call.placed[record.id] = _Placed(record.position, record.created_at)
            call.occupied[(record.segment, record.depth)] = record.id
    assert call.conversation is not None  # at least one window ran
    return Imported(
        conversation=await streamed_preview(table, call.conversation),
        created=call.created,
        added=call.added,
        skipped=call.skipped,
    )


def _windows(messages: Sequence[MessageImport], *, offloaded: bool) -> list[list[MessageImport]]:
    """The messages cut into transactions; one empty window for a conversation without.
    Content that goes to the content bucket (`offloaded`) leaves only its start in the item."""
    windows: list[list[MessageImport]] = []
    window: list[MessageImport] = []
    size = 0
    for message in messages:
        content = message.content
        if offloaded and is_large(content):
            content = content[: items.PREVIEW_CHARS]
        cost = _ITEM_OVERHEAD_BYTES + len(content.encode())
        cost += len((message.error_message or "").encode())
        if window and (
            len(window) == MAX_MESSAGES_PER_TRANSACTION or size + cost > MAX_BYTES_PER_TRANSACTION
        ):
            windows.append(window)
            window, size = [], 0
        window.append(message)
        size += cost
    windows.append(window)
    return windows


def _reads(
    user_id: str, header: ConversationImport, window: list[MessageImport], call: _Call
) -> list[items.Key]:
    """The owner, the conversation, the tree, and the markers of the window's messages and
    of every message they name (parents, the active leaf) that this call did not place."""
    cid = header.id
    ids = [message.id for message in window]
    # A first message given without a parent follows the active leaf, which the conversation
    # item (read already) names.
    named = [message.parent_id for message in window if isinstance(message.parent_id, str)]
    if header.active_leaf_id is not None:
        named.append(header.active_leaf_id)
    # In a fixed order, so that the same import sends the same requests (benchmarks replay it).
    outside = [name for name in dict.fromkeys(named) if name not in call.placed]
    project = [] if header.project_id is None else [items.project_key(user_id, header.project_id)]
    return [
        items.owner_key(cid),
        items.conversation_key(user_id, cid),
        items.tree_key(cid),
        *project,
        *(items.marker_key(cid, message_id) for message_id in dict.fromkeys([*ids, *outside])),
    ]


def _planner(
    table: ChatTable,
    user_id: str,
    header: ConversationImport,
    window: list[MessageImport],
    call: _Call,
) -> Callable[[Snapshot], Awaitable[Plan[_Stored]]]:
    async def plan(snapshot: Snapshot) -> Plan[_Stored]:
        stored = _owned(snapshot, user_id, header.id)
        fresh = [m for m in window if _marker(snapshot, header.id, m.id) is None]
        if stored is not None and not fresh:
            return Plan(result=_Stored(stored, [], len(window), False), change=None)
        if stored is None and header.project_id is not None:
            ensure_open(snapshot.get(items.project_key(user_id, header.project_id)))
        conversation = stored or _new_conversation(user_id, header)
        tree = items.tree_from_item(snapshot.get(items.tree_key(header.id)))
        placer = await _placer(table, snapshot, conversation, tree, fresh, call)
        records = await _offloaded(table, [placer.place(message) for message in fresh], call)
        leaf = await _active_leaf(table, snapshot, header, placer)
        newest = max(
            [conversation.updated_at, header.updated_at or header.created_at]
            + [record.created_at for record in records]
        )
        updated = dataclasses.replace(
            conversation,
            message_count=conversation.message_count + len(records),
            updated_at=newest,
            last_message=conversation.last_message if leaf is None else items.preview(leaf),
            active_leaf=conversation.active_leaf if leaf is None else leaf.position,
            segment_count=placer.segment_count,
        )
        ensure_fits(items.conversation_item(updated), field="title")
        result = _Stored(updated, records, len(window) - len(fresh), stored is None)
        return _plan_writes(result, stored, tree, placer.tree(), call)

    return plan


async def _offloaded(
    table: ChatTable, records: list[MessageRecord], call: _Call
) -> list[MessageRecord]:
    """The records, with content too large for an item put in the content bucket first (as
    add does), under keys that name the message and its content: writing again is harmless."""
    store = table.content
    if store is None:
        return records
    records = [
        dataclasses.replace(record, content_ref=object_key(record))
        if is_large(record.content)
        else record
        for record in records
    ]
    large = [record for record in records if record.content_ref is not None]
    await asyncio.gather(*(store.put(str(r.content_ref), r.content) for r in large))
    call.uploaded = [str(record.content_ref) for record in large]
    return records


def _owned(snapshot: Snapshot, user_id: str, conversation_id: str) -> ConversationRecord | None:
    """The caller's conversation, None when nobody holds the id; ConflictError otherwise."""
    node = snapshot.get(items.conversation_key(user_id, conversation_id))
    if node is not None and items.is_project(node):
        raise ConflictError("this id is already in use")
    owner = snapshot.get(items.owner_key(conversation_id))
    if owner is None:
        return None
    if not items.owned_by(owner, user_id):
        raise ConflictError("this conversation id is already in use")
    item = snapshot.get(items.conversation_key(user_id, conversation_id))
    if item is None or items.expired(item, snapshot.now) or items.marked_deleting(owner):
        raise ConflictError("this conversation is being deleted")
    return items.conversation_from_item(item)


def _marker(snapshot: Snapshot, conversation_id: str, message_id: str) -> MessagePosition | None:
    marker = snapshot.get(items.marker_key(conversation_id, message_id))
    return None if marker is None else items.marked_position(marker)


def _new_conversation(user_id: str, header: ConversationImport) -> ConversationRecord:
    return ConversationRecord(
        id=header.id,
        user_id=user_id,
        title=header.title,
        model_id=header.model_id,
        created_at=header.created_at,
        updated_at=max(header.created_at, header.updated_at or header.created_at),
        message_count=0,
        version=1,
        last_message=None,
        pinned=header.pinned,
        archived=header.archived,
        tags=header.tags,
        project_id=header.project_id,
    )


class _Placer:
    """Places a transaction's new messages one after another, as add would."""

    def __init__(
        self,
        conversation: ConversationRecord,
        tree: Tree,
        known: dict[str, _Placed],
        occupants: dict[tuple[int, int], str],
    ) -> None:
        self._conversation = conversation
        self._base = tree
        self._segments = dict(tree.segments)
        self._children = dict(tree.children)
        self._known = known
        self._occupants = occupants
        self.segment_count = conversation.segment_count
        # The deepest message placed in each segment: its tip, as placing only ever appends.
        self.tips: dict[int, MessageRecord] = {}
        self.last: MessageRecord | None = None

    def position_of(self, message_id: str) -> MessagePosition | None:
        placed = self._known.get(message_id)
        return None if placed is None else placed.position

    def place(self, new: MessageImport) -> MessageRecord:
        parent_id = _parent_of(new, self._conversation)
        at, floor = _ROOT, None
        if parent_id is not None:
            parent = self._known[parent_id]
            at = (parent.position.segment, parent.position.depth)
            floor = parent.created_at + ONE_TICK
        segment, depth = at[0], at[1] + 1
        occupant = self._occupants.get((segment, depth))
        if occupant is not None:
            segment = self._branch(at, occupant, new.id)
        if depth > keys.MAX_DEPTH:
            raise ValidationError("messages", "a branch is too deep")
        record = MessageRecord(
            id=new.id,
            conversation_id=self._conversation.id,
            user_id=self._conversation.user_id,
            role=new.role,
            content=new.content,
            created_at=new.created_at if floor is None else max(new.created_at, floor),
            model_id=new.model_id,
            is_error=new.is_error,
            error_message=new.error_message,
            parent_id=parent_id,
            segment=segment,
            depth=depth,
            feedback=new.feedback,
            # Interrupted is how a streaming message reads, never what is stored.
            status="streaming" if new.status == "interrupted" else new.status,
        )
        self._known[record.id] = _Placed(record.position, record.created_at)
        self._occupants[(segment, depth)] = record.id
        self.tips[segment] = record
        self.last = record
        return record

    def _branch(self, at: tuple[int, int], occupant: str, first_id: str) -> int:
        """A new segment forking at `at` (the root's (0, 0) for another first message)."""
        number = self.segment_count
        if number > keys.MAX_SEGMENT:
            raise ValidationError("messages", "this conversation has too many branches")
        self.segment_count += 1
        self._segments[number] = Segment(number=number, parent=at[0], fork_depth=at[1])
        self._children[at] = (*(self._children.get(at) or (occupant,)), first_id)
        return number

    def tree(self) -> Tree:
        """The tree with this transaction's branches; the tree read when there are none."""
        if self.segment_count == self._conversation.segment_count:
            return self._base
        return Tree(
            segments=self._segments, children=self._children, revision=self._base.revision + 1
        )


async def _placer(
    table: ChatTable,
    snapshot: Snapshot,
    conversation: ConversationRecord,
    tree: Tree,
    fresh: list[MessageImport],
    call: _Call,
) -> _Placer:
    """A placer that knows, for every parent the new messages name outside themselves, where
    it is, when it was written and whether a message follows it in its segment."""
    cid = conversation.id
    fresh_ids = {message.id for message in fresh}
    known = dict(call.placed)
    leaf, last = conversation.active_leaf, conversation.last_message
    if leaf is not None and last is not None and fresh and isinstance(fresh[0].parent_id, Unset):
        # Known without a read: the conversation keeps its active leaf's preview as its
        # lastMessage (they are written together), and the leaf never has a child
        # (messages._continue_active), so the message goes right after it.
        known.setdefault(leaf.message_id, _Placed(leaf, last.created_at))
    occupants = dict(call.occupied) if call.trusted else {}
    wanted: set[tuple[int, int]] = set()
    parents = [_parent_of(message, conversation) for message in fresh]
    for message, parent_id in zip(fresh, parents, strict=True):
        if parent_id is None or parent_id in fresh_ids or (call.trusted and parent_id in known):
            continue
        position = known[parent_id].position if parent_id in known else None
        position = position or _marker(snapshot, cid, parent_id)
        if position is None:
            raise ValidationError(
                "parentId",
                f"message {message.id} follows {parent_id}, which is neither stored in this "
                "conversation nor imported before it",
            )
        wanted |= {(position.segment, position.depth), (position.segment, position.depth + 1)}
    roots = any(parent_id is None for parent_id in parents)
    if roots and conversation.message_count > 0 and (0, 1) not in occupants:
        wanted.add((0, 1))
    partition = keys.conversation_partition(cid)
    found = await batch_get(table, [(partition, keys.message_sk(*at)) for at in sorted(wanted)])
    for item in found.values():
        record = items.message_from_attributes(item)
        occupants[(record.segment, record.depth)] = record.id
        known.setdefault(record.id, _Placed(record.position, record.created_at))
    reachable = fresh_ids | known.keys()
    if any(parent_id is not None and parent_id not in reachable for parent_id in parents):
        raise ConflictError("a stored message is not readable; try again")
    return _Placer(conversation, tree, known, occupants)


def _parent_of(message: MessageImport, conversation: ConversationRecord) -> str | None:
    """The message `message` follows: the one it names, else (only ever the first message of
    a call: _checked names the one before it for the others) the active leaf."""
    if isinstance(message.parent_id, Unset):
        leaf = conversation.active_leaf
        return None if leaf is None else leaf.message_id
    return message.parent_id


async def _active_leaf(
    table: ChatTable, snapshot: Snapshot, header: ConversationImport, placer: _Placer
) -> MessageRecord | None:
    """The named active leaf once it is stored, else the last message placed, followed down
    its newest children to the tip of a segment; None when nothing was placed."""
    start = None
    if header.active_leaf_id is not None:
        start = placer.position_of(header.active_leaf_id) or _marker(
            snapshot, header.id, header.active_leaf_id
        )
    if start is None:
        if placer.last is None:
            return None
        start = placer.last.position
    segment, depth = newest_descendant_run(placer.tree(), start)
    tip = placer.tips.get(segment)
    if tip is not None and tip.depth >= depth:
        return tip
    return await segment_tip(table, snapshot.user_id, header.id, segment, depth)


def _plan_writes(
    result: _Stored, stored: ConversationRecord | None, tree: Tree, grown: Tree, call: _Call
) -> Plan[_Stored]:
    conversation = result.conversation
    cid = conversation.id

    def actions(transaction: Transaction) -> None:
        for record in result.records:
            item = items.message_item(record)
            ensure_fits(item, field="content")
            transaction.put(("message", record.id), item, condition=_ABSENT)
            marker = (
                items.stream_marker_item(record, base=record.content)
                if record.status == "streaming"
                else items.marker_item(record)
            )
            transaction.put(("marker", record.id), marker, condition=_ABSENT)
        item = items.conversation_item(conversation)
        if stored is None:
            owner = items.owner_item(cid, conversation.user_id)
            transaction.put("owner", owner, condition=_ABSENT)
            transaction.put("conversation", item, condition=_ABSENT)
            record_grouping(
                transaction, user_id=conversation.user_id, before=None, after=conversation
            )
        else:
            transaction.put(
                "conversation",
                item,
                condition="attribute_exists(PK) AND updatedAt = :seen",
                values={":seen": {"S": format_timestamp(stored.updated_at)}},
            )
        if grown is not tree:
            transaction.put(
                "tree",
                items.tree_item(cid, grown),
                condition=_ABSENT if grown.revision == 1 else "revision = :seen",
                values=None if grown.revision == 1 else {":seen": {"N": str(tree.revision)}},
            )

    async def settle(cancelled: TransactionCancelled) -> None:
        if not any(reason.condition_failed for reason in cancelled.reasons.values()):
            raise ConflictError("the conversation changed while importing; try again")
        # Someone wrote to this conversation meanwhile: read what follows each parent again.
        call.trusted = False

    planned = Plan(
        result=result,
        change=ChangeDraft(
            kind="CONVERSATION_CREATED" if stored is None else "MESSAGES_ADDED",
            conversation_id=cid,
            messages=tuple(record.position for record in result.records),
        ),
        actions=actions,
        settle=settle,
    )
    if stored is None:
        record_change(planned.profile, before=None, after=conversation)
    return planned


# --- what storage itself refuses, before anything is read -----------------------------------


def _checked(
    table: ChatTable, user_id: str, conversation: ConversationImport
) -> ConversationImport:
    """Canonical ids; each id once; every parent before its children, named for each message
    after the first (UNSET: the one before it); items that fit."""
    messages: list[MessageImport] = []
    index_of: dict[str, int] = {}
    for index, message in enumerate(conversation.messages):
        message_id = checked_id(message.id, field=f"messages[{index}].id")
        if message_id in index_of:
            raise ValidationError(f"messages[{index}].id", "appears twice")
        index_of[message_id] = index
    for index, message in enumerate(conversation.messages):
        field = f"messages[{index}]"
        parent_id = message.parent_id
        if isinstance(parent_id, Unset) and messages:
            # A flat list: each message follows the one before it.
            parent_id = messages[-1].id
        elif isinstance(parent_id, str):
            parent_id = checked_id(parent_id, field=f"{field}.parentId")
            if index_of.get(parent_id, -1) >= index:
                raise ValidationError(f"{field}.parentId", "must name a message before it")
        if message.role not in ROLES:
            raise ValidationError(f"{field}.role", "is not a known role")
        _ensure_aware(message.created_at, f"{field}.createdAt")
        messages.append(dataclasses.replace(message, id=message.id.lower(), parent_id=parent_id))
    _ensure_aware(conversation.created_at, "createdAt")
    if conversation.updated_at is not None:
        _ensure_aware(conversation.updated_at, "updatedAt")
    leaf = conversation.active_leaf_id
    project = conversation.project_id
    checked = dataclasses.replace(
        conversation,
        id=checked_id(conversation.id, field="id"),
        active_leaf_id=None if leaf is None else checked_id(leaf, field="activeLeafId"),
        messages=messages,
        project_id=None if project is None else checked_id(project, field="projectId"),
    )
    _ensure_fits(table, user_id, checked)
    return checked


def _ensure_aware(moment: datetime, field: str) -> None:
    if moment.tzinfo is None:
        raise ValidationError(field, "must carry a time zone")


def _ensure_fits(table: ChatTable, user_id: str, conversation: ConversationImport) -> None:
    """Refuse what cannot be an item, wherever it would go: the largest key takes a few
    bytes more than a small one, which the size limit's margin covers."""
    widest: MessageRecord | None = None
    for message in conversation.messages:
        record = MessageRecord(
            id=message.id,
            conversation_id=conversation.id,
            user_id=user_id,
            role=message.role,
            content=message.content,
            created_at=message.created_at,
            model_id=message.model_id,
            is_error=message.is_error,
            error_message=message.error_message,
            parent_id=message.parent_id if isinstance(message.parent_id, str) else message.id,
            segment=keys.MAX_SEGMENT,
            depth=keys.MAX_DEPTH,
            feedback=message.feedback,
        )
        if table.content is not None and is_large(record.content):
            record = dataclasses.replace(record, content_ref=object_key(record))
        ensure_fits(items.message_item(record), field="content")
        if widest is None or len(record.content) > len(widest.content):
            widest = record
    ensure_fits(
        items.conversation_item(
            dataclasses.replace(
                _new_conversation(user_id, conversation),
                last_message=None if widest is None else items.preview(widest),
                active_leaf=None if widest is None else widest.position,
            )
        ),
        field="title",
    )
