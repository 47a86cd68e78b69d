"""Log lines as the real logging config writes them, and the shipped client operations."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import logging.config
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from graphql_api.observability import logs
from graphql_api.settings import ObservabilitySettings

OPERATIONS_DIR = Path(__file__).resolve().parents[1] / "schema" / "operations"

# Every logger the logging config sets, so a test can put them back as it found them.
_CONFIGURED = (*logs._NOISY, logs.ACCESS_LOGGER, "uvicorn", "uvicorn.error", "uvicorn.access")


class CapturedLogs:
    def __init__(self, stream: io.StringIO) -> None:
        self._stream = stream

    @property
    def text(self) -> str:
        return self._stream.getvalue()

    def lines(self) -> list[str]:
        return [line for line in self.text.splitlines() if line.strip()]

    def json_lines(self) -> list[dict[str, Any]]:
        """Every line, parsed; fails the test on a line that is not a JSON object."""
        parsed = []
        for line in self.lines():
            value = json.loads(line)
            assert isinstance(value, dict), line
            parsed.append(value)
        return parsed

    def access_lines(self) -> list[dict[str, Any]]:
        return [line for line in self.json_lines() if line["logger"] == logs.ACCESS_LOGGER]


@contextlib.contextmanager
def captured_logs(settings: ObservabilitySettings) -> Iterator[CapturedLogs]:
    """The logging config `serve` hands uvicorn, writing to a buffer; restored afterwards."""
    stream = io.StringIO()
    root = logging.getLogger()
    saved_root = (root.level, root.handlers[:])
    saved = [
        (logger, logger.level, logger.handlers[:], logger.propagate)
        for logger in map(logging.getLogger, _CONFIGURED)
    ]
    logging.config.dictConfig(logs.logging_config(settings, stream=stream))
    try:
        yield CapturedLogs(stream)
    finally:
        root.setLevel(saved_root[0])
        root.handlers[:] = saved_root[1]
        for logger, level, handlers, propagate in saved:
            logger.setLevel(level)
            logger.handlers[:] = handlers
            logger.propagate = propagate


def operation_document(name: str) -> str:
    return (OPERATIONS_DIR / f"{name}.graphql").read_text()
