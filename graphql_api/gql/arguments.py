"""A field's arguments as its resolver receives them, worked out once per plan.

On every call of a field with arguments, graphql-core coerces them from the document and the
variables (get_argument_values), then Strawberry converts them into the resolver's Python
values (input objects into their classes), walking its type checks for every value. Both
depend only on the document and the variables, so a planned document (planned.py) does the
document's part once:
- an argument the document leaves out, or gives as a literal without variables, is coerced
  once, by graphql-core's own coercion;
- a variable is read from the request's variables, which graphql-core has already coerced;
- a literal holding variables (an input object spelled out around them) is coerced per
  request by graphql-core's coerce_input_literal;
- each value is then converted by a converter compiled once from its Strawberry type: leaves
  as they are, lists of leaves copied (as Strawberry copies them: graphql-core shares default
  values between requests), input objects built field by field, so no request ever receives
  another's objects.

Only the expected case is planned. Where graphql-core would report an error (a required
variable missing, null for a non-null argument, a literal that does not coerce), `coerce`
answers MISS before the resolver runs, and the field then runs the general way, which reports
exactly what it always does. A type Strawberry converts its own way (Maybe, GlobalID, an input
with a custom from_input) is not planned at all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Final

from graphql import (
    ArgumentNode,
    FieldNode,
    GraphQLArgument,
    GraphQLField,
    Undefined,
    ValueNode,
    VariableNode,
    coerce_input_literal,
    is_non_null_type,
    is_required_argument,
)
from graphql.execution.values import VariableValues, coerce_argument
from graphql.language import ListValueNode, ObjectValueNode
from strawberry.relay.types import GlobalID
from strawberry.schema.config import StrawberryConfig
from strawberry.types.arguments import (
    StrawberryArgument,
    _is_leaf_type,
    _is_optional_leaf_type,
)
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryOptional,
    has_object_definition,
)
from strawberry.types.enum import has_enum_definition
from strawberry.types.lazy_type import LazyType
from strawberry.types.unset import UNSET

MISS: Final[object] = object()
# The argument is left out: the resolver's own default applies.
_ABSENT: Final = object()
_NO_VARIABLES: Final = VariableValues(sources={}, coerced={})

Convert = Callable[[Any], Any]
ScalarRegistry = Mapping[object, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class _FromVariable:
    name: str
    variable: str
    non_null: bool
    # When the request leaves the variable out: a coerced default, _ABSENT or MISS.
    missing: object


@dataclasses.dataclass(frozen=True, slots=True)
class _FromLiteral:
    name: str
    value: ValueNode
    type: Any


@dataclasses.dataclass(frozen=True, slots=True)
class _Converted:
    name: str
    python_name: str
    convert: Convert | None


@dataclasses.dataclass(frozen=True, slots=True)
class ArgumentsPlan:
    """The arguments of one field node: `coerce` per request, then `convert` them."""

    constants: Mapping[str, Any]
    variables: tuple[_FromVariable, ...]
    literals: tuple[_FromLiteral, ...]
    converted: tuple[_Converted, ...]

    def coerce(self, variables: VariableValues) -> dict[str, Any] | object:
        """The coerced arguments, as get_argument_values gives them; MISS on any error."""
        coerced = dict(self.constants)
        given = variables.coerced
        for argument in self.variables:
            if argument.variable in given:
                value = given[argument.variable]
                if value is None and argument.non_null:
                    return MISS
                coerced[argument.name] = value
            elif argument.missing is MISS:
                return MISS
            elif argument.missing is not _ABSENT:
                coerced[argument.name] = argument.missing
        for literal in self.literals:
            value = coerce_input_literal(literal.value, literal.type, variables)
            if value is Undefined:
                return MISS
            coerced[literal.name] = value
        return coerced

    def convert(self, coerced: Mapping[str, Any]) -> dict[str, Any]:
        """The resolver's keyword arguments, as Strawberry's convert_arguments gives them."""
        kwargs = {}
        for argument in self.converted:
            if argument.name in coerced:
                value = coerced[argument.name]
                convert = argument.convert
                kwargs[argument.python_name] = value if convert is None else convert(value)
        return kwargs


def plan_arguments(
    definition: GraphQLField,
    node: FieldNode,
    arguments: list[StrawberryArgument],
    *,
    config: StrawberryConfig,
    scalars: ScalarRegistry,
) -> ArgumentsPlan | None:
    """The plan of `node`'s arguments; None when they must take the general way."""
    by_name = {config.name_converter.from_argument(argument): argument for argument in arguments}
    nodes = {argument.name.value: argument for argument in node.arguments or ()}
    constants: dict[str, Any] = {}
    variables: list[_FromVariable] = []
    literals: list[_FromLiteral] = []
    converted: list[_Converted] = []
    for name, argument in definition.args.items():
        strawberry_argument = by_name.get(name)
        # Strawberry finds each value under its GraphQL name, which an out_name would change.
        if strawberry_argument is None or argument.out_name is not None:
            return None
        converter = _converter(strawberry_argument.type, config, scalars)
        if converter is None:
            return None
        converted.append(
            _Converted(
                name, strawberry_argument.python_name, None if converter is _SAME else converter
            )
        )
        argument_node = nodes.get(name)
        value = None if argument_node is None else argument_node.value
        if isinstance(value, VariableNode):
            variables.append(
                _FromVariable(
                    name=name,
                    variable=value.name.value,
                    non_null=is_non_null_type(argument.type),
                    missing=_coerced_once(node, name, argument, argument_node),
                )
            )
        elif value is not None and has_variables(value):
            literals.append(_FromLiteral(name, value, argument.type))
        else:
            once = _coerced_once(node, name, argument, argument_node)
            if once is MISS:
                return None
            if once is not _ABSENT:
                constants[name] = once
    return ArgumentsPlan(constants, tuple(variables), tuple(literals), tuple(converted))


