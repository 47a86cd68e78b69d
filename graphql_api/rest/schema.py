"""JSON shapes as data: each becomes a JSON Schema in the OpenAPI document, and a request is
read against its own, so what the document promises is what the route checks.

Reading checks JSON types only (a string where a string belongs, null only where allowed);
what a value may be (a UUID, a title's length, a known role) is for graphql_api.domain.rules,
which GraphQL requests pass through as well.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, Literal, TypeAlias

from graphql_api.errors import ValidationError

from .errors import BadRequest

# GraphQL's Int, so that both transports take the same numbers.
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
_INTEGER = re.compile(r"-?[0-9]{1,10}")

Scalar: TypeAlias = Literal["string", "integer", "boolean"]


@dataclasses.dataclass(frozen=True)
class Ref:
    """Another shape, by name, as a component of the document."""

    name: str


@dataclasses.dataclass(frozen=True)
class ArrayOf:
    name: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class Prop:
    type: Scalar | Ref | ArrayOf
    required: bool = True
    # In the JSON Schema as a type array, ["string", "null"], the form OpenAPI 3.1 uses.
    nullable: bool = False
    description: str | None = None
    format: str | None = None
    enum: tuple[str, ...] | None = None
    default: str | int | bool | None = None

    def __post_init__(self) -> None:
        if self.nullable and not isinstance(self.type, str):
            # swift-openapi-generator drops `anyOf: [$ref, null]` properties; an optional
            # property (not required, absent when empty) generates what Swift expects.
            raise ValueError("a shape-valued property is made optional, not nullable")

    def json_schema(self) -> dict[str, Any]:
        if isinstance(self.type, Ref):
            return {"$ref": ref(self.type.name)}
        if isinstance(self.type, ArrayOf):
            schema: dict[str, Any] = {"type": "array", "items": {"$ref": ref(self.type.name)}}
        else:
            schema = {"type": [self.type, "null"] if self.nullable else self.type}
            if self.type == "integer":
                schema["format"] = "int32"
        for key, value in (
            ("format", self.format),
            ("enum", None if self.enum is None else list(self.enum)),
            ("default", self.default),
            ("description", self.description),
        ):
            if value is not None:
                schema[key] = value
        return schema


@dataclasses.dataclass(frozen=True, kw_only=True)
class Shape:
    """A JSON object: its properties in the order they are written."""

    name: str
    description: str
    props: Mapping[str, Prop]

    def json_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "description": self.description,
            "properties": {name: prop.json_schema() for name, prop in self.props.items()},
            "required": [name for name, prop in self.props.items() if prop.required],
        }

    def read(self, body: object) -> dict[str, Any]:
        """The properties `body` gives, each of its declared JSON type; others are ignored
        (clients may send a whole record, as the seed's Swift DTOs do)."""
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        values: dict[str, Any] = {}
        for name, prop in self.props.items():
            if name not in body:
                if prop.required:
                    raise ValidationError(name, "is required")
                continue
            values[name] = _typed(name, prop, body[name])
        return values


def ref(name: str) -> str:
    return f"#/components/schemas/{name}"


def _typed(name: str, prop: Prop, value: object) -> object:
    if not isinstance(prop.type, str):
        raise TypeError("request shapes hold scalar properties only")
    if value is None:
        if not prop.nullable:
            raise ValidationError(name, "must not be null")
        return None
    if prop.type == "string" and isinstance(value, str):
        return value
    if prop.type == "boolean" and isinstance(value, bool):
        return value
    # bool is an int in Python, never in JSON.
    if prop.type == "integer" and isinstance(value, int) and not isinstance(value, bool):
        return _int32(name, value)
    raise ValidationError(name, f"must be {_described(prop.type)}")


def _described(kind: Scalar) -> str:
    return "a 32-bit integer" if kind == "integer" else f"a {kind}"


def _int32(name: str, value: int) -> int:
    if not INT32_MIN <= value <= INT32_MAX:
        raise ValidationError(name, "must be a 32-bit integer")
    return value


def read_integer(name: str, text: str) -> int:
    """A query parameter's integer: plain decimal digits, in GraphQL Int's range."""
    if not _INTEGER.fullmatch(text):
        raise ValidationError(name, "must be a 32-bit integer")
    return _int32(name, int(text))


def read_boolean(name: str, text: str) -> bool:
    """A query parameter's boolean, as JSON spells one."""
    if text not in ("true", "false"):
        raise ValidationError(name, "must be true or false")
    return text == "true"
