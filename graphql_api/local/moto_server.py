"""moto in server mode on loopback, serving one request at a time.

moto keeps no locks, and a failed TransactWriteItems restores a snapshot of the whole table,
wiping writes that concurrent requests made meanwhile. DynamoDB is atomic per request, so a
lock around the WSGI app makes moto honour the same contract; werkzeug still accepts
connections on many threads, so slow clients do not block each other's connects.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server


class _OneBackupPerTable:
    """Stands in for the `copy` module inside moto's TransactWriteItems.

    moto backs up the whole table before a transaction, to restore it if the transaction is
    cancelled, but it makes that same backup once per action: a transaction of 100 actions
    deep-copies the table 100 times and keeps the last copy. One copy per table is the same
    backup; this makes a large transaction cost one copy, not a hundred.
    """

    def __init__(self) -> None:
        self._backups: dict[int, Any] = {}

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if not isinstance(value, Table):
            return copy.deepcopy(value, memo)
        if id(value) not in self._backups:
            self._backups[id(value)] = copy.deepcopy(value)
        return self._backups[id(value)]


# Every moto server in the process shares moto's module, so transactions swap it in turn.
_BACKUP_SWAP = threading.Lock()


def _backing_up_each_table_once(transact: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(transact)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        with _BACKUP_SWAP:
            dynamodb_models.copy = _OneBackupPerTable()  # type: ignore[attr-defined,assignment]
            try:
                return transact(self, transact_items)
            finally:
                dynamodb_models.copy = copy  # type: ignore[attr-defined]

    transact_write_items.backs_up_once = True  # type: ignore[attr-defined]
    return transact_write_items


def _install_one_backup_per_table() -> None:
    backend = dynamodb_models.DynamoDBBackend
    if not getattr(backend.transact_write_items, "backs_up_once", False):
        backend.transact_write_items = _backing_up_each_table_once(  # type: ignore[method-assign]
            backend.transact_write_items
        )


class _QuietRequestHandler(MotoRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """Per-request access lines would drown the test and dev output."""


class _TicketLock:
    """A first-come, first-served lock. threading.Lock wakes waiters in no particular order,
    so under load moto would apply requests far out of arrival order, which DynamoDB does not.
    """

    def __init__(self) -> None:
        self._turn = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    def __enter__(self) -> None:
        with self._turn:
            ticket = self._next_ticket
            self._next_ticket += 1
            self._turn.wait_for(lambda: self._serving == ticket)

    def __exit__(self, *_: object) -> None:
        with self._turn:
            self._serving += 1
            self._turn.notify_all()


class _SerializedApp:
    def __init__(self, app: Any) -> None:
        self._app = app
        self._lock = _TicketLock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with self._lock:
            # Drain the body inside the lock: moto may build it lazily.
            return list(self._app(environ, start_response))


class LockedMotoServer:
    """A moto server on 127.0.0.1; port 0 picks a free port. Use as a context manager."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the moto server is not running")
        return f"http://{self._host}:{self._server.server_port}"

    def start(self) -> str:
        _install_one_backup_per_table()
        app = _SerializedApp(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._host, self._port, app, threaded=True, request_handler=_QuietRequestHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="moto-server", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> LockedMotoServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
