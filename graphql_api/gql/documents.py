"""The documents a runner knows before any request: the trusted ones, prepared at startup.

Each document of the manifests is parsed, held to the document limits, validated against the
schema and planned (planned.py) once, when the app is built. A manifest with a document that
fails any of these stops the service from starting: a schema change that breaks an operation
a shipped client sends is found at deploy time, not by that client.

Known documents are found by id (the manifest's) and by their exact text (a client sending
the canonical body as `query`), both without parsing anything. Automatic persisted queries
(APQ) registered at run time are kept apart: a bounded map from id to text, per process, whose
texts then take the general path (and its document cache) like any other query.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    OperationType,
    parse,
)

from .limits import DocumentLimits, first_violation
from .planned import ExecutionPlan, plan_operation
from .trusted import ManifestError, TrustedDocument, load_manifest, sole_operation

Validate = Callable[[DocumentNode], list[GraphQLError]]


@dataclasses.dataclass(frozen=True, slots=True)
class KnownDocument:
    id: str
    body: str
    document: DocumentNode
    operation: OperationDefinitionNode
    # None: the document runs through graphql-core unplanned (see planned.py).
    plan: ExecutionPlan | None

    @property
    def name(self) -> str:
        return self.operation.name.value if self.operation.name else ""

    @property
    def kind(self) -> OperationType:
        return self.operation.operation


class KnownDocuments:
    """Known documents by id and by text, and the APQ registrations beside them."""

    def __init__(self, documents: Iterable[KnownDocument], *, registrations: int) -> None:
        self._by_id: dict[str, KnownDocument] = {}
        self._by_text: dict[str, KnownDocument] = {}
        for document in documents:
            self._by_id[document.id] = document
            self._by_text.setdefault(document.body, document)
        self._registrations = registrations
        self._registered: collections.OrderedDict[str, str] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._by_id)

    def by_id(self, document_id: str) -> KnownDocument | None:
        return self._by_id.get(document_id)

    def by_text(self, text: str) -> KnownDocument | None:
        return self._by_text.get(text)

    def registered(self, document_id: str) -> str | None:
        """The text an APQ client registered under `document_id`, if it is still kept."""
        text = self._registered.get(document_id)
        if text is not None:
            self._registered.move_to_end(document_id)
        return text

    def register(self, document_id: str, text: str) -> None:
        """Keep `text` under its id (the caller checked the hash), evicting the oldest."""
        if self._registrations <= 0:
            return
        self._registered[document_id] = text
        self._registered.move_to_end(document_id)
        while len(self._registered) > self._registrations:
            self._registered.popitem(last=False)

    @classmethod
    def load(
        cls,
        manifests: Iterable[Path],
        *,
        schema: GraphQLSchema,
        limits: DocumentLimits,
        validate: Validate,
        registrations: int,
    ) -> KnownDocuments:
        """Every document of `manifests` prepared; ManifestError for the first that fails."""
        prepared: dict[str, KnownDocument] = {}
        by_body: dict[str, KnownDocument] = {}
        for path in manifests:
            for trusted in load_manifest(path):
                known = by_body.get(trusted.body)
                if known is None:
                    known = _prepare(trusted, path, schema=schema, limits=limits, validate=validate)
                    by_body[trusted.body] = known
                elif known.id != trusted.id:
                    known = dataclasses.replace(known, id=trusted.id)
                earlier = prepared.get(known.id)
                if earlier is not None and earlier.body != known.body:
                    raise ManifestError(f"{path}: id {known.id} names two different documents")
                prepared[known.id] = known
        return cls(prepared.values(), registrations=registrations)


def _prepare(
    trusted: TrustedDocument,
    path: Path,
    *,
    schema: GraphQLSchema,
    limits: DocumentLimits,
    validate: Validate,
) -> KnownDocument:
    where = f"{path}: {trusted.name or trusted.id}"
    if len(trusted.body.encode()) > limits.max_bytes:
        raise ManifestError(f"{where}: larger than MAX_QUERY_BYTES ({limits.max_bytes})")
    try:
        document = parse(trusted.body, max_tokens=limits.max_tokens)
    except GraphQLSyntaxError as exc:
        raise ManifestError(f"{where}: {exc.message}") from None
    violation = first_violation(document, limits)
    if violation is not None:
        raise ManifestError(f"{where}: {violation.message}")
    errors = validate(document)
    if errors:
        raise ManifestError(f"{where}: does not validate: {errors[0].message}")
    operation = sole_operation(document, where)
    return KnownDocument(
        id=trusted.id,
        body=trusted.body,
        document=document,
        operation=operation,
        plan=plan_operation(schema, document, operation),
    )