def _coerced_once(
    node: FieldNode, name: str, argument: GraphQLArgument, argument_node: ArgumentNode | None
) -> Any:
    """graphql-core's coercion of the argument without variables (so a variable as if the
    request left it out): its value, _ABSENT when it has none, MISS when it is an error."""
    variable = argument_node is not None and isinstance(argument_node.value, VariableNode)
    if variable and is_required_argument(argument):
        return MISS
    coerced: dict[str, Any] = {}
    try:
        coerce_argument(coerced, node, name, argument, argument_node, _NO_VARIABLES, None)
    except Exception:  # whatever it is, the general path reports it
        return MISS
    return coerced.get(name, _ABSENT)


def has_variables(value: ValueNode) -> bool:
    """Whether `value` names a variable, anywhere in it."""
    if isinstance(value, VariableNode):
        return True
    if isinstance(value, ListValueNode):
        return any(has_variables(item) for item in value.values)
    if isinstance(value, ObjectValueNode):
        return any(has_variables(field.value) for field in value.fields)
    return False


def _same(value: Any) -> Any:
    return value


# A leaf reaches the resolver as graphql-core coerced it.
_SAME: Final = _same


def _converter(type_: Any, config: StrawberryConfig, scalars: ScalarRegistry) -> Convert | None:
    """Strawberry's convert_argument for `type_`, decided once; None if not handled here.

    Every branch follows convert_argument's: Optional unwraps, then None and UNSET pass as
    they are, then lists, leaves, lazy types, enums (leaves too) and input objects.
    """
    if isinstance(type_, StrawberryMaybe):
        return None
    if isinstance(type_, StrawberryOptional):
        return _converter(type_.of_type, config, scalars)
    if isinstance(type_, StrawberryList):
        item_type = type_.of_type
        if _is_leaf_type(item_type, scalars, skip_classes=(GlobalID,)) or _is_optional_leaf_type(
            item_type, scalars, skip_classes=(GlobalID,)
        ):
            return _unless_unset(list)
        item = _converter(item_type, config, scalars)
        if item is None:
            return None
        convert_item = item
        return _unless_unset(lambda value: [convert_item(element) for element in value])
    if type_ is GlobalID:
        return None
    if _is_leaf_type(type_, scalars):
        return _SAME
    if isinstance(type_, LazyType):
        return _converter(type_.resolve_type(), config, scalars)
    if has_enum_definition(type_):
        return _SAME
    if has_object_definition(type_):
        return _input_converter(type_, config, scalars)
    return None


def _input_converter(cls: Any, config: StrawberryConfig, scalars: ScalarRegistry) -> Convert | None:
    definition = cls.__strawberry_definition__
    if not definition.is_input or definition.from_input is not None:
        return None
    fields = []
    for field in definition.fields:
        convert = _converter(field.resolve_type(type_definition=definition), config, scalars)
        if convert is None:
            return None
        fields.append(
            (
                config.name_converter.from_field(field),
                field.python_name,
                None if convert is _SAME else convert,
            )
        )
    # As Strawberry does: a field without a default is None unless given (graphql-core has
    # checked that every required one is).
    unset = tuple(
        field.python_name
        for field in definition.fields
        if field.default_value is dataclasses.MISSING
        and field.default_factory is dataclasses.MISSING
    )

    def build(value: Any) -> Any:
        kwargs = dict.fromkeys(unset)
        for graphql_name, python_name, convert in fields:
            if graphql_name in value:
                given = value[graphql_name]
                kwargs[python_name] = given if convert is None else convert(given)
        return cls(**kwargs)

    return _unless_unset(build)


def _unless_unset(convert: Convert) -> Convert:
    def converted(value: Any) -> Any:
        if value is None or value is UNSET:
            return value
        return convert(value)

    return converted
