"""Projects in our export format: written before the conversations, read back first, in both
layouts, against the published JSON Schema."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from graphql_api.transfer import (
    ExportFormat,
    ExportWriter,
    ImportedConversation,
    ImportedProject,
    MalformedExportError,
    ReadResult,
)
from tests.transfer_checks import FIXTURES, imported, read_all

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schema" / "export.schema.json").read_text()
)
EXPORTED_AT = datetime(2024, 8, 1, 10, 53, 20, 123456, tzinfo=UTC)
LAYOUTS: list[ExportFormat] = ["json", "ndjson"]


def a_project(
    index: int, *, instructions: str | None = "Answer in metric units."
) -> ImportedProject:
    created = datetime(2024, 7, 1, tzinfo=UTC) + timedelta(hours=index)
    return ImportedProject(
        id=f"3f2a1b0c-0000-4000-8000-{index:012d}",
        name=f"Project {index}",
        instructions=instructions,
        created_at=created,
        updated_at=created + timedelta(minutes=5),
    )


def written(
    projects: list[ImportedProject], conversations: list[ImportedConversation], layout: ExportFormat
) -> str:
    out = io.StringIO()
    with ExportWriter(out, format=layout, exported_at=EXPORTED_AT) as writer:
        for project in projects:
            writer.project(project)
        for conversation in conversations:
            writer.write(conversation)
    return out.getvalue()


def validate(text: str, layout: ExportFormat) -> None:
    validator = jsonschema.Draft202012Validator
    if layout == "json":
        jsonschema.validate(json.loads(text), SCHEMA, cls=validator)
        return
    header, *lines = text.splitlines()
    for index, line in enumerate([header, *lines]):
        value = json.loads(line)
        part = (
            "ndjsonHeader"
            if index == 0
            else "projectLine"
            if "project" in value
            else "conversation"
        )
        jsonschema.validate(
            value, {"$ref": f"#/$defs/{part}", "$defs": SCHEMA["$defs"]}, cls=validator
        )


def read_back(tmp_path: Path, text: str, layout: ExportFormat) -> list[ReadResult]:
    path = tmp_path / f"export.{layout}"
    path.write_text(text, encoding="utf-8")
    return read_all(path)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_projects_come_back_first_and_conversations_keep_their_project(
    tmp_path: Path, layout: ExportFormat
) -> None:
    rust, empty, siblings = imported(read_all(FIXTURES / "chat-history-export.json"))
    projects = [a_project(0), a_project(1, instructions=None)]
    rust = dataclasses.replace(rust, project_id=projects[0].id)
    text = written(projects, [rust, empty, siblings], layout)

    validate(text, layout)
    results = read_back(tmp_path, text, layout)

    assert results[:2] == projects
    assert imported(results[2:]) == [rust, empty, siblings]
    assert [conversation.project_id for conversation in imported(results)] == [
        projects[0].id,
        None,
        None,
    ]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_projects_longer_than_the_header_read_ahead_are_still_read(
    tmp_path: Path, layout: ExportFormat
) -> None:
    # 20 projects of 8,000 characters of instructions: far past the 64 KB a reader peeks.
    projects = [a_project(index, instructions="x" * 8000) for index in range(20)]
    (conversation, *_) = imported(read_all(FIXTURES / "chat-history-export.json"))

    results = read_back(tmp_path, written(projects, [conversation], layout), layout)

    assert results == [*projects, conversation]


def test_an_export_without_projects_is_written_as_before_them() -> None:
    conversations = imported(read_all(FIXTURES / "chat-history-export.json"))

    text = written([], conversations, "json")

    assert text == (FIXTURES / "chat-history-export.json").read_text(encoding="utf-8")
    assert "projects" not in json.loads(text)


def test_a_malformed_project_stops_the_import_where_it_is(tmp_path: Path) -> None:
    text = written([a_project(0)], [], "ndjson").replace('"name":"Project 0"', '"name":""')
    with pytest.raises(MalformedExportError, match=r"line 2 name is missing"):
        read_back(tmp_path, text, "ndjson")
    document = json.loads(written([a_project(0)], [], "json"))
    document["projects"][0]["id"] = "not-a-uuid"
    with pytest.raises(MalformedExportError, match=r"project #0 id 'not-a-uuid' is not a UUID"):
        read_back(tmp_path, json.dumps(document), "json")


def test_the_writer_puts_every_project_before_the_conversations() -> None:
    (conversation, *_) = imported(read_all(FIXTURES / "chat-history-export.json"))
    with ExportWriter(io.StringIO(), exported_at=EXPORTED_AT) as writer:
        writer.write(conversation)
        with pytest.raises(RuntimeError, match="projects before the conversations"):
            writer.project(a_project(0))


def test_the_schema_refuses_a_project_without_a_name() -> None:
    document: dict[str, Any] = json.loads(written([a_project(0)], [], "json"))
    del document["projects"][0]["name"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
