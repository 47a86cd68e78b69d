"""Every key string of the single table is built and parsed here, and nowhere else.

Layout (PK / SK):
  USER#<userId>  / CONV#<conversationId>       the conversation, listed through GSI1 and GSI2
  USER#<userId>  / CONV#<projectId>            a project (`type` project), listed through GSI1
  USER#<userId>  / PROFILE                     per-user counters and the change version
  USER#<userId>  / CHG#<version>               one change-log entry per committed write
  CONV#<convId>  / MSG#<segment>#<depth>       a message: a branch segment is a key range
  CONV#<convId>  / MSGID#<messageId>           marker that makes client retries idempotent
  CONV#<convId>  / OWNER                       who owns the partition (ids are client-chosen)
  CONV#<convId>  / TREE                        where the branches fork (only once one does)
  CONV#<convId>  / DELTA#<messageId>#<seq>     one acknowledged append to a streamed message
GSI1: GSI1PK = USER#<userId> (ARCHIVED#<userId> once archived),
      GSI1SK = <1 if pinned else 0>#<updatedAt>#<conversationId>;
      for a project, GSI1PK = PROJECTS#<userId>, GSI1SK = <updatedAt>#<projectId>.
GSI2: GSI2PK = PROJ#<userId>#<projectId> (PROJ#<userId>#- for no project; PROJARCHIVED#...
      once archived), GSI2SK = the conversation's GSI1SK: every conversation is in exactly one
      of these lists.

Why a project's SK reads CONV#: ids are client-chosen bare UUIDs (Conversation.id is what
clients hold), so node(id) cannot tell a conversation id from a project id. Every top-level
object a user owns by id lives at USER#<userId> / CONV#<id> whatever its type (node_sk), so
one key per id resolves any type, and node/nodes read up to 100 ids in one BatchGetItem. The
`type` attribute tells them apart, and every reader of the CONV# range checks it; one id
cannot name two objects of one user. A project needs no OWNER item: it has no partition of
its own, only this item in its user's partition. (A share link's owner-side record will live
here too.)

A conversation's messages form a tree. Its branches are stored as segments: runs of messages
each the child of the one before. Segment 0 starts at the first message; a new segment starts
where a message gets a second child (an edit or a regenerate). A message's key is its segment
and its depth (its position on every path through it), so a segment is one key range, read in
either direction with one Query, and newer segments sort after older ones.

A streamed message's deltas are one key range per message, in seq order. "DELTA#" sorts
before "MSG#" and far from "MSGID#", so no message or marker range read ever meets one; a
partition purge (it Queries the whole partition) removes them with everything else.
"""

from __future__ import annotations

from typing import Final

_USER: Final = "USER#"
_ARCHIVED: Final = "ARCHIVED#"
_PROJECTS: Final = "PROJECTS#"
_GROUPED: Final = "PROJ#"
_GROUPED_ARCHIVED: Final = "PROJARCHIVED#"
# The GSI2 list of the conversations in no project; never a UUID, so never a project's id.
_NO_PROJECT: Final = "-"
_CONVERSATION: Final = "CONV#"
_MESSAGE: Final = "MSG#"
_MESSAGE_ID: Final = "MSGID#"
_CHANGE: Final = "CHG#"
_DELTA: Final = "DELTA#"

OWNER_SK: Final = "OWNER"
PROFILE_SK: Final = "PROFILE"
TREE_SK: Final = "TREE"
# Bounds of the message range of a CONV# partition: every message SK starts with "MSG#", and
# "$" is the character right after "#", so no message SK reaches this bound while the
# MSGID#/OWNER/TREE items sort beyond it.
MESSAGES_LOW: Final = _MESSAGE
MESSAGES_HIGH: Final = "MSG$"
CHANGES_LOW: Final = _CHANGE
CHANGES_HIGH: Final = "CHG$"
# Bounds of a user's conversation and project items in USER#<userId> (the PROFILE and CHG#
# items sort outside them), for tools that read all of them: exports, erasure, migrations.
CONVERSATIONS_LOW: Final = _CONVERSATION
CONVERSATIONS_HIGH: Final = "CONV$"

