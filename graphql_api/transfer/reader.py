"""Reading an import: the files, their format, and the conversations one at a time."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Final, Literal

from . import chatgpt, claude, native
from .detect import detect_sources
from .model import SOURCE_FORMATS, ReadResult, SourceFormat
from .sources import ByteCounter, expand

_READERS: Final[dict[SourceFormat, Callable[[io.BufferedReader, str], Iterator[ReadResult]]]] = {
    "chatgpt": chatgpt.read,
    "claude": claude.read,
    "json": native.read,
}


class ExportReader:
    """The conversations under `paths`, as a stream, with what is needed to show progress.

    Raises TransferError subclasses (one line each) for a missing file, an unknown format or
    a stream that breaks off; a conversation that cannot be imported is yielded as refused.
    """

    def __init__(
        self, paths: Sequence[str | Path], *, format: SourceFormat | Literal["auto"] = "auto"
    ) -> None:
        if format != "auto" and format not in SOURCE_FORMATS:
            raise ValueError(f"unknown format {format!r}")
        self.sources = expand([Path(path) for path in paths])
        self.format: SourceFormat = detect_sources(self.sources) if format == "auto" else format
        # Uncompressed bytes, so progress and time left are the same for a zip and its files.
        self.total_bytes = sum(source.size for source in self.sources)
        self._counter = ByteCounter()

    @property
    def bytes_read(self) -> int:
        """Read ahead of what was yielded by at most one buffer (64 KB)."""
        return self._counter.done

    def __iter__(self) -> Iterator[ReadResult]:
        read = _READERS[self.format]
        self._counter.done = 0
        for source in self.sources:
            with source.open(counter=self._counter) as stream:
                yield from read(stream, source.name)


def read_conversations(
    paths: Sequence[str | Path], format: SourceFormat | Literal["auto"] = "auto"
) -> Iterator[ReadResult]:
    return iter(ExportReader(paths, format=format))
