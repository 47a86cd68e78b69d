"""Execution planned once per known document: the plain fields completed in one tight loop.

graphql-core executes every field the same way: a Path, a ResolveInfo, the resolver (for a
plain Strawberry field, three calls deep to reach `getattr`), then `complete_value`'s chain of
type checks and an awaitable check at each step. On a page of 50 messages that is most of a
request's execution time, spent on fields that only read an attribute of a dataclass.

For a document known at startup (a trusted document) the selections never change, so they are
collected and planned once:
- graphql-core's own `collect_subfields` runs at planning time; the executor hands out those
  field sets instead of collecting them again for every object of every request;
- a field Strawberry resolves by `getattr` alone (no resolver, no arguments, no extensions),
  whose whole selection below is made of such fields, is completed by a closure built for its
  type: read the attribute, coerce the leaves with the type's own coercion, build the dict;
- every other field (a resolver, an argument) goes through graphql-core unchanged.

The closures only complete the expected case. On anything else (null where the type forbids
it, a value a coercion refuses, an exception) they give up without side effects and the field
runs through graphql-core from the start, which then reports exactly what it always does: same
data, same errors, same paths. A document with directives, fragment variables or abstract
types is not planned at all; it runs the general way (it was still parsed and validated once).
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Mapping
from typing import Any, Final

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    OperationDefinitionNode,
    SelectionSetNode,
    Undefined,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution.collect_fields import (
    CollectedFields,
    FieldDetailsList,
    FragmentDetails,
    GroupedFieldSet,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import VariableValues
from graphql.pyutils import AwaitableOrValue, Path, gather_with_cancel
from graphql.type import (
    GraphQLBoolean,
    GraphQLID,
    GraphQLInt,
    GraphQLString,
    TypeNameMetaFieldDef,
)
from graphql.type.scalars import GRAPHQL_MAX_INT, GRAPHQL_MIN_INT
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import CustomGraphQLEnumType, GraphQLCoreConverter
from strawberry.types.field import StrawberryField

# What a completion closure returns when the value is not the expected case.
_MISS: Final = object()
_NO_VARIABLES: Final = VariableValues(sources={}, coerced={})

Complete = Callable[[Any], Any]
Read = Callable[[Any], Any]
_NodesKey = tuple[int, tuple[int, ...]]


@dataclasses.dataclass(frozen=True, slots=True)
class _Step:
    key: str
    details: FieldDetailsList
    # None: the field runs through graphql-core.
    read: Read | None = None
    complete: Complete | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class _FieldSet:
    steps: tuple[_Step, ...]
    # Every step is plain, so the whole set completes without a resolver.
    plain: bool
    # The type's own check of a value, which graphql-core makes before completing it (a type
    # implementing an interface has Strawberry's isinstance check); the closures make it too.
    is_type_of: Callable[[Any, Any], Any] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ExecutionPlan:
    """The collected field sets of one operation and how to complete each of their fields.

    It holds the document's nodes and the field sets alive, so the ids keying them stay theirs.
    """

    document: DocumentNode
    collected: Mapping[_NodesKey, CollectedFields]
    field_sets: Mapping[int, _FieldSet]
    _keep: tuple[GroupedFieldSet, ...]


def plan_operation(
    schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode
) -> ExecutionPlan | None:
    """The plan of a validated operation; None when it must run the general way."""
    fragments: dict[str, FragmentDetails] = {}
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            if definition.variable_definitions:
                return None
            fragments[definition.name.value] = FragmentDetails(definition, None)
    # @skip/@include depend on variables and @defer/@stream change the response's shape.
    if _has_directives(operation.selection_set, operation) or any(
        _has_directives(fragment.definition.selection_set, fragment.definition)
        for fragment in fragments.values()
    ):
        return None
    root = schema.get_root_type(operation.operation)
    if root is None:
        return None
    planner = _Planner(schema, fragments, operation)
    collected = collect_fields(schema, fragments, _NO_VARIABLES, root, operation)
    for details in collected.grouped_field_set.values():
        planner.field(root, details)
    return ExecutionPlan(
        document=document,
        collected=planner.collected,
        field_sets=planner.field_sets,
        _keep=tuple(planner.kept),
    )


def _has_directives(
    selection_set: SelectionSetNode | None,
    owner: OperationDefinitionNode | FragmentDefinitionNode,
) -> bool:
    if owner.directives:
        return True
    pending = [selection_set]
    while pending:
        current = pending.pop()
        if current is None:
            continue
        for selection in current.selections:
            if selection.directives:
                return True
            pending.append(getattr(selection, "selection_set", None))
    return False


def nodes_key(return_type: GraphQLObjectType, details: FieldDetailsList) -> _NodesKey:
    return id(return_type), tuple(id(detail.node) for detail in details)


class _Planner:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDetails],
        operation: OperationDefinitionNode,
    ) -> None:
        self._schema = schema
        self._fragments = fragments
        self._operation = operation
        self.collected: dict[_NodesKey, CollectedFields] = {}
        self.field_sets: dict[int, _FieldSet] = {}
        self.kept: list[GroupedFieldSet] = []

    def field(self, parent: GraphQLObjectType, details: FieldDetailsList) -> _Step:
        """Plan one field (and what it selects); the step says how to complete it."""
        node = details[0].node
        key = (node.alias or node.name).value
        definition = self._definition(parent, node)
        if definition is None:
            return _Step(key, details)
        named = _named(definition.type)
        below: _FieldSet | None = None
        if is_object_type(named):
            below = self._object(named, details)
        elif not is_leaf_type(named):
            # Interfaces and unions need a runtime type: graphql-core decides it.
            return _Step(key, details)
        read = self._reader(parent, definition, details)
        if read is None or (below is not None and not below.plain):
            return _Step(key, details)
        complete = _completer(definition.type, below)
        return _Step(key, details, read, complete)

    def _definition(self, parent: GraphQLObjectType, node: FieldNode) -> GraphQLField | None:
        if node.name.value == "__typename":
            return TypeNameMetaFieldDef
        return self._schema.get_field(parent, node.name.value)

    def _object(self, object_type: GraphQLObjectType, details: FieldDetailsList) -> _FieldSet:
        key = nodes_key(object_type, details)
        collected = self.collected.get(key)
        if collected is None:
            collected = collect_subfields(
                self._schema, self._fragments, _NO_VARIABLES, self._operation, object_type, details
            )
            self.collected[key] = collected
        grouped = collected.grouped_field_set
        planned = self.field_sets.get(id(grouped))
        if planned is None:
            steps = tuple(self.field(object_type, sub) for sub in grouped.values())
            plain = all(s.read is not None for s in steps)
            planned = _FieldSet(steps, plain, object_type.is_type_of)
            self.field_sets[id(grouped)] = planned
            self.kept.append(grouped)
        return planned

    @staticmethod
    def _reader(
        parent: GraphQLObjectType, definition: GraphQLField, details: FieldDetailsList
    ) -> Read | None:
        """How to read a plain field from its parent, as Strawberry would; None if not plain."""
        if definition is TypeNameMetaFieldDef:
            name = parent.name
            return lambda _source: name
        if definition.args or any(detail.node.arguments for detail in details):
            return None
        resolve = definition.resolve
        field = (definition.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
        # `_is_default` marks Strawberry's resolver for a field without resolver and extensions.
        if (
            resolve is None
            or not getattr(resolve, "_is_default", False)
            or not isinstance(field, StrawberryField)
            or field.default_resolver is not getattr
        ):
            return None
        return operator.attrgetter(field.python_name)


def _named(field_type: GraphQLOutputType) -> Any:
    while isinstance(field_type, GraphQLNonNull | GraphQLList):
        field_type = field_type.of_type
    return field_type


def _completer(field_type: GraphQLOutputType, below: _FieldSet | None) -> Complete:
    if is_non_null_type(field_type):
        inner = _completer(field_type.of_type, below)

        def complete_non_null(value: Any) -> Any:
            # graphql-core raises for null here; the general path reports it.
            return _MISS if value is None else inner(value)

        return complete_non_null
    if is_list_type(field_type):
        return _list_completer(_completer(field_type.of_type, below))
    if below is not None:
        return _object_completer(below)
    return _leaf_completer(field_type)


def _list_completer(item: Complete) -> Complete:
    def complete_list(value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list | tuple):
            return _MISS
        completed = []
        for element in value:
            done = item(element)
            if done is _MISS:
                return _MISS
            completed.append(done)
        return completed

    return complete_list


def _object_completer(fields: _FieldSet) -> Complete:
    steps = tuple(_plain(step) for step in fields.steps)
    is_type_of = fields.is_type_of

    def complete_object(value: Any) -> Any:
        if value is None:
            return None
        # Strawberry's check reads only the value; one that wants graphql-core's info fails
        # here, and the general path then makes it as graphql-core does.
        if is_type_of is not None and is_type_of(value, None) is not True:
            return _MISS
        result = {}
        for key, read, complete in steps:
            done = complete(read(value))
            if done is _MISS:
                return _MISS
            result[key] = done
        return result

    return complete_object


def _plain(step: _Step) -> tuple[str, Read, Complete]:
    if step.read is None or step.complete is None:
        raise ValueError(f"{step.key} is not a plain field")
    return step.key, step.read, step.complete


def _leaf_completer(leaf_type: Any) -> Complete:
    coerce = leaf_type.coerce_output_value
    # The built-in scalars return these values unchanged (graphql.type.scalars); skipping the
    # call for them is the whole saving on a leaf. Anything else but our enums goes through the
    # coercion.
    identity: type | None = None
    if leaf_type is GraphQLString or leaf_type is GraphQLID:
        identity = str
    elif leaf_type is GraphQLBoolean:
        identity = bool
    # Strawberry's enum coercion scans the enum's values for each one; asking it once per member
    # here gives the same names.
    members: type | None = None
    names: dict[Any, Any] = {}
    if isinstance(leaf_type, CustomGraphQLEnumType):
        members = leaf_type.wrapped_cls
        every_member: list[Any] = list(members)
        names = {member: coerce(member) for member in every_member}

    def complete_leaf(value: Any) -> Any:
        if value is None:
            return None
        kind = type(value)
        if kind is identity:
            return value
        if kind is members:
            return names[value]
        if kind is int and leaf_type is GraphQLInt and GRAPHQL_MIN_INT <= value <= GRAPHQL_MAX_INT:
            return value
        if isinstance(value, Exception):
            return _MISS
        coerced = coerce(value)
        return _MISS if coerced is None or coerced is Undefined else coerced

    return complete_leaf


class PlannedExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, following `plan` (a keyword argument) where it has one."""

    def __init__(self, *args: Any, plan: ExecutionPlan, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plan = plan

    def collect_subfields(
        self, return_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> CollectedFields:
        collected = self._plan.collected.get(nodes_key(return_type, field_details_list))
        if collected is None:
            return super().collect_subfields(return_type, field_details_list)
        return collected

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        planned = self._plan.field_sets.get(id(grouped_field_set))
        if planned is None or position_context is not None:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        results: dict[str, Any] = {}
        pending: dict[str, Any] = {}
        try:
            for step in planned.steps:
                value: Any = _MISS
                if step.read is not None and step.complete is not None:
                    try:
                        value = step.complete(step.read(source_value))
                    except Exception:  # the general path below reports it
                        value = _MISS
                if value is _MISS:
                    value = self.execute_field(
                        parent_type,
                        source_value,
                        step.details,
                        Path(path, step.key, parent_type.name),
                        None,
                    )
                    if value is Undefined:
                        continue
                    if self.is_awaitable(value):
                        pending[step.key] = value
                results[step.key] = value
        except Exception:
            if pending:
                self.settle_in_background(list(pending.values()))
            raise
        if not pending:
            return results
        return self._gather(results, pending)

    async def _gather(self, results: dict[str, Any], pending: dict[str, Any]) -> dict[str, Any]:
        # As graphql-core's execute_fields: the awaitable fields of an object run together.
        if len(pending) == 1:
            ((key, awaitable),) = pending.items()
            results[key] = await awaitable
        else:
            awaited = await gather_with_cancel(*pending.values())
            results.update(zip(pending, awaited, strict=True))
        return results
