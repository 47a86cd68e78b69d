"""`--format auto`: which reader a file needs, from the first keys of its first conversation."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import ijson

from . import jsonstream, native
from .errors import UnknownFormatError
from .model import SourceFormat
from .sources import Source, expand

# Keys that only one of the two list formats has; the first one met decides.
_KEYS: Final[dict[str, SourceFormat]] = {
    "mapping": "chatgpt",
    "current_node": "chatgpt",
    "create_time": "chatgpt",
    "default_model_slug": "chatgpt",
    "chat_messages": "claude",
    "uuid": "claude",
    "created_at": "claude",
    "account": "claude",
}


def detect_format(paths: Sequence[str | Path]) -> SourceFormat:
    """The format of every file under `paths`; they must agree."""
    return detect_sources(expand([Path(path) for path in paths]))


def detect_sources(sources: Sequence[Source]) -> SourceFormat:
    found: dict[SourceFormat, list[str]] = {}
    for source in sources:
        found.setdefault(_detect(source), []).append(source.name)
    if len(found) > 1:
        listed = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in found.items())
        raise UnknownFormatError(f"the files are of different formats ({listed}); import apart")
    if not found:
        raise UnknownFormatError("no files to read")
    return next(iter(found))


def _detect(source: Source) -> SourceFormat:
    with source.open() as stream:
        first = jsonstream.first_char(stream)
        if first == "{" and native.layout_of(stream) is not None:
            return "json"
        if first == "[":
            found = _list_format(stream)
            if found is not None:
                return found
    raise UnknownFormatError(
        f"{source.name}: not a ChatGPT, Claude or chat-history-api export that this program "
        "recognises (or it holds no conversations); name it with --format"
    )


def _list_format(stream: io.BufferedReader) -> SourceFormat | None:
    try:
        for prefix, event, value in ijson.parse(stream):
            if prefix == "item" and event == "map_key" and value in _KEYS:
                return _KEYS[value]
            if prefix == "item" and event == "end_map":
                return None
    except ijson.JSONError:
        return None
    return None
