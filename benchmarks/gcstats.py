"""Garbage-collector pauses of a process, so the report shows what full collections cost.

A full (generation 2) collection walks every tracked object; in a server that leaves reference
cycles behind each request it runs every few hundred requests and stalls whatever is in flight.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

GC_PATH = "/__bench__/gc"


class GcWatch:
    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.longest = [0.0, 0.0, 0.0]
        self._started = 0.0

    def install(self) -> GcWatch:
        gc.callbacks.append(self._callback)
        return self

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = int(info["generation"])
        pause = time.perf_counter() - self._started
        self.collections[generation] += 1
        self.seconds[generation] += pause
        self.longest[generation] = max(self.longest[generation], pause)

    def snapshot(self) -> dict[str, Any]:
        return {
            "collections": list(self.collections),
            "seconds": list(self.seconds),
            "longest": list(self.longest),
        }

    def reset_longest(self) -> None:
        self.longest = [0.0, 0.0, 0.0]


class GcStatsRoute:
    """Answers GET /__bench__/gc with the server's own GcWatch; everything else goes through."""

    def __init__(self, app: ASGIApp, watch: GcWatch) -> None:
        self._app = app
        self._watch = watch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != GC_PATH:
            await self._app(scope, receive, send)
            return
        from starlette.responses import JSONResponse

        response = JSONResponse(self._watch.snapshot())
        if scope["method"] == "POST":
            self._watch.reset_longest()
        await response(scope, receive, send)
