"""Execution planned once per known document: fields completed in tight loops, resolvers called
directly.

graphql-core executes every field the same way: a Path, a ResolveInfo, the field's arguments
coerced from the document, the resolver (for a Strawberry field, through Strawberry's wrapper,
which converts the arguments again and builds an Info), then `complete_value`'s chain of type
checks and an awaitable check at each step. On a page of 50 messages that is most of a
request's execution time, and none of it changes between two requests of the same document.

For a document known in advance (a trusted document, or one the document cache keeps) the
selections never change, so they are collected and planned once:
- graphql-core's own `collect_subfields` runs at planning time; the executor hands out those
  field sets instead of collecting them again for every object of every request, the root's
  included;
- a field Strawberry resolves by `getattr` alone (no resolver, no arguments, no extensions),
  whose whole selection below is made of such fields, is completed by a closure built for its
  type: read the attribute, coerce the leaves with the type's own coercion, build the dict;
- a type read from a record (views.py) is completed from the record itself where its parent
  hands out the record, when the selection asks nothing of it that only the built object has:
  a page of messages then builds no Message;
- a field with a resolver is called directly: its arguments coerced and converted as
  arguments.py plans them, Strawberry's Info built around graphql-core's ResolveInfo (with the
  selection below already converted when it holds no variables), and the result completed by
  a closure where the selection below is plain, by graphql-core's `complete_value` otherwise.

The closures only complete the expected case. On anything else (null where the type forbids
it, a value a coercion refuses, an exception) they give up without side effects and the field
runs through graphql-core from the start (a resolver's result is completed by graphql-core
from the value the resolver returned; a resolver is never called twice), which then reports
exactly what it always does: same data, same errors, same paths. A document with directives,
fragment variables or abstract types is not planned at all (an abstract type below a field:
that field); it runs the general way (it was still parsed and validated once). Neither is a
resolver Strawberry would run differently: field extensions, exception handlers, or arguments
Strawberry converts its own way.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NamedTuple, cast

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
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
from graphql.language import FragmentSpreadNode, InlineFragmentNode, SelectionNode
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
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField
from strawberry.types.info import Info
from strawberry.types.nodes import (
    SelectedField,
    Selection,
    convert_arguments,
    convert_selections,
)

from .arguments import MISS, ArgumentsPlan, has_variables, plan_arguments
from .views import RecordView, record_attribute, view_of

# What a completion closure returns when the value is not the expected case.
_MISS: Final = object()
_NO_VARIABLES: Final = VariableValues(sources={}, coerced={})
_BACKREF: Final = GraphQLCoreConverter.DEFINITION_BACKREF

Complete = Callable[[Any], Any]
Read = Callable[[Any], Any]
_NodesKey = tuple[int, tuple[int, ...]]


@dataclasses.dataclass(frozen=True, slots=True)
class _Resolver:
    """A resolver field's call, prepared: `__call__` is what Strawberry's wrapper would do."""

    definition: GraphQLField
    nodes: list[FieldNode]
    field: StrawberryField
    function: Callable[..., Any]
    # None: the field has no arguments.
    arguments: ArgumentsPlan | None
    info_class: type[Info[Any, Any]]
    # The names the resolver takes its Info and its parent by; whether the parent goes first.
    info_name: str | None
    parent_names: tuple[str, ...]
    parent_first: bool
    # Info.selected_fields converted once where the variables cannot change it: whole, or
    # (when only the field's own arguments hold variables) each node's selections, its
    # arguments then converted per request. None: Strawberry converts it all when asked.
    # Every request of the plan reads the same objects: resolvers look in them, never change
    # them (ours only look for names).
    selected: list[Selection] | None
    selected_below: tuple[SelectedField, ...] | None

    def __call__(
        self, source: Any, info: GraphQLResolveInfo[Any], coerced: Mapping[str, Any]
    ) -> Any:
        kwargs = {} if self.arguments is None else self.arguments.convert(coerced)
        if self.info_name is not None:
            strawberry_info = self.info_class(_raw_info=info, _field=self.field)
            selected = self.selected
            if selected is None and self.selected_below is not None:
                selected = [
                    dataclasses.replace(field, arguments=convert_arguments(info, node.arguments))
                    for field, node in zip(self.selected_below, self.nodes, strict=True)
                ]
            if selected is not None:
                # Info.selected_fields is a cached_property: this is its cached value.
                vars(strawberry_info)["selected_fields"] = selected
            kwargs[self.info_name] = strawberry_info
        for name in self.parent_names:
            kwargs[name] = source
        if self.parent_first:
            return self.function(source, **kwargs)
        return self.function(**kwargs)


@dataclasses.dataclass(frozen=True, slots=True)
class _Step:
    key: str
    details: FieldDetailsList
    # Set for a plain field (or a record read from the parent): how to read it.
    read: Read | None = None
    # How to complete the value read or resolved; None: graphql-core completes it.
    complete: Complete | None = None
    # Set for a resolver field called directly.
    resolver: _Resolver | None = None
    # The field's type, for a plain step: its completion may skip `complete` (see _plain).
    field_type: GraphQLOutputType | None = None


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
    root: _FieldSet
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
    steps = tuple(planner.field(root, details) for details in collected.grouped_field_set.values())
    return ExecutionPlan(
        document=document,
        root=_FieldSet(steps, plain=False),
        collected=planner.collected,
        field_sets=planner.field_sets,
        _keep=(collected.grouped_field_set, *planner.kept),
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


class _Strawberry(NamedTuple):
    """What calling Strawberry's resolvers directly needs of its schema."""

    config: Any
    scalars: Mapping[object, Any]
    info_class: type[Info[Any, Any]]
    # Whether Info.selected_fields is the cached_property a converted selection can fill.
    selections_cached: bool


