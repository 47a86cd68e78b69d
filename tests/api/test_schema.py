"""The committed SDL and client operations stay true to the code."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import parse, validate

from graphql_api.gql.schema import SDL_PATH, build_schema, sdl
from tests.api.harness import Api
from tests.apps import AppFactory

OPERATIONS = sorted((SDL_PATH.parent / "operations").glob("*.graphql"))
INTROSPECTION = "{ __schema { queryType { name } } }"


def test_the_committed_sdl_matches_the_code() -> None:
    committed = SDL_PATH.read_text(encoding="utf-8")
    assert committed == sdl(), (
        "schema/schema.graphql is stale: run `chat-history-api export-schema`"
    )


def test_the_sdl_keeps_the_names_clients_rely_on() -> None:
    text = sdl()
    for line in (
        "scalar DateTime",
        "conversation(id: ID!): Conversation",
        "createConversation(input: CreateConversationInput!): CreateConversationPayload!",
        "addMessages(input: AddMessagesInput!): AddMessagesPayload!",
        "deleteConversation(input: DeleteConversationInput!): DeleteConversationPayload!",
    ):
        assert line in text


def test_every_client_operation_is_shipped() -> None:
    names = {path.stem for path in OPERATIONS}
    assert {
        "HomeConversations",
        "OpenConversation",
        "OlderMessages",
        "SendMessage",
        "SaveExchange",
        "RenameConversation",
        "DeleteConversation",
    } <= names


@pytest.mark.parametrize("path", OPERATIONS, ids=lambda path: Path(path).stem)
def test_a_client_operation_is_valid_against_the_schema(path: Path) -> None:
    document = parse(path.read_text(encoding="utf-8"))
    assert validate(build_schema()._schema, document) == []


async def test_introspection_answers_when_enabled(api: Api, alice: str) -> None:
    data = await api.data(INTROSPECTION, user=alice)
    assert data == {"__schema": {"queryType": {"name": "Query"}}}


async def test_introspection_is_refused_when_disabled(make_api: AppFactory, alice: str) -> None:
    async with make_api(introspection_enabled=False) as closed:
        body = await closed.run(INTROSPECTION, user=alice)
    assert "data" not in body
    assert body["errors"]
    for error in body["errors"]:
        assert error["extensions"]["code"] == "INTROSPECTION_DISABLED"
        assert "introspection is disabled" in error["message"]
