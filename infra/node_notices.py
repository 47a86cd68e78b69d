"""Node's own notices, printed as text.

jsii (the bridge aws_cdk runs on) reads its node process's stderr in a thread: lines of its
protocol are decoded, and any other line, such as node's or jsii's runtime notices ("Node 20
is end-of-life ..."), is printed as a Python bytes literal, `b'!!  ...  !!\\n'`
(aws/jsii#4065, open). That thread's target is `stderr_sink` of jsii's process module, looked
up when the node process starts; `print_as_text` makes it jsii's own sink reading through a
filter that writes the other lines as text, so the protocol stays jsii's to read.

This leans on jsii's internals: jsii is pinned exactly in pyproject.toml, and
tests/infra/test_node_notices.py runs a real node process through it and compares the filter
with jsii's own sink, so a jsii that changes either fails there, not in `make synth`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import IO, Any

from jsii._kernel.providers import process


class Notices:
    """A node process's stderr as jsii's sink reads it, without the lines that are not jsii's
    protocol: those are written to sys.stderr as text."""

    def __init__(self, reader: IO[bytes]) -> None:
        self._reader = reader

    def readline(self) -> bytes:
        while line := self._reader.readline():
            if is_protocol(line):
                return line
            sys.stderr.write(line.decode("utf-8", errors="replace"))
            sys.stderr.flush()
        return b""


def is_protocol(line: bytes) -> bool:
    """Whether jsii's sink reads `line` as one of its messages (a JSON object), as it tells."""
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def print_as_text() -> None:
    """From now on, node processes jsii starts have their notices printed as text; call it
    before importing aws_cdk, which starts one."""
    jsii_sink: Callable[[Any], None] = process.stderr_sink
    if getattr(jsii_sink, "prints_text", False):
        return

    def sink(reader: IO[Any]) -> None:
        jsii_sink(Notices(reader))

    sink.prints_text = True  # type: ignore[attr-defined]
    process.stderr_sink = sink
