"""The operations every transport offers, on one user's data, with the input rules applied.

`Chat` is built once per process; `Chat.for_user` gives the `UserChat` a request works with.
A UserChat is bound to the authenticated caller, so no operation can be pointed at another
user's data by what a request says. Transports (GraphQL, REST, the CLI) turn their own input
into these calls and the records back into their own output; none of them repeats a rule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from graphql_api.errors import ValidationError
from graphql_api.settings import InputLimits
from graphql_api.storage import conversations as conversation_store
from graphql_api.storage import messages as message_store
from graphql_api.storage.client import ChatTable
from graphql_api.storage.records import (
    UNSET,
    ConversationPosition,
    ConversationRecord,
    MessagePosition,
    MessageRecord,
    NewMessage,
    Page,
    Unset,
)

from . import rules
from .cursors import CursorCodec
from .paging import PageArgs, Window, window


@dataclasses.dataclass(frozen=True, kw_only=True)
class MessageDraft:
    """A message as a client sends it, before the rules have looked at it."""

    role: str
    content: str
    id: str | None = None
    model_id: str | None = None
    is_error: bool = False
    error_message: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Chat:
    table: ChatTable
    limits: InputLimits
    cursor_secret: bytes

    def for_user(self, user_id: str) -> UserChat:
        return UserChat(
            table=self.table,
            limits=self.limits,
            user_id=user_id,
            cursors=CursorCodec(secret=self.cursor_secret, user_id=user_id),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class UserChat:
    table: ChatTable
    limits: InputLimits
    # The token's subject, and nothing a request body says: it scopes every read and write.
    user_id: str
    cursors: CursorCodec

    # --- conversations ----------------------------------------------------------------------

    def conversation_window(self, args: PageArgs) -> Window[ConversationPosition]:
        """The home list's window; most recently updated first unless `args` say otherwise."""
        return window(
            args,
            limits=self.limits,
            default_forward=True,
            decode=self.cursors.decode_conversation,
        )

    async def list_conversations(
        self, page: Window[ConversationPosition]
    ) -> Page[ConversationRecord]:
        return await conversation_store.list_conversations(
            self.table,
            user_id=self.user_id,
            limit=page.limit,
            cursor=page.cursor,
            forward=page.forward,
        )

    async def count_conversations(self) -> int:
        return await conversation_store.count_conversations(self.table, user_id=self.user_id)

    async def get_conversations(self, ids: Sequence[str]) -> list[ConversationRecord | None]:
        """In the order asked; None where missing, malformed or not the caller's."""
        return await conversation_store.get_conversations(
            self.table, user_id=self.user_id, conversation_ids=ids
        )

    async def create_conversation(
        self, *, title: str, model_id: str | None = None, conversation_id: str | None = None
    ) -> ConversationRecord:
        """A new conversation; the caller's existing one when `conversation_id` is a retry."""
        return await conversation_store.create_conversation(
            self.table,
            user_id=self.user_id,
            title=rules.title(title),
            model_id=rules.model_id(model_id),
            conversation_id=None
            if conversation_id is None
            else rules.uuid_id(conversation_id, field="id"),
        )

    async def update_conversation(
        self,
        *,
        conversation_id: str,
        title: str | Unset | None = UNSET,
        model_id: str | Unset | None = UNSET,
        expected_version: int | None = None,
    ) -> ConversationRecord:
        """Rename and/or change the model; UNSET leaves a field, None clears the model."""
        checked_id = rules.uuid_id(conversation_id, field="id")
        if isinstance(title, Unset) and isinstance(model_id, Unset):
            raise ValidationError("input", "give title or modelId (or both)")
        if title is None:
            raise ValidationError("title", "cannot be null; omit it to keep the title")
        return await conversation_store.update_conversation(
            self.table,
            user_id=self.user_id,
            conversation_id=checked_id,
            title=None if isinstance(title, Unset) else rules.title(title),
            model_id=model_id if isinstance(model_id, Unset) else rules.model_id(model_id),
            expected_version=rules.expected_version(expected_version),
        )

    async def delete_conversation(self, *, conversation_id: str) -> str:
        """Delete it and everything in it; the id deleted."""
        checked_id = rules.uuid_id(conversation_id, field="id")
        await conversation_store.delete_conversation(
            self.table, user_id=self.user_id, conversation_id=checked_id
        )
        return checked_id

    # --- messages ---------------------------------------------------------------------------

    def message_window(self, conversation_id: str, args: PageArgs) -> Window[MessagePosition]:
        """A conversation's window; the newest messages unless `args` say otherwise."""
        return window(
            args,
            limits=self.limits,
            default_forward=False,
            decode=lambda cursor: self.cursors.decode_message(conversation_id, cursor),
        )

    async def list_messages(
        self, conversation_id: str, page: Window[MessagePosition]
    ) -> Page[MessageRecord]:
        return await message_store.list_messages(
            self.table,
            user_id=self.user_id,
            conversation_id=conversation_id,
            limit=page.limit,
            cursor=page.cursor,
            forward=page.forward,
        )

    async def add_message(self, *, conversation_id: str, message: MessageDraft) -> MessageRecord:
        checked_id = rules.uuid_id(conversation_id, field="conversationId")
        (added,) = await self._add(checked_id, [self._new_message(message, prefix="")])
        return added

    async def add_messages(
        self, *, conversation_id: str, messages: Sequence[MessageDraft]
    ) -> list[MessageRecord]:
        """Store `messages` together, in order, or none of them."""
        checked_id = rules.uuid_id(conversation_id, field="conversationId")
        rules.batch_size(len(messages), limits=self.limits)
        new = [
            self._new_message(message, prefix=f"messages[{index}].")
            for index, message in enumerate(messages)
        ]
        return await self._add(checked_id, new)

    async def _add(self, conversation_id: str, new: list[NewMessage]) -> list[MessageRecord]:
        return await message_store.add_messages(
            self.table, user_id=self.user_id, conversation_id=conversation_id, messages=new
        )

    def _new_message(self, draft: MessageDraft, *, prefix: str) -> NewMessage:
        return NewMessage(
            id=None if draft.id is None else rules.uuid_id(draft.id, field=f"{prefix}id"),
            role=rules.role(draft.role, field=f"{prefix}role"),
            content=rules.content(
                draft.content, max_bytes=self.limits.max_content_bytes, field=f"{prefix}content"
            ),
            model_id=rules.model_id(draft.model_id, field=f"{prefix}modelId"),
            is_error=draft.is_error,
            error_message=rules.error_message(draft.error_message, field=f"{prefix}errorMessage"),
        )
