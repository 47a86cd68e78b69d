"""schema/apollo/extra.graphqls, the cache keys Apollo iOS and Kotlin normalise by, names only
types and fields the schema has, and keys every object an app refetches by id."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import (
    GraphQLError,
    GraphQLObjectType,
    ObjectTypeExtensionNode,
    StringValueNode,
    build_schema,
    extend_schema,
    parse,
)

ROOT = Path(__file__).resolve().parents[2]
EXTRA = ROOT / "schema" / "apollo" / "extra.graphqls"
SCHEMA = ROOT / "schema" / "schema.graphql"
# How Apollo declares the directive (kotlin_labs/v0.3, which Apollo iOS follows); the service
# never serves it, so only the codegen's copy of the schema carries it.
TYPE_POLICY = "directive @typePolicy(keyFields: String!) on OBJECT | INTERFACE | UNION\n"


def policies(extra: str) -> dict[str, list[str]]:
    """Each extended type with the fields of its keyFields."""
    found: dict[str, list[str]] = {}
    for definition in parse(extra).definitions:
        assert isinstance(definition, ObjectTypeExtensionNode), definition
        for directive in definition.directives or ():
            assert directive.name.value == "typePolicy"
            (argument,) = directive.arguments or ()
            assert argument.name.value == "keyFields"
            assert isinstance(argument.value, StringValueNode)
            found[definition.name.value] = argument.value.value.split()
    return found


def problems(extra: str, sdl: str) -> list[str]:
    """What in `extra` the schema `sdl` does not have: a type, or a key field that is not a
    non-null ID; then whatever a codegen extending the schema with it would refuse."""
    schema = build_schema(sdl)
    found = []
    for type_name, key_fields in policies(extra).items():
        named = schema.get_type(type_name)
        if not isinstance(named, GraphQLObjectType):
            found.append(f"no object type {type_name}")
            continue
        for field in key_fields:
            if field not in named.fields or str(named.fields[field].type) != "ID!":
                found.append(f"{type_name}.{field} is not an ID!")
    if not found:
        try:
            extend_schema(build_schema(sdl + TYPE_POLICY), parse(extra))
        except (GraphQLError, TypeError) as exc:
            found.append(str(exc))
    return found


def test_every_type_and_key_field_it_names_exists_in_the_schema() -> None:
    assert problems(EXTRA.read_text(), SCHEMA.read_text()) == []


def test_conversations_projects_and_messages_are_keyed_by_id() -> None:
    assert policies(EXTRA.read_text()) == {
        "Conversation": ["id"],
        "Project": ["id"],
        "Message": ["id"],
    }


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ('extend type Message @typePolicy(keyFields: "uuid")', "Message.uuid is not an ID!"),
        ('extend type Message @typePolicy(keyFields: "content")', "Message.content is not an ID!"),
        ('extend type Thread @typePolicy(keyFields: "id")', "no object type Thread"),
    ],
)
def test_a_policy_the_schema_cannot_hold_is_reported(extra: str, problem: str) -> None:
    assert problems(extra, SCHEMA.read_text()) == [problem]
