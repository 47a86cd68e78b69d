"""The trusted-documents benchmarks' pieces: their documents load as a client manifest would,
and their variables fit the operations they are sent with."""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path

import pytest
from graphql import OperationDefinitionNode, parse
from graphql.execution.values import get_variable_values

from benchmarks.scenarios import TRUSTED_MANIFEST, bench_documents, trusted_env
from benchmarks.trusted_documents import (
    QUICK,
    UNMEASURED,
    Target,
    measured_documents,
    render,
    variables_for,
)
from graphql_api.gql.documents import KnownDocuments
from graphql_api.gql.limits import DocumentLimits
from graphql_api.gql.schema import build_schema
from graphql_api.gql.trusted import TrustedDocument, from_operations, load_manifest

SCHEMA = build_schema()


def test_the_bench_manifest_is_what_the_trusted_server_loads(tmp_path: Path) -> None:
    env = trusted_env(tmp_path)

    assert env["TRUSTED_DOCUMENTS_ONLY"] == "true"
    path = Path(env["TRUSTED_DOCUMENTS_MANIFESTS"])
    assert path == tmp_path / TRUSTED_MANIFEST
    assert load_manifest(path) == bench_documents()
    known = KnownDocuments.load(
        [path],
        schema=SCHEMA._schema,
        limits=DocumentLimits(),
        validate=lambda document: [],
        registrations=0,
    )
    assert len(known) == 6
    assert all(known.by_id(document.id) is not None for document in bench_documents())


@pytest.mark.parametrize("document", measured_documents(), ids=lambda document: document.name)
def test_the_benchmarks_variables_fit_each_operation(document: TrustedDocument) -> None:
    target = Target(focus_id=str(uuid.uuid4()), writable=[str(uuid.uuid4())])
    target.older_cursor = "cursor"
    target.created.append(str(uuid.uuid4()))
    target.project_id = str(uuid.uuid4())
    target.created_projects.append(str(uuid.uuid4()))
    target.share_link_id = secrets.token_urlsafe(24)
    target.created_links.append(target.share_link_id)
    (operation,) = parse(document.body).definitions
    assert isinstance(operation, OperationDefinitionNode)

    coerced = get_variable_values(
        SCHEMA._schema,
        operation.variable_definitions or (),
        variables_for(operation.name.value if operation.name else "", target),
    )

    assert not isinstance(coerced, list), coerced


def test_every_operation_is_measured_but_those_that_cannot_be_repeated_alone() -> None:
    measured = {document.name for document in measured_documents()}

    assert measured | UNMEASURED == {document.name for document in from_operations()}
    assert not measured & UNMEASURED


def test_the_figures_are_rendered_per_operation() -> None:
    text = render(
        {"HomeConversations": {"general": 0.006, "fast": 0.005}},
        {"nproc": 2, "python": "3.11", "loadavg": (1.0, 1.0, 1.0)},
        QUICK,
    )

    assert "| HomeConversations | 6.00 | 5.00 | 1.00 | 0.83x |" in text