def _strawberry_of(schema: GraphQLSchema) -> _Strawberry | None:
    """None when Strawberry would run resolvers in a way not planned here (exception
    handlers), or the schema is not Strawberry's."""
    strawberry_schema = getattr(schema, "_strawberry_schema", None)
    if strawberry_schema is None or strawberry_schema.exception_handlers:
        return None
    info_class = strawberry_schema.config.info_class
    if not (isinstance(info_class, type) and issubclass(info_class, Info)):
        return None
    selected = inspect.getattr_static(info_class, "selected_fields", None)
    return _Strawberry(
        config=strawberry_schema.config,
        scalars=strawberry_schema.schema_converter.scalar_registry,
        info_class=info_class,
        selections_cached=isinstance(selected, functools.cached_property),
    )


class _SelectionInfo(NamedTuple):
    """What Strawberry's convert_selections reads of a ResolveInfo."""

    fragments: Mapping[str, FragmentDefinitionNode]
    variable_values: Mapping[str, Any]


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
        self._strawberry = _strawberry_of(schema)
        self.collected: dict[_NodesKey, CollectedFields] = {}
        self.field_sets: dict[int, _FieldSet] = {}
        # Field sets completed from a record instead of the object (views.py): closures only.
        self._record_sets: dict[int, _FieldSet] = {}
        self.kept: list[GroupedFieldSet] = []

    def field(
        self, parent: GraphQLObjectType, details: FieldDetailsList, view: RecordView | None = None
    ) -> _Step:
        """Plan one field (and what it selects); the step says how to complete it. With
        `view`, the parent is read from its record: the step is plain or it is general."""
        node = details[0].node
        key = (node.alias or node.name).value
        definition = self._definition(parent, node)
        if definition is None:
            return _Step(key, details)
        if definition is TypeNameMetaFieldDef:
            name = parent.name
            complete = _completer(definition.type, None)
            return _Step(key, details, lambda _source: name, complete, field_type=definition.type)
        named = _named(definition.type)
        object_type = named if is_object_type(named) else None
        if object_type is None and not is_leaf_type(named):
            # Interfaces and unions need a runtime type: graphql-core decides it.
            return _Step(key, details)
        field = (definition.extensions or {}).get(_BACKREF)
        if not isinstance(field, StrawberryField):
            return _Step(key, details)
        if view is not None:
            return self._from_record(view, definition, field, details)
        if _is_plain(definition, field, details):
            below = None if object_type is None else self._object(object_type, details)
            if below is not None and not below.plain:
                return _Step(key, details)
            complete = _completer(definition.type, below)
            read = operator.attrgetter(field.python_name)
            return _Step(key, details, read, complete, field_type=definition.type)
        record = record_attribute(field.metadata)
        nested = None if object_type is None else _view(object_type)
        if record is not None and object_type is not None and nested is not None:
            from_record = self._object(object_type, details, nested)
            if from_record.plain:
                complete = _completer(definition.type, from_record)
                read = operator.attrgetter(record)
                return _Step(key, details, read, complete, field_type=definition.type)
        resolver = self._resolver(definition, field, details)
        if resolver is None:
            return _Step(key, details)
        below = None if object_type is None else self._object(object_type, details)
        result = _completer(definition.type, below) if below is None or below.plain else None
        return _Step(key, details, complete=result, resolver=resolver)

    def _from_record(
        self,
        view: RecordView,
        definition: GraphQLField,
        field: StrawberryField,
        details: FieldDetailsList,
    ) -> _Step:
        node = details[0].node
        key = (node.alias or node.name).value
        read = view.reader(field.python_name) if _is_plain(definition, field, details) else None
        if read is None:
            return _Step(key, details)
        named = _named(definition.type)
        below = None
        if is_object_type(named):
            nested = _view(named)
            if nested is not None:
                # The record holds the record this field's type is read from.
                below = self._object(named, details, nested)
            elif field.python_name in view.readers:
                # The view's own reader builds the object.
                below = self._object(named, details)
            else:
                return _Step(key, details)
            if not below.plain:
                return _Step(key, details)
        complete = _completer(definition.type, below)
        return _Step(key, details, read, complete, field_type=definition.type)

    def _definition(self, parent: GraphQLObjectType, node: FieldNode) -> GraphQLField | None:
        if node.name.value == "__typename":
            return TypeNameMetaFieldDef
        return self._schema.get_field(parent, node.name.value)

    def _object(
        self,
        object_type: GraphQLObjectType,
        details: FieldDetailsList,
        view: RecordView | None = None,
    ) -> _FieldSet:
        key = nodes_key(object_type, details)
        collected = self.collected.get(key)
        if collected is None:
            collected = collect_subfields(
                self._schema, self._fragments, _NO_VARIABLES, self._operation, object_type, details
            )
            self.collected[key] = collected
        grouped = collected.grouped_field_set
        cache = self.field_sets if view is None else self._record_sets
        planned = cache.get(id(grouped))
        if planned is None:
            steps = tuple(self.field(object_type, sub, view) for sub in grouped.values())
            every_step_plain = all(step.read is not None for step in steps)
            if view is not None:
                # The object built from the record is of this type by from_record's contract,
                # so its is_type_of holds.
                planned = _FieldSet(steps, every_step_plain)
            else:
                is_type_of = _is_type_of(object_type)
                planned = _FieldSet(
                    steps,
                    every_step_plain and is_type_of is not _MISS,
                    None if is_type_of is _MISS else is_type_of,
                )
            cache[id(grouped)] = planned
            self.kept.append(grouped)
        return planned

    def _resolver(
        self, definition: GraphQLField, field: StrawberryField, details: FieldDetailsList
    ) -> _Resolver | None:
        """How to call the field's resolver as Strawberry would; None to leave it to it."""
        strawberry = self._strawberry
        resolver = field.base_resolver
        if (
            strawberry is None
            or resolver is None
            or field.extensions
            or field.is_subscription
            # Strawberry's own wrapper, as it builds it for a field with a resolver.
            or getattr(definition.resolve, "_is_default", None) is not False
            or not callable(resolver.wrapped_func)
            or any(detail.fragment_variable_values for detail in details)
        ):
            return None
        node = details[0].node
        arguments = None
        if definition.args:
            arguments = plan_arguments(
                definition,
                node,
                field.arguments,
                config=strawberry.config,
                scalars=strawberry.scalars,
            )
            if arguments is None:
                return None
        nodes = [detail.node for detail in details]
        info = resolver.info_parameter
        selected: list[Selection] | None = None
        below: tuple[SelectedField, ...] | None = None
        if info is not None and strawberry.selections_cached:
            converting = cast(GraphQLResolveInfo[Any], _SelectionInfo(self._fragment_nodes(), {}))
            if not self._uses_variables(nodes):
                selected = convert_selections(converting, nodes)
            elif not any(self._uses_variables(_selections(node)) for node in nodes):
                # The nodes themselves convert with no variables: their arguments are replaced.
                below = tuple(SelectedField.from_node(converting, node) for node in nodes)
        return _Resolver(
            definition=definition,
            nodes=nodes,
            field=field,
            function=resolver.wrapped_func,
            arguments=arguments,
            info_class=strawberry.info_class,
            info_name=None if info is None else info.name,
            parent_names=tuple(
                parameter.name
                for parameter in (resolver.parent_parameter, resolver.root_parameter)
                if parameter is not None
            ),
            parent_first=resolver.self_parameter is not None,
            selected=selected,
            selected_below=below,
        )

    def _fragment_nodes(self) -> dict[str, FragmentDefinitionNode]:
        return {name: fragment.definition for name, fragment in self._fragments.items()}

    def _uses_variables(self, nodes: Sequence[SelectionNode]) -> bool:
        """Whether an argument anywhere in `nodes` or below them names a variable."""
        pending: list[Any] = list(nodes)
        seen: set[str] = set()
        while pending:
            selection = pending.pop()
            if isinstance(selection, FieldNode) and any(
                has_variables(argument.value) for argument in selection.arguments or ()
            ):
                return True
            if isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self._fragments.get(name)
                if name not in seen and fragment is not None:
                    seen.add(name)
                    pending.append(fragment.definition)
                continue
            if (
                isinstance(selection, FieldNode | InlineFragmentNode | FragmentDefinitionNode)
                and selection.selection_set is not None
            ):
                pending.extend(selection.selection_set.selections)
        return False


