"""Records as REST JSON: the GraphQL schema's field names and DateTime form."""

from __future__ import annotations

from typing import Any

from graphql_api.storage.records import (
    ConversationRecord,
    MessageRecord,
    ProjectRecord,
    format_timestamp,
)


def message(record: MessageRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "conversationId": record.conversation_id,
        "role": record.role,
        "content": record.content,
        "createdAt": format_timestamp(record.created_at),
        "modelId": record.model_id,
        "isError": record.is_error,
        "errorMessage": record.error_message,
        "status": record.status.upper(),
        "streamSeq": record.stream_seq,
    }


def conversation(record: ConversationRecord) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": record.id,
        "title": record.title,
        "modelId": record.model_id,
        "createdAt": format_timestamp(record.created_at),
        "updatedAt": format_timestamp(record.updated_at),
        "messageCount": record.message_count,
        "version": record.version,
    }
    if record.last_message is not None:
        body["lastMessage"] = message(record.last_message)
    body["projectId"] = record.project_id
    return body


def project(record: ProjectRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "instructions": record.instructions,
        "createdAt": format_timestamp(record.created_at),
        "updatedAt": format_timestamp(record.updated_at),
        "version": record.version,
        "conversationCount": record.conversation_count(),
    }
