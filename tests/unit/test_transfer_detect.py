"""`--format auto` and the files an import names: folders, zips, split parts, mistakes."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from graphql_api.transfer import (
    ExportReader,
    TransferError,
    UnknownFormatError,
    detect_format,
)
from tests.transfer_checks import FIXTURES, imported, read_all


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("chatgpt-conversations.json", "chatgpt"),
        ("chatgpt-split", "chatgpt"),
        ("chatgpt-split/conversations-001.json", "chatgpt"),
        ("chatgpt-export.zip", "chatgpt"),
        ("chatgpt-export-split.zip", "chatgpt"),
        ("claude-conversations.json", "claude"),
        ("claude-export.zip", "claude"),
        ("chat-history-export.json", "json"),
        ("chat-history-export.ndjson", "json"),
        ("chat-history-export-damaged.ndjson", "json"),
    ],
)
def test_every_fixture_is_recognised(name: str, expected: str) -> None:
    assert detect_format([FIXTURES / name]) == expected


def test_files_of_different_formats_are_refused_together() -> None:
    with pytest.raises(UnknownFormatError, match="the files are of different formats") as raised:
        detect_format([FIXTURES / "chatgpt-conversations.json", FIXTURES / "claude-export.zip"])
    assert "claude-export.zip:conversations.json" in str(raised.value)


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"hello, world", "not JSON"),
        (b"[]", "an empty list"),
        (b'{"some": "object"}', "another object"),
        (b'[{"question": "?", "answer": "!"}]', "a list of something else"),
        (b"", "an empty file"),
    ],
)
def test_what_is_not_an_export_is_named_with_a_way_out(
    tmp_path: Path, content: bytes, what: str
) -> None:
    path = tmp_path / "mystery.json"
    path.write_bytes(content)
    with pytest.raises(UnknownFormatError, match="name it with --format") as raised:
        detect_format([path])
    assert str(raised.value).startswith(f"{path}: not a ChatGPT, Claude or chat-history-api export")


def test_a_missing_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(TransferError, match="no such file or folder"):
        ExportReader([tmp_path / "nope.zip"])


def test_a_zip_without_conversations_is_named(tmp_path: Path) -> None:
    path = tmp_path / "photos.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("IMG_0001.jpeg", b"...")
    with pytest.raises(UnknownFormatError, match=r"the zip holds no conversations\.json"):
        ExportReader([path])


def test_a_folder_without_conversations_is_named(tmp_path: Path) -> None:
    with pytest.raises(UnknownFormatError, match=r"holds no conversations\.json"):
        ExportReader([tmp_path])


def test_a_zip_with_a_folder_around_the_export_is_read(tmp_path: Path) -> None:
    path = tmp_path / "wrapped.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.write(FIXTURES / "claude-conversations.json", "export-2024/conversations.json")
    reader = ExportReader([path])
    assert reader.format == "claude"
    assert len(imported(list(reader))) == 4


def test_split_parts_are_read_in_number_order_not_name_order(tmp_path: Path) -> None:
    source = json.loads((FIXTURES / "chatgpt-conversations.json").read_text())
    for number, conversation in enumerate(source):
        (tmp_path / f"conversations-{number:d}.json").write_text(json.dumps([conversation]))
    shutil.move(tmp_path / "conversations-4.json", tmp_path / "conversations-10.json")
    got = read_all(tmp_path)
    assert [r.origin.file.rsplit("/", 1)[-1] for r in got] == [  # type: ignore[union-attr]
        "conversations-0.json",
        "conversations-1.json",
        "conversations-2.json",
        "conversations-3.json",
        "conversations-10.json",
    ]


def test_a_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "conversations.json"
    path.write_bytes(b"\xef\xbb\xbf" + (FIXTURES / "claude-conversations.json").read_bytes())
    assert imported(read_all(path)) == imported(read_all(FIXTURES / "claude-conversations.json"))


def test_the_reader_reports_bytes_for_progress_including_inside_a_zip() -> None:
    reader = ExportReader([FIXTURES / "chatgpt-export.zip"])
    member = zipfile.ZipFile(FIXTURES / "chatgpt-export.zip").getinfo("conversations.json")
    assert reader.total_bytes == member.file_size
    assert reader.bytes_read == 0
    results = iter(reader)
    next(results)
    assert 0 < reader.bytes_read <= reader.total_bytes
    list(results)
    assert reader.bytes_read == reader.total_bytes


def test_an_explicit_format_is_used_as_given() -> None:
    # Read as Claude, a ChatGPT file gives only refusals: the format is not second-guessed.
    results = read_all(FIXTURES / "chatgpt-conversations.json", format="claude")
    assert imported(results) == []
    assert len(results) == 5
