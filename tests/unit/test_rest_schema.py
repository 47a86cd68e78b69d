"""Reading a REST body against its shape: JSON types only, each failure naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from graphql_api.errors import ValidationError
from graphql_api.rest.bodies import CONVERSATION_CHANGES, NEW_MESSAGE
from graphql_api.rest.errors import BadRequest
from graphql_api.rest.schema import ArrayOf, Prop, Ref, Shape, read_integer


def refusal(shape: Shape, body: object) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        shape.read(body)
    return caught.value


def test_given_fields_are_kept_absent_ones_left_out_and_others_ignored() -> None:
    body = {"role": "user", "content": "hi", "isError": False, "timestamp": "ignored"}
    assert NEW_MESSAGE.read(body) == {"role": "user", "content": "hi", "isError": False}


def test_values_are_not_judged_here_only_their_types() -> None:
    # An unknown role or an empty content is for the rules, shared with GraphQL.
    assert NEW_MESSAGE.read({"role": "nobody", "content": ""}) == {"role": "nobody", "content": ""}


def test_null_is_kept_where_the_shape_allows_it() -> None:
    assert CONVERSATION_CHANGES.read({"modelId": None, "expectedVersion": None}) == {
        "modelId": None,
        "expectedVersion": None,
    }


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"content": "x"}, "role", "is required"),
        ({"role": None, "content": "x"}, "role", "must not be null"),
        ({"role": "user", "content": 1}, "content", "must be a string"),
        ({"role": "user", "content": "x", "isError": 0}, "isError", "must be a boolean"),
        ({"role": "user", "content": "x", "isError": "true"}, "isError", "must be a boolean"),
    ],
)
def test_a_wrong_type_names_the_field(body: dict[str, Any], field: str, message: str) -> None:
    error = refusal(NEW_MESSAGE, body)
    assert (error.field, error.message) == (field, message)


@pytest.mark.parametrize("version", [True, 1.0, "1", 2**31, -(2**31) - 1, [1]])
def test_integers_are_json_integers_in_graphqls_int_range(version: object) -> None:
    error = refusal(CONVERSATION_CHANGES, {"title": "t", "expectedVersion": version})
    assert (error.field, error.message) == ("expectedVersion", "must be a 32-bit integer")


def test_the_int_range_is_inclusive() -> None:
    for version in (2**31 - 1, -(2**31)):
        assert CONVERSATION_CHANGES.read({"expectedVersion": version}) == {
            "expectedVersion": version
        }


@pytest.mark.parametrize("body", [[], "x", 1, None])
def test_a_body_that_is_not_an_object_is_a_bad_request(body: object) -> None:
    with pytest.raises(BadRequest):
        NEW_MESSAGE.read(body)


@pytest.mark.parametrize("text", ["", "+1", " 1", "1.0", "1_000", "٣", "0x10", "12345678901"])
def test_a_query_integer_is_plain_decimal_digits(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        read_integer("limit", text)
    assert caught.value.field == "limit"


def test_a_query_integer_reads() -> None:
    assert [read_integer("limit", text) for text in ("0", "20", "-1", "007")] == [0, 20, -1, 7]


def test_a_nested_shape_cannot_be_nullable() -> None:
    # swift-openapi-generator drops such properties; they are optional instead.
    with pytest.raises(ValueError, match="optional, not nullable"):
        Prop(type=Ref("Message"), nullable=True)


def test_json_schemas_of_each_kind_of_property() -> None:
    assert Prop(type="string", nullable=True, format="uuid").json_schema() == {
        "type": ["string", "null"],
        "format": "uuid",
    }
    assert Prop(type="integer").json_schema() == {"type": "integer", "format": "int32"}
    assert Prop(type=Ref("Message")).json_schema() == {"$ref": "#/components/schemas/Message"}
    assert Prop(type=ArrayOf("Message")).json_schema() == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Message"},
    }