# Fixed widths, so string order is numeric order.
_SEGMENT_DIGITS: Final = 6
_DEPTH_DIGITS: Final = 7
_VERSION_DIGITS: Final = 12
_SEQ_DIGITS: Final = 10
MAX_SEGMENT: Final = 10**_SEGMENT_DIGITS - 1
MAX_DEPTH: Final = 10**_DEPTH_DIGITS - 1
# GraphQL's Int ends below this, so every seq a client can send has a key.
MAX_SEQ: Final = 10**_SEQ_DIGITS - 1


def user_pk(user_id: str) -> str:
    return f"{_USER}{user_id}"


def listing_pk(user_id: str, *, archived: bool) -> str:
    """GSI1PK: archived conversations live in a partition of the index of their own."""
    return f"{_ARCHIVED}{user_id}" if archived else f"{_USER}{user_id}"


def node_sk(node_id: str) -> str:
    """The SK of any top-level object the user owns by id: a conversation or a project."""
    return f"{_CONVERSATION}{node_id}"


def conversation_sk(conversation_id: str) -> str:
    return node_sk(conversation_id)


def project_sk(project_id: str) -> str:
    return node_sk(project_id)


def projects_pk(user_id: str) -> str:
    """GSI1PK of the user's projects: a list of its own beside the conversation lists."""
    return f"{_PROJECTS}{user_id}"


def project_recency_sk(updated_at: str, project_id: str) -> str:
    """GSI1SK of a project: by last update, ties broken by id."""
    return f"{updated_at}#{project_id}"


def grouping_pk(user_id: str, project_id: str | None, *, archived: bool) -> str:
    """GSI2PK: the list of one project's conversations (project_id None: those in no
    project), archived ones apart as in GSI1."""
    prefix = _GROUPED_ARCHIVED if archived else _GROUPED
    return f"{prefix}{user_id}#{_NO_PROJECT if project_id is None else project_id}"


def conversation_partition(conversation_id: str) -> str:
    return f"{_CONVERSATION}{conversation_id}"


def message_sk(segment: int, depth: int) -> str:
    if not (0 <= segment <= MAX_SEGMENT and 1 <= depth <= MAX_DEPTH):
        raise ValueError(f"message position out of range: segment {segment}, depth {depth}")
    return f"{_MESSAGE}{segment:0{_SEGMENT_DIGITS}d}#{depth:0{_DEPTH_DIGITS}d}"


def parse_message_sk(sk: str) -> tuple[int, int]:
    """(segment, depth) of a message SK; ValueError if it is not one."""
    prefix, segment, depth = sk.split("#")
    if f"{prefix}#" != _MESSAGE or len(segment) != _SEGMENT_DIGITS or len(depth) != _DEPTH_DIGITS:
        raise ValueError(f"not a message key: {sk!r}")
    return int(segment), int(depth)


def message_id_sk(message_id: str) -> str:
    return f"{_MESSAGE_ID}{message_id}"


def recency_sk(updated_at: str, conversation_id: str, *, pinned: bool) -> str:
    """GSI1SK: pinned first, then by last update, ties broken by id so every position is
    unique. Read descending, this is the home list's order."""
    return f"{1 if pinned else 0}#{updated_at}#{conversation_id}"


def pinned_prefix(pinned: bool) -> str:
    """The GSI1SK prefix of every pinned (or every unpinned) conversation."""
    return f"{1 if pinned else 0}#"


def change_sk(version: int) -> str:
    return f"{_CHANGE}{version:0{_VERSION_DIGITS}d}"


def delta_sk(message_id: str, seq: int) -> str:
    if not 0 <= seq <= MAX_SEQ:
        raise ValueError(f"delta seq out of range: {seq}")
    return f"{_DELTA}{message_id}#{seq:0{_SEQ_DIGITS}d}"


def deltas_high(message_id: str) -> str:
    """Above every delta key of `message_id` ("$" is the character after "#"), and below
    those of any other message id, which differ before it."""
    return f"{_DELTA}{message_id}$"


def parse_delta_seq(sk: str) -> int:
    """The seq of a delta SK; ValueError if it is not one."""
    prefix, _, seq = sk.rpartition("#")
    if not prefix.startswith(_DELTA) or len(seq) != _SEQ_DIGITS:
        raise ValueError(f"not a delta key: {sk!r}")
    return int(seq)
