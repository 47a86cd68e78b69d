"""Every key string of the single table is built and parsed here, and nowhere else.

Layout (PK / SK):
  USER#<userId>  / CONV#<conversationId>           the conversation, listed through GSI1
  USER#<userId>  / PROFILE                          per-user counters
  CONV#<convId>  / MSG#<timestamp>#<messageId>      a message, in time order
  CONV#<convId>  / MSGID#<messageId>                marker that makes client retries idempotent
  CONV#<convId>  / OWNER                            who owns the partition (ids are client-chosen)
GSI1: GSI1PK = USER#<userId>, GSI1SK = <updatedAt>#<conversationId>.
"""

from __future__ import annotations

from typing import Final

_USER: Final = "USER#"
_CONVERSATION: Final = "CONV#"
_MESSAGE: Final = "MSG#"
_MESSAGE_ID: Final = "MSGID#"

OWNER_SK: Final = "OWNER"
PROFILE_SK: Final = "PROFILE"
# Bounds of the message range of a CONV# partition: every message SK starts with "MSG#", and
# "$" is the character right after "#", so no message SK reaches this bound while the
# MSGID#/OWNER items sort beyond it.
MESSAGES_LOW: Final = _MESSAGE
MESSAGES_HIGH: Final = "MSG$"


def user_pk(user_id: str) -> str:
    return f"{_USER}{user_id}"


def conversation_sk(conversation_id: str) -> str:
    return f"{_CONVERSATION}{conversation_id}"


def conversation_partition(conversation_id: str) -> str:
    return f"{_CONVERSATION}{conversation_id}"


def message_sk(timestamp: str, message_id: str) -> str:
    return f"{_MESSAGE}{timestamp}#{message_id}"


def message_id_sk(message_id: str) -> str:
    return f"{_MESSAGE_ID}{message_id}"


def recency_sk(updated_at: str, conversation_id: str) -> str:
    """GSI1SK: sorts by last update, ties broken by id so every position is unique."""
    return f"{updated_at}#{conversation_id}"


def parse_message_sk(sk: str) -> tuple[str, str]:
    """(timestamp, messageId) of a message SK; ValueError if it is not one."""
    prefix, timestamp, message_id = sk.split("#", 2)
    if f"{prefix}#" != _MESSAGE or not timestamp or not message_id:
        raise ValueError(f"not a message key: {sk!r}")
    return timestamp, message_id