def _selections(node: FieldNode) -> tuple[SelectionNode, ...]:
    return () if node.selection_set is None else tuple(node.selection_set.selections)


def _is_plain(definition: GraphQLField, field: StrawberryField, details: FieldDetailsList) -> bool:
    """Whether Strawberry resolves the field by `getattr` alone."""
    if definition.args or any(detail.node.arguments for detail in details):
        return False
    resolve = definition.resolve
    # `_is_default` marks Strawberry's resolver for a field without resolver and extensions.
    return (
        resolve is not None
        and getattr(resolve, "_is_default", False) is True
        and field.base_resolver is None
        and field.default_resolver is getattr
    )


def _view(object_type: GraphQLObjectType) -> RecordView | None:
    definition = (object_type.extensions or {}).get(_BACKREF)
    if not isinstance(definition, StrawberryObjectDefinition):
        return None
    return view_of(definition.origin)


def _is_type_of(object_type: GraphQLObjectType) -> Any:
    """None without is_type_of; the one Strawberry generates for a type implementing an
    interface (`is_type_of(obj, _info)`: an isinstance check that never reads the info), which
    the closures call with no info; _MISS for any other, which only graphql-core calls, with
    its info (the field set is then completed by graphql-core)."""
    if object_type.is_type_of is None:
        return None
    definition = (object_type.extensions or {}).get(_BACKREF)
    if not isinstance(definition, StrawberryObjectDefinition) or definition.is_type_of:
        return _MISS
    return object_type.is_type_of


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
        # Strawberry's own check never reads graphql-core's info (see _is_type_of).
        if is_type_of is not None and is_type_of(value, None) is not True:
            return _MISS
        result = {}
        for key, read, complete, unchanged, nullable in steps:
            done = read(value)
            # What `complete` would give back as it is, without the calls.
            if type(done) is not unchanged and (done is not None or not nullable):
                done = complete(done)
                if done is _MISS:
                    return _MISS
            result[key] = done
        return result

    return complete_object


