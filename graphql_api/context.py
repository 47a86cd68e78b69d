"""The per-request Context every resolver receives as `info.context`."""

from __future__ import annotations

import dataclasses

from graphql_api.domain.chat import UserChat
from graphql_api.loaders import Loaders, build_loaders


@dataclasses.dataclass(frozen=True, kw_only=True)
class Context:
    # Bound to the token's subject: every read and write of this request is scoped by it.
    chat: UserChat
    loaders: Loaders

    @property
    def user_id(self) -> str:
        return self.chat.user_id


def build_context(chat: UserChat) -> Context:
    return Context(chat=chat, loaders=build_loaders(chat))
