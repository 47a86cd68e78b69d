"""ChatGPT's export: a list of conversations whose `mapping` is a tree of message nodes.

Every branch is kept (an edited question or a regenerated answer is a sibling node), and the
branch the user was on is the path from the root to `current_node`. What ChatGPT shows as a
conversation is only part of the tree: tool calls and their results, reasoning, memory
updates, custom instructions and hidden system prompts are nodes too. Those are skipped and
counted, and their children hang from the nearest kept ancestor.
"""

from __future__ import annotations

import io
import re
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any, Final

from . import jsonstream, tree
from .errors import MalformedConversation
from .jsonstream import as_list, as_object, epoch_time, optional_str
from .model import Notes, Origin, ReadResult, RefusedConversation, Role

# Ids that are not UUIDs map into this namespace (see tree.canonical_id). Never change it:
# re-importing a file must give the ids it gave before.
NAMESPACE: Final = uuid.UUID("6c1b8e0e-5a0d-4c55-9d0f-5f7f3c1f2a01")
_ROLES: Final[dict[str, Role]] = {"user": "user", "assistant": "assistant", "system": "system"}
# Newer exports mark citations inline as private-use runs such as "\ue200cite\ue202turn0search3
# \ue201", which ChatGPT draws as links and plain text shows as noise.
_CITATION: Final = re.compile("[ \t]*\ue200[^\ue201]*\ue201")
# Content types that are the model's working, not its answer.
_WORKING: Final = {
    "thoughts": "reasoning",
    "reasoning_recap": "reasoning summary",
    "user_editable_context": "custom instructions",
    "model_editable_context": "memory update",
}
_MEDIA_PARTS: Final = {
    "image_asset_pointer": "image",
    "audio_asset_pointer": "audio",
    "real_time_user_audio_video_asset_pointer": "audio/video",
    "video_container_asset_pointer": "video",
    "file_asset_pointer": "file",
}


def read(stream: io.BufferedReader, name: str) -> Iterator[ReadResult]:
    for index, raw in jsonstream.conversation_list(stream, name=name, app="ChatGPT"):
        yield convert(raw, file=name, index=index)


def convert(raw: object, *, file: str, index: int) -> ReadResult:
    origin = Origin(file=file, index=index)
    try:
        data = as_object(raw, "the conversation")
        source_id = optional_str(data.get("conversation_id") or data.get("id"), "id")
        title = data.get("title")
        origin = Origin(
            file=file,
            index=index,
            source_id=source_id,
            title=title if isinstance(title, str) else None,
        )
        if not source_id:
            raise MalformedConversation("it has no id")
        notes = Notes()
        header = tree.Header(
            source_id=source_id,
            title=optional_str(title, "title"),
            model_id=optional_str(data.get("default_model_slug"), "default_model_slug"),
            created_at=epoch_time(data.get("create_time"), "create_time"),
            updated_at=epoch_time(data.get("update_time"), "update_time"),
            active_source_id=optional_str(data.get("current_node"), "current_node"),
            archived=data.get("is_archived") is True,
        )
        nodes = _nodes(as_object(data.get("mapping"), "mapping"), notes)
        return tree.build(header, nodes, namespace=NAMESPACE, origin=origin, notes=notes)
    except MalformedConversation as exc:
        return RefusedConversation(origin=origin, reasons=(str(exc),))
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        return RefusedConversation(origin=origin, reasons=(f"unexpected structure: {exc}",))


def _nodes(mapping: Mapping[str, Any], notes: Notes) -> list[tree.Node]:
    # `parent` is the link that counts; `children` only fills in a node that lacks one.
    parent_from_children: dict[str, str] = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            for child in value.get("children") or ():
                if isinstance(child, str):
                    parent_from_children.setdefault(child, key)
    nodes: list[tree.Node] = []
    for key, value in mapping.items():
        node = as_object(value, f"node {key!r}")
        parent = (
            optional_str(node["parent"], f"node {key!r} parent")
            if "parent" in node
            else parent_from_children.get(key)
        )
        message = node.get("message")
        nodes.append(
            tree.Node(
                source_id=key,
                parent_source_id=parent,
                message=None
                if message is None
                else _message(as_object(message, f"node {key!r} message"), notes),
            )
        )
    return nodes


