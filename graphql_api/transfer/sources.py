"""The files an import names, opened as byte streams: plain files, folders and zips.

A ChatGPT export is a zip holding `conversations.json`, or in recent exports the split
`conversations-000.json`, `conversations-001.json`...; people also pass the extracted folder
or the JSON files themselves. Everything is read as a stream; nothing is extracted to disk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Final

from .errors import TransferError, UnknownFormatError

_CONVERSATIONS_FILE: Final = re.compile(r"conversations(?:-(\d+))?\.json", re.IGNORECASE)
_BOM: Final = b"\xef\xbb\xbf"
BUFFER_BYTES: Final = 1 << 16


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """One JSON (or NDJSON) stream: a file on disk, or a member of a zip."""

    path: Path
    member: str | None
    size: int

    @property
    def name(self) -> str:
        return str(self.path) if self.member is None else f"{self.path}:{self.member}"

    @contextlib.contextmanager
    def open(self, *, counter: ByteCounter | None = None) -> Iterator[io.BufferedReader]:
        try:
            with contextlib.ExitStack() as stack:
                if self.member is None:
                    raw: IO[bytes] = stack.enter_context(self.path.open("rb"))
                else:
                    archive = stack.enter_context(zipfile.ZipFile(self.path))
                    raw = stack.enter_context(archive.open(self.member))
                yield io.BufferedReader(_Stream(raw, counter or ByteCounter()), BUFFER_BYTES)
        except (OSError, zipfile.BadZipFile) as exc:
            raise TransferError(f"{self.name}: cannot read: {exc}") from exc


@dataclasses.dataclass(slots=True)
class ByteCounter:
    """Bytes read so far across a reader's sources (uncompressed, for zip members)."""

    done: int = 0


class _Stream(io.RawIOBase):
    """A binary stream that counts what it gives and drops a leading UTF-8 byte order mark.

    Windows editors add the mark, and JSON parsers refuse it.
    """

    def __init__(self, raw: IO[bytes], counter: ByteCounter) -> None:
        self._raw = raw
        self._counter = counter
        self._started = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        if not self._started:
            self._started = True
            if data.startswith(_BOM):
                self._counter.done += len(_BOM)
                data = data[len(_BOM) :]
                if not data:
                    data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        self._counter.done += len(data)
        return len(data)


def expand(paths: Sequence[Path]) -> list[Source]:
    """The streams to read for `paths`, in reading order; refuses names that hold none."""
    sources: list[Source] = []
    for path in paths:
        if path.is_dir():
            sources.extend(_folder(path))
        elif path.is_file() and zipfile.is_zipfile(path):
            sources.extend(_zip(path))
        elif path.is_file():
            sources.append(Source(path=path, member=None, size=path.stat().st_size))
        else:
            raise TransferError(f"{path}: no such file or folder")
    return sources


def _folder(path: Path) -> list[Source]:
    found = _conversation_files([child.name for child in path.iterdir() if child.is_file()])
    if not found:
        raise UnknownFormatError(
            f"{path}: holds no conversations.json nor conversations-000.json; name the file"
        )
    return [
        Source(path=path / name, member=None, size=(path / name).stat().st_size) for name in found
    ]


def _zip(path: Path) -> list[Source]:
    try:
        with zipfile.ZipFile(path) as archive:
            sizes = {info.filename: info.file_size for info in archive.infolist()}
    except (OSError, zipfile.BadZipFile) as exc:
        raise TransferError(f"{path}: cannot read the zip: {exc}") from exc
    # Exports put the file at the top; some zip tools add a folder around everything.
    by_depth = sorted(sizes, key=lambda name: name.count("/"))
    for depth in sorted({name.count("/") for name in by_depth}):
        at_depth = [name for name in by_depth if name.count("/") == depth]
        found = _conversation_files(at_depth)
        if found:
            return [Source(path=path, member=name, size=sizes[name]) for name in found]
    raise UnknownFormatError(
        f"{path}: the zip holds no conversations.json nor conversations-000.json"
    )


def _conversation_files(names: list[str]) -> list[str]:
    """conversations.json when present, else the numbered parts in number order."""
    matched = [(name, _CONVERSATIONS_FILE.fullmatch(name.rsplit("/", 1)[-1])) for name in names]
    whole = [name for name, match in matched if match and match.group(1) is None]
    if whole:
        return whole[:1]
    parts = [(int(match.group(1)), name) for name, match in matched if match]
    return [name for _, name in sorted(parts)]
