"""A throwaway redis-server (Debian's package) on 127.0.0.1 with no persistence, for the tests
of what the service keeps in Redis: the broadcast between instances and the shared rate limits.

Stopped and started again, it keeps its port, so the clients of the app under test find it
again, empty, as after a real restart.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

REDIS_SERVER = "redis-server"


def require_redis() -> str:
    """Skip where redis-server is missing, but never in CI: .ci/run installs it."""
    found = shutil.which(REDIS_SERVER)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("redis-server is missing; .ci/run installs it")
    pytest.skip("redis-server is not installed (apt-get install redis-server)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """A throwaway redis-server on 127.0.0.1, with no persistence; with a `password`, it
    refuses every command until a client authenticates with it (as ElastiCache's AUTH)."""

    def __init__(self, *, password: str | None = None) -> None:
        self.binary = require_redis()
        self.port = free_port()
        self.password = password
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own binary and arguments
            [
                *(self.binary, "--bind", "127.0.0.1", "--port", str(self.port)),
                *("--save", "", "--appendonly", "no", "--dir", tempfile.gettempdir()),
                *(("--requirepass", self.password) if self.password else ()),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@contextlib.contextmanager
def redis_server(*, password: str | None = None) -> Iterator[RedisServer]:
    server = RedisServer(password=password)
    server.start()
    try:
        yield server
    finally:
        server.stop()