def _message(message: Mapping[str, Any], notes: Notes) -> tree.Message | None:
    """The message as we store it, or None (noted) for what ChatGPT does not show as one."""
    author = as_object(message.get("author") or {}, "author")
    role_name = optional_str(author.get("role"), "author role") or "unknown"
    metadata = as_object(message.get("metadata") or {}, "metadata")
    content = as_object(message.get("content") or {}, "content")
    content_type = optional_str(content.get("content_type"), "content_type") or "text"
    recipient = message.get("recipient")
    skipped = _skip_reason(role_name, content_type, recipient, metadata)
    if skipped is not None:
        notes.skipped[skipped] += 1
        return None
    dropped: Counter[str] = Counter()
    text = _text(content, content_type, dropped)
    dropped.update(_attachments(metadata))
    if "\ue200" in text:  # the pattern's leading blanks make a blind search slow
        text, citations = _CITATION.subn("", text)
        notes.repaired["citation markers removed"] += citations
    notes.dropped.update(dropped)
    role = _ROLES[role_name]
    if not text.strip():
        if not dropped:
            notes.skipped["empty system prompt" if role == "system" else "empty message"] += 1
            return None
        text = tree.placeholder(dropped)
    is_error = content_type == "system_error"
    return tree.Message(
        role=role,
        content=text,
        created_at=epoch_time(message.get("create_time"), "message create_time"),
        model_id=optional_str(metadata.get("model_slug"), "model_slug")
        if role == "assistant"
        else None,
        is_error=is_error,
        error_message=text if is_error else None,
    )


def _skip_reason(
    role: str, content_type: str, recipient: object, metadata: Mapping[str, Any]
) -> str | None:
    if role == "tool":
        return "tool message"
    if role not in _ROLES:
        return f"{role} message"
    if content_type in _WORKING:
        return _WORKING[content_type]
    if metadata.get("is_visually_hidden_from_conversation") is True:
        return "hidden system message" if role == "system" else "hidden message"
    # An assistant message addressed to a tool is a call (a search, an image prompt), not an
    # answer; code for the interpreter is the exception, since ChatGPT shows it.
    if role == "assistant" and recipient not in (None, "all", "python"):
        return "tool call"
    return None


def _text(content: Mapping[str, Any], content_type: str, dropped: Counter[str]) -> str:
    if content_type in ("text", "multimodal_text") or "parts" in content:
        texts = [_part(part, dropped) for part in as_list(content.get("parts") or [], "parts")]
        return "\n\n".join(text for text in texts if text)
    if content_type == "code":
        language = optional_str(content.get("language"), "language") or ""
        code = optional_str(content.get("text"), "code") or ""
        return f"```{'' if language == 'unknown' else language}\n{code}\n```" if code else ""
    if content_type == "execution_output":
        output = optional_str(content.get("text"), "execution output") or ""
        return f"```\n{output}\n```" if output else ""
    for field in ("text", "result", "summary"):
        value = content.get(field)
        if isinstance(value, str) and value.strip():
            return value
    dropped[content_type] += 1
    return ""


def _part(part: object, dropped: Counter[str]) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, Mapping):
        kind = part.get("content_type")
        if kind == "audio_transcription" and isinstance(part.get("text"), str):
            return str(part["text"])
        dropped[_MEDIA_PARTS.get(str(kind), str(kind or "attachment"))] += 1
        return ""
    dropped["non-text part"] += 1
    return ""


def _attachments(metadata: Mapping[str, Any]) -> Counter[str]:
    # Uploaded images are also image parts (counted there); other files appear only here.
    found: Counter[str] = Counter()
    for attachment in as_list(metadata.get("attachments") or [], "attachments"):
        if not isinstance(attachment, Mapping):
            continue
        mime = attachment.get("mime_type") or attachment.get("mimeType") or ""
        if not str(mime).startswith("image/"):
            found["file"] += 1
    return found