def _plain(step: _Step) -> tuple[str, Read, Complete, type | None, bool]:
    """A plain step as its object's closure runs it: (key, read, complete, the type of a value
    `complete` returns unchanged, whether null is complete as it is)."""
    if step.read is None or step.complete is None or step.field_type is None:
        raise ValueError(f"{step.key} is not a plain field")
    nullable = not is_non_null_type(step.field_type)
    leaf = step.field_type if nullable else cast(GraphQLNonNull[Any], step.field_type).of_type
    return step.key, step.read, step.complete, _unchanged(leaf), nullable


def _unchanged(leaf_type: Any) -> type | None:
    """The Python type the built-in scalar returns unchanged (graphql.type.scalars)."""
    if leaf_type is GraphQLString or leaf_type is GraphQLID:
        return str
    if leaf_type is GraphQLBoolean:
        return bool
    return None


def _leaf_completer(leaf_type: Any) -> Complete:
    coerce = leaf_type.coerce_output_value
    # The built-in scalars return these values unchanged (graphql.type.scalars); skipping the
    # call for them is the whole saving on a leaf. Anything else but our enums goes through the
    # coercion.
    identity = _unchanged(leaf_type)
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

    def execute_root_grouped_field_set(
        self,
        root_type: GraphQLObjectType,
        root_value: Any,
        grouped_field_set: GroupedFieldSet,
        serially: bool,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        if position_context is not None or self.abort_signal is not None:
            return super().execute_root_grouped_field_set(
                root_type, root_value, grouped_field_set, serially, position_context
            )
        steps = self._plan.root.steps
        if serially:
            return self._execute_serially(root_type, root_value, steps)
        return self._execute(root_type, root_value, None, steps)

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        planned = self._plan.field_sets.get(id(grouped_field_set))
        if planned is None or position_context is not None or self.abort_signal is not None:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        return self._execute(parent_type, source_value, path, planned.steps)

    def _execute(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        path: Path | None,
        steps: tuple[_Step, ...],
    ) -> AwaitableOrValue[dict[str, Any]]:
        results: dict[str, Any] = {}
        pending: dict[str, Any] = {}
        try:
            for step in steps:
                value = self._run(step, parent_type, source, path)
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

    def _execute_serially(
        self, parent_type: GraphQLObjectType, source: Any, steps: tuple[_Step, ...]
    ) -> AwaitableOrValue[dict[str, Any]]:
        # As graphql-core's execute_fields_serially: each root field done before the next.
        results: dict[str, Any] = {}
        for index, step in enumerate(steps):
            value = self._run(step, parent_type, source, None)
            if value is Undefined:
                continue
            if self.is_awaitable(value):
                return self._serially_after(
                    results, step.key, value, parent_type, source, steps[index + 1 :]
                )
            results[step.key] = value
        return results

    async def _serially_after(
        self,
        results: dict[str, Any],
        key: str,
        awaitable: Any,
        parent_type: GraphQLObjectType,
        source: Any,
        steps: tuple[_Step, ...],
    ) -> dict[str, Any]:
        results[key] = await awaitable
        for step in steps:
            value = self._run(step, parent_type, source, None)
            if value is Undefined:
                continue
            if self.is_awaitable(value):
                value = await value
            results[step.key] = value
        return results

    def _run(
        self, step: _Step, parent_type: GraphQLObjectType, source: Any, path: Path | None
    ) -> Any:
        """The step's value for `source`: completed, awaitable, or Undefined."""
        if step.read is not None and step.complete is not None:
            try:
                value = step.complete(step.read(source))
            except Exception:  # the general path below reports it
                value = _MISS
            if value is not _MISS:
                return value
        field_path = Path(path, step.key, parent_type.name)
        if step.resolver is not None:
            return self._resolve(step, step.resolver, parent_type, source, field_path)
        return self.execute_field(parent_type, source, step.details, field_path, None)

    def _resolve(
        self,
        step: _Step,
        resolver: _Resolver,
        parent_type: GraphQLObjectType,
        source: Any,
        path: Path,
    ) -> Any:
        """graphql-core's execute_field, with the resolver called as planned."""
        coerced: Any = {}
        if resolver.arguments is not None:
            coerced = resolver.arguments.coerce(self.variable_values)
            if coerced is MISS:
                # Nothing ran yet: graphql-core coerces again and reports the error.
                return self.execute_field(parent_type, source, step.details, path, None)
        definition = resolver.definition
        info = self.build_resolve_info(definition, resolver.nodes, parent_type, path)
        try:
            result = resolver(source, info, coerced)
            if self.is_awaitable(result):
                return self._complete_later(step, info, path, result)
            completed = self._complete(step, info, path, result)
            if self.is_awaitable(completed):
                return self._awaited(step, info, path, completed)
        except Exception as raw_error:
            self.handle_field_error(raw_error, definition.type, step.details, path)
            return None
        return completed

    def _complete(self, step: _Step, info: GraphQLResolveInfo[Any], path: Path, result: Any) -> Any:
        if step.complete is not None:
            try:
                done = step.complete(result)
            except Exception:  # graphql-core's completion below reports it
                done = _MISS
            if done is not _MISS:
                return done
        return_type = info.return_type
        return self.complete_value(return_type, step.details, info, path, result, None)

    async def _complete_later(
        self, step: _Step, info: GraphQLResolveInfo[Any], path: Path, result: Any
    ) -> Any:
        # As graphql-core's complete_awaitable_value.
        try:
            completed = self._complete(step, info, path, await result)
            if self.is_awaitable(completed):
                completed = await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, info.return_type, step.details, path)
            completed = None
        return completed

    async def _awaited(
        self, step: _Step, info: GraphQLResolveInfo[Any], path: Path, completed: Any
    ) -> Any:
        # As graphql-core's execute_field awaits a completion.
        try:
            return await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, info.return_type, step.details, path)
            return None

    async def _gather(self, results: dict[str, Any], pending: dict[str, Any]) -> dict[str, Any]:
        # As graphql-core's execute_fields: the awaitable fields of an object run together.
        if len(pending) == 1:
            ((key, awaitable),) = pending.items()
            results[key] = await awaitable
        else:
            awaited = await gather_with_cancel(*pending.values())
            results.update(zip(pending, awaited, strict=True))
        return results
