"""The Context every resolver receives as `info.context`: one per HTTP request, one per
WebSocket connection."""

from __future__ import annotations

import dataclasses

from graphql_api.domain.chat import UserChat
from graphql_api.domain.live import LiveChanges
from graphql_api.loaders import Loaders, build_loaders


@dataclasses.dataclass(kw_only=True)
class Context:
    # Bound to the token's subject: every read and write of this request is scoped by it.
    chat: UserChat
    # Replaced, on a WebSocket connection, before each change a subscription delivers (see
    # renew_loaders); a request over HTTP keeps its own for its whole life.
    loaders: Loaders
    # What subscriptions follow; set only on a WebSocket connection.
    live: LiveChanges | None = None

    @property
    def user_id(self) -> str:
        return self.chat.user_id

    def renew_loaders(self) -> None:
        """Forget every read: a connection lives for an hour, and what its loaders read before
        a change committed is stale once the change is delivered."""
        self.loaders = build_loaders(self.chat)


def build_context(chat: UserChat, *, live: LiveChanges | None = None) -> Context:
    return Context(chat=chat, loaders=build_loaders(chat), live=live)
