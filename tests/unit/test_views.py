"""Types read straight from their records: every reader agrees with `from_record`, and a planned
page reads its records without building the types, answering what the general path answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import strawberry
from graphql import ExecutionResult, GraphQLObjectType, execute, parse
from strawberry.schema.config import StrawberryConfig
from strawberry.types.base import StrawberryObjectDefinition

from graphql_api.gql import messages
from graphql_api.gql.conversations import Conversation, ConversationConnection, ConversationEdge
from graphql_api.gql.messages import Message, MessageConnection, MessageEdge
from graphql_api.gql.pagination import PageInfo
from graphql_api.gql.planned import PlannedExecutor, plan_operation
from graphql_api.gql.scalars import SCALAR_MAP
from graphql_api.gql.schema import build_schema
from graphql_api.gql.views import reads_record, view_of
from graphql_api.storage.records import (
    ConversationRecord,
    Feedback,
    MessagePosition,
    MessageRecord,
    Segment,
    Tree,
)

NOW = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)


def message(index: int, **changes: Any) -> MessageRecord:
    values: dict[str, Any] = {
        "id": f"00000000-0000-4000-8000-{index:012d}",
        "conversation_id": "11111111-1111-4111-8111-111111111111",
        "user_id": "u",
        "role": ("user", "assistant", "system")[index % 3],
        "content": f"message {index} é",
        "created_at": NOW + timedelta(seconds=index),
        "model_id": None if index % 2 == 0 else "model-1",
        "is_error": index == 4,
        "error_message": "cut off" if index == 4 else None,
        "parent_id": None if index == 0 else f"00000000-0000-4000-8000-{index - 1:012d}",
        "segment": 0,
        "depth": index + 1,
    }
    return MessageRecord(**{**values, **changes})


FEEDBACK = (
    Feedback(rating="up", comment=None, updated_at=NOW),
    Feedback(rating=None, comment="why", updated_at=NOW),
    Feedback(rating="down", comment="", updated_at=NOW),
)
MESSAGES = (
    message(0),
    message(1, feedback=FEEDBACK[0]),
    message(2, feedback=FEEDBACK[1]),
    message(4),
    message(5, status="streaming", stream_seq=3),
    # As storage reads a streaming message past its lease.
    message(6, status="interrupted", stream_seq=0),
    message(7, status="stopped"),
)
CONVERSATIONS = (
    ConversationRecord(
        id="22222222-2222-4222-8222-222222222222",
        user_id="u",
        title="Empty",
        model_id=None,
        created_at=NOW,
        updated_at=NOW,
        message_count=0,
        version=1,
        last_message=None,
    ),
    ConversationRecord(
        id="33333333-3333-4333-8333-333333333333",
        user_id="u",
        title="Full",
        model_id="model-1",
        created_at=NOW,
        updated_at=NOW + timedelta(days=1),
        message_count=4,
        version=9,
        last_message=MESSAGES[1],
        active_leaf=MessagePosition(segment=0, depth=2, message_id=MESSAGES[1].id),
        pinned=True,
        archived=True,
        tags=("Work", "ideas"),
        expires_at=NOW + timedelta(days=30),
        project_id="44444444-4444-4444-8444-444444444444",
    ),
)
SAMPLES: dict[type, tuple[Any, ...]] = {
    MessageRecord: MESSAGES,
    ConversationRecord: CONVERSATIONS,
    Feedback: FEEDBACK,
}


def record_read_types() -> dict[type, GraphQLObjectType]:
    """Every type of the schema read from a record, with its GraphQL type."""
    found = {}
    for graphql_type in build_schema()._schema.type_map.values():
        definition = (graphql_type.extensions or {}).get("strawberry-definition")
        if (
            isinstance(graphql_type, GraphQLObjectType)
            and isinstance(definition, StrawberryObjectDefinition)
            and view_of(definition.origin) is not None
        ):
            found[definition.origin] = graphql_type
    return found


def test_the_schemas_record_read_types_are_the_ones_sampled_here() -> None:
    # A type declaring a new view needs records here, so its readers are checked below.
    types = record_read_types()

    assert set(types) == {Message, Conversation, messages.Feedback}
    assert {view.record for view in map(view_of, types) if view is not None} == set(SAMPLES)


@pytest.mark.parametrize(
    "cls", [Message, Conversation, messages.Feedback], ids=lambda cls: cls.__name__
)
def test_every_reader_gives_what_from_record_puts_in_the_field(cls: Any) -> None:
    view = view_of(cls)
    assert view is not None
    types = record_read_types()
    fields = [
        graphql_field.extensions["strawberry-definition"]
        for graphql_field in types[cls].fields.values()
    ]
    for record in SAMPLES[view.record]:
        built = cls.from_record(record)
        for field in fields:
            reader = view.reader(field.python_name)
            if field.base_resolver is not None or reader is None:
                # Only the built object has it: a selection asking for it builds the object.
                continue
            value = reader(record)
            nested = _record_read_type(field, types)
            if nested is not None and value is not None:
                # The record of a type read from a record: that type's from_record builds it.
                value = nested.from_record(value)
            assert value == getattr(built, field.python_name), field.python_name


def _record_read_type(field: Any, types: dict[type, GraphQLObjectType]) -> Any:
    field_type = field.type
    while hasattr(field_type, "of_type"):
        field_type = field_type.of_type
    return field_type if field_type in types else None


def test_a_reader_for_a_field_the_type_lacks_is_refused() -> None:
    with pytest.raises(TypeError, match="no field nothing"):

        @reads_record(MessageRecord, nothing=lambda record: record.id)
        @strawberry.type
        class Lacking:
            id: strawberry.ID


# --- a planned page reads its records ------------------------------------------------------

TREE = Tree(
    segments={1: Segment(number=1, parent=0, fork_depth=1)},
    children={(0, 1): (MESSAGES[1].id, "other")},
)
PAGE = MessageConnection(
    edges=[
        MessageEdge(cursor=f"c{index}", record=record, tree=TREE)
        for index, record in enumerate(MESSAGES)
    ],
    page_info=PageInfo.of(["c0", "c3"], has_previous=True, has_next=False),
    total_count=len(MESSAGES),
)
HOME = ConversationConnection(
    edges=[
        ConversationEdge(cursor=f"h{n}", record=record) for n, record in enumerate(CONVERSATIONS)
    ],
    page_info=PageInfo.of(["h0", "h1"], has_previous=False, has_next=True),
    where=None,  # type: ignore[arg-type]
    counted=2,
)


@strawberry.type
class Query:
    @strawberry.field
    def page(self) -> MessageConnection:
        return PAGE

    @strawberry.field
    def home(self) -> ConversationConnection:
        return HOME


SCHEMA = strawberry.Schema(query=Query, config=StrawberryConfig(scalar_map=SCALAR_MAP))

EVERY_MESSAGE_FIELD = (
    "id conversationId role content createdAt modelId isError errorMessage parentId "
    "feedback { rating comment updatedAt } status streamSeq"
)
DOCUMENTS = {
    "a page": f"{{ page {{ edges {{ cursor node {{ {EVERY_MESSAGE_FIELD} }} }} totalCount }} }}",
    "a page asking for siblings": "{ page { edges { node { id siblingIds } } } }",
    "the home list": (
        "{ home { edges { cursor node { id title modelId createdAt updatedAt messageCount "
        "version activeLeafId pinned archived tags expiresAt projectId "
        f"lastMessage {{ {EVERY_MESSAGE_FIELD} }} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"
    ),
    "aliases and fragments": (
        "{ page { edges { n: node { ...M again: role } } } } "
        "fragment M on Message { id role __typename feedback { r: rating } }"
    ),
}


async def run(text: str, *, planned: bool) -> ExecutionResult:
    document = parse(text)
    options: dict[str, Any] = {"executor_class": SCHEMA.execution_context_class}
    if planned:
        plan = plan_operation(SCHEMA._schema, document, document.definitions[0])  # type: ignore[arg-type]
        assert plan is not None
        options = {"executor_class": PlannedExecutor, "plan": plan}
    result = execute(SCHEMA._schema, document, **options)
    if not isinstance(result, ExecutionResult):
        result = await result
    return result


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The types built from their records."""
    names: list[str] = []
    for cls in (Message, Conversation):
        original = cls.from_record

        def counting(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            built = _original(*args, **kwargs)
            names.append(type(built).__name__)
            return built

        monkeypatch.setattr(cls, "from_record", counting)
    return names


@pytest.mark.parametrize("text", DOCUMENTS.values(), ids=list(DOCUMENTS))
async def test_a_planned_page_answers_what_the_general_path_answers(text: str) -> None:
    general = await run(text, planned=False)
    planned = await run(text, planned=True)

    assert general.errors is None
    assert json.dumps(planned.formatted) == json.dumps(general.formatted)


async def test_a_planned_page_builds_no_message_and_the_general_path_one_per_edge(
    built: list[str],
) -> None:
    await run(DOCUMENTS["a page"], planned=False)
    general = list(built)
    built.clear()

    await run(DOCUMENTS["a page"], planned=True)

    assert general == ["Message"] * len(MESSAGES)
    assert built == []


async def test_the_planned_home_list_builds_neither_conversations_nor_their_last_messages(
    built: list[str],
) -> None:
    await run(DOCUMENTS["the home list"], planned=True)

    assert built == []


async def test_a_field_only_the_built_object_has_builds_it(built: list[str]) -> None:
    result = await run(DOCUMENTS["a page asking for siblings"], planned=True)

    assert built == ["Message"] * len(MESSAGES)
    assert result.data is not None
    edges = result.data["page"]["edges"]
    assert edges[1]["node"]["siblingIds"] == [MESSAGES[1].id, "other"]
