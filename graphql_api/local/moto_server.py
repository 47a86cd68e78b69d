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
from collections.abc import Callable, Iterable, Mapping
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

    And the copy shares `unchanged`, by id: the keys of every item (moto's dicts are keyed
    by them, so nothing may change them) and the items the transaction's actions do not name
    (no action can change them): the restored table holds them as they were either way. A
    deep copy of every item made each write cost time in proportion to the table's size,
    which DynamoDB's writes never do: at a thousand items a transaction took moto three times
    as long, and one user's writes took the one-at-a-time engine from everyone else's
    (docs/soak.md).
    """

    def __init__(self, unchanged: Mapping[int, Any]) -> None:
        self._unchanged = unchanged
        self._backups: dict[int, Any] = {}

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if not isinstance(value, Table):
            return copy.deepcopy(value, memo)
        if id(value) not in self._backups:
            # deepcopy takes what its memo holds for an object as that object's copy.
            self._backups[id(value)] = copy.deepcopy(value, dict(self._unchanged))
        return self._backups[id(value)]


def _unchanged_objects(backend: Any, transact_items: list[dict[str, Any]]) -> dict[int, Any]:
    """The keys and the items not named by any action, of the transaction's tables, by id;
    none when the actions cannot be read (moto then refuses the transaction itself)."""
    named: set[int] = set()
    tables: dict[str, Table] = {}
    try:
        for action in transact_items:
            ((kind, operation),) = action.items()
            table = backend.tables.get(operation.get("TableName"))
            if table is None:
                continue
            tables[table.name] = table
            if kind == "Put":
                attributes = (table.hash_key_attr, table.range_key_attr)
                key = {name: operation["Item"][name] for name in attributes if name is not None}
            else:
                key = operation["Key"]
            item = backend.get_item(table.name, key)
            if item is not None:
                named.add(id(item))
    except Exception:  # moto reports the malformed action itself
        return {}
    unchanged: dict[int, Any] = {}
    for table in tables.values():
        for hash_key, entry in table.items.items():
            unchanged[id(hash_key)] = hash_key
            # A table with a sort key holds a dict of items per partition, else the item.
            for range_key, item in entry.items() if table.has_range_key else [(None, entry)]:
                if range_key is not None:
                    unchanged[id(range_key)] = range_key
                if id(item) not in named:
                    unchanged[id(item)] = item
    return unchanged


# Every moto server in the process shares moto's module, so transactions swap it in turn.
_BACKUP_SWAP = threading.Lock()


def _backing_up_each_table_once(transact: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(transact)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        unchanged = _unchanged_objects(self, transact_items)
        with _BACKUP_SWAP:
            dynamodb_models.copy = _OneBackupPerTable(unchanged)  # type: ignore[attr-defined,assignment]
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
