"""The per-request Context every resolver receives as `info.context`."""

from __future__ import annotations

import dataclasses

from graphql_api.auth import Identity
from graphql_api.gql.pagination import CursorCodec
from graphql_api.loaders import Loaders, build_loaders
from graphql_api.settings import Settings
from graphql_api.storage.client import ChatTable


@dataclasses.dataclass(frozen=True, kw_only=True)
class Context:
    identity: Identity
    table: ChatTable
    loaders: Loaders
    settings: Settings
    cursors: CursorCodec

    @property
    def user_id(self) -> str:
        # The token's sub, and nothing a request body says: it scopes every read and write.
        return self.identity.sub


def build_context(*, identity: Identity, table: ChatTable, settings: Settings) -> Context:
    return Context(
        identity=identity,
        table=table,
        loaders=build_loaders(table, user_id=identity.sub),
        settings=settings,
        cursors=CursorCodec(secret=settings.effective_cursor_secret, user_id=identity.sub),
    )
