"""The trusted documents' manifest: committed, in step with schema/operations/, and honest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from graphql import parse, print_ast

from graphql_api.gql.trusted import (
    DOCUMENTS_MAP_PATH,
    MANIFEST_PATH,
    OPERATIONS_DIR,
    PACKAGED_MANIFEST,
    ManifestError,
    TrustedDocument,
    apollo_manifest,
    canonical_body,
    document_id,
    documents_map,
    from_operations,
    load_manifest,
    normalized_id,
)

STALE = "the trusted documents' manifest is stale: run `chat-history-api export-operations`"
OPERATION_FILES = sorted(OPERATIONS_DIR.glob("*.graphql"))


def test_the_committed_manifest_matches_the_operations() -> None:
    assert MANIFEST_PATH.read_text(encoding="utf-8") == apollo_manifest(from_operations()), STALE


def test_the_committed_id_map_matches_the_operations() -> None:
    assert DOCUMENTS_MAP_PATH.read_text(encoding="utf-8") == documents_map(from_operations()), STALE


def test_the_service_loads_the_committed_manifest() -> None:
    assert PACKAGED_MANIFEST.read_bytes() == MANIFEST_PATH.read_bytes(), STALE


def test_the_manifest_is_apollos_format_with_every_operation() -> None:
    manifest = json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))

    assert manifest["format"] == "apollo-persisted-query-manifest"
    assert manifest["version"] == 1
    assert {entry["name"] for entry in manifest["operations"]} == {
        path.stem for path in OPERATION_FILES
    }
    for entry in manifest["operations"]:
        assert set(entry) == {"id", "name", "type", "body"}
        assert entry["type"] in {"query", "mutation", "subscription"}


@pytest.mark.parametrize("path", OPERATION_FILES, ids=lambda path: Path(path).stem)
def test_an_id_is_the_sha256_of_the_printed_document(path: Path) -> None:
    (document,) = [d for d in from_operations() if d.name == path.stem]
    printed = print_ast(parse(path.read_text(encoding="utf-8")))

    assert document.body == printed
    assert document.id == hashlib.sha256(printed.encode("utf-8")).hexdigest()


def test_formatting_and_comments_do_not_change_an_id() -> None:
    source = (OPERATIONS_DIR / "OpenConversation.graphql").read_text(encoding="utf-8")
    squeezed = " ".join(line.split("#")[0].strip() for line in source.splitlines())
    commented = "# another comment\n" + source.replace("\n", "\n\n  ")

    assert document_id(canonical_body(squeezed)) == document_id(canonical_body(source))
    assert document_id(canonical_body(commented)) == document_id(canonical_body(source))


def test_a_change_to_an_operation_changes_its_id() -> None:
    source = (OPERATIONS_DIR / "HomeConversations.graphql").read_text(encoding="utf-8")
    changed = source.replace("messageCount", "messageCount\n        pinned")

    assert document_id(canonical_body(changed)) != document_id(canonical_body(source))


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("sha256:" + "ab" * 32, "ab" * 32),
        ("SHA256:" + "AB" * 32, "ab" * 32),
        (" " + "Ab" * 32 + " ", "ab" * 32),
        ("3be4abb81fa595e25eb725b2c6a87508", "3be4abb81fa595e25eb725b2c6a87508"),
        ("MyRelayId", "MyRelayId"),
    ],
)
def test_ids_are_compared_the_way_clients_spell_them(raw: str, normalized: str) -> None:
    assert normalized_id(raw) == normalized


def test_both_formats_load_to_the_same_documents(tmp_path: Path) -> None:
    documents = from_operations()
    apollo = tmp_path / "apollo.json"
    apollo.write_text(apollo_manifest(documents))
    mapped = tmp_path / "map.json"
    mapped.write_text(documents_map(documents))

    assert load_manifest(apollo) == documents
    assert load_manifest(mapped) == documents


BODY = "query One { tags { tag } }"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("not json", "is not JSON"),
        ("[1, 2]", "neither an Apollo persisted query manifest nor an id map"),
        (json.dumps({document_id(BODY + " "): BODY}), "is not the SHA-256 of its body"),
        (json.dumps({"": BODY}), "empty id"),
        (json.dumps({"x": "query {"}), "does not parse"),
        (json.dumps({"x": "{ tags { tag } }"}), "exactly one named operation"),
        (
            json.dumps({"format": "apollo-persisted-query-manifest", "version": 2}),
            "unsupported manifest version 2",
        ),
        (
            json.dumps(
                {"format": "apollo-persisted-query-manifest", "version": 1, "operations": [{}]}
            ),
            "string id and body",
        ),
    ],
    ids=[
        "not json",
        "a list",
        "lying id",
        "empty id",
        "no parse",
        "anonymous",
        "version 2",
        "no id",
    ],
)
def test_a_manifest_that_cannot_be_trusted_is_refused_naming_it(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "client.json"
    path.write_text(content)

    with pytest.raises(ManifestError) as refused:
        load_manifest(path)

    assert str(refused.value).startswith(str(path))
    assert problem in str(refused.value)


def test_an_operation_file_is_named_after_its_operation(tmp_path: Path) -> None:
    (tmp_path / "Home.graphql").write_text("query HomeScreen { tags { tag } }")

    with pytest.raises(ManifestError, match=r"Home\.graphql: holds operation 'HomeScreen'"):
        from_operations(tmp_path)


def test_a_manifest_entry_names_its_operation_and_type() -> None:
    (document,) = [d for d in from_operations() if d.name == "SendMessage"]

    assert document == TrustedDocument(
        id=document.id, name="SendMessage", type="mutation", body=document.body
    )
