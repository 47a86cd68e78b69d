"""The harness's own subprocesses: started with a READY handshake, stopped by their own pid.

Each child prints one line `READY <detail>` on stdout once it serves; its stderr goes to a log
file that is shown when it fails, so a broken child never leaves the run waiting silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.procstat import cpu_seconds

READY = "READY"


class ChildError(RuntimeError):
    pass


class Child:
    """One `python -m <module>` subprocess of this harness."""

    def __init__(self, name: str, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self.name = name
        self.process = process
        self.log_path = log_path
        self.detail = ""

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def wait_ready(self, seconds: float) -> str:
        stdout = self.process.stdout
        if stdout is None:
            raise ChildError(f"{self.name}: no stdout pipe")
        try:
            async with asyncio.timeout(seconds):
                while True:
                    line = (await stdout.readline()).decode().strip()
                    if not line and stdout.at_eof():
                        raise ChildError(f"{self.name} exited early:\n{self.log_tail()}")
                    if line.startswith(READY):
                        self.detail = line[len(READY) :].strip()
                        return self.detail
        except TimeoutError:
            raise ChildError(f"{self.name} not ready in {seconds}s:\n{self.log_tail()}") from None

    async def finish(self, grace: float = 30.0) -> None:
        """Close its stdin (the child's cue to wrap up) and wait for it, or else stop it."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            async with asyncio.timeout(grace):
                await self.process.wait()
        except TimeoutError:
            await self.stop()

    async def stop(self, grace: float = 5.0) -> None:
        if self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
        try:
            async with asyncio.timeout(grace):
                await self.process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()


async def start_child(
    name: str,
    module: str,
    args: Sequence[str],
    *,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    stdin: bool = False,
    ready_seconds: float = 60.0,
) -> Child:
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            *args,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            env={**os.environ, **(env or {})},
            limit=16 * 1024 * 1024,
        )
    child = Child(name, process, log_path)
    try:
        await child.wait_ready(ready_seconds)
    except BaseException:
        await child.stop()
        raise
    return child


@contextlib.asynccontextmanager
async def running(child: Child) -> AsyncIterator[Child]:
    try:
        yield child
    finally:
        await child.stop()


class JsonLinesChild:
    """A child that answers one JSON line on stdout for each JSON line it reads on stdin."""

    def __init__(self, child: Child) -> None:
        self.child = child
        self._lock = asyncio.Lock()

    async def call(self, request: Mapping[str, Any], seconds: float) -> dict[str, Any]:
        process = self.child.process
        if process.stdin is None or process.stdout is None:
            raise ChildError(f"{self.child.name}: no pipes")
        async with self._lock:
            process.stdin.write(json.dumps(request).encode() + b"\n")
            await process.stdin.drain()
            try:
                async with asyncio.timeout(seconds):
                    line = await process.stdout.readline()
            except TimeoutError:
                raise ChildError(f"{self.child.name}: no answer in {seconds}s") from None
        if not line:
            raise ChildError(f"{self.child.name} exited:\n{self.child.log_tail()}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise ChildError(f"{self.child.name}: {answer['error']}\n{self.child.log_tail(10)}")
        return answer


def loopback_listener() -> socket.socket:
    """A listening TCP socket on 127.0.0.1 and a free port.

    The protocol must be IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted
    connections only when the socket says so, and socket.socket()/create_server() leave it 0.
    Without TCP_NODELAY, a response written in two parts (headers, then body, as uvicorn's h11
    does) waits for the client's delayed ACK: ~40 ms per request on a kept-alive connection.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    return listener
