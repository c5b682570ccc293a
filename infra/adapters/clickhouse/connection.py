"""Clients to one ClickHouse, opened on first use: a server over HTTP, or chdb in-process.

The same clickhouse-connect code serves both (`interface="chdb"` for the embedded engine).
chdb has one data path per process and one process per path, so the path is guarded by an
exclusive lock file holding the owner's pid: a second process gets a clear error instead of
the engine's own. Calls run on threads (the driver is synchronous); a small pool of clients
lets reads proceed side by side (one chdb client runs one query at a time).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import queue
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import clickhouse_connect
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from projections.ports import StoreUnavailableError

T = TypeVar("T")

LOCK_FILE = "strata.lock"
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
DEFAULT_DATABASE = "strata"


class ChdbPathOwnedError(StoreUnavailableError):
    """Another process owns the chdb data path (only one may open it)."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where ClickHouse is: `url` (a server over HTTP) or else the chdb data `path`."""

    url: str | None
    path: str | None
    database: str = DEFAULT_DATABASE

    @classmethod
    def of(cls, url: str | None, path: str) -> Target:
        database = DEFAULT_DATABASE
        if url:
            name = urlsplit(url).path.strip("/")
            database = name or DEFAULT_DATABASE
        if not IDENTIFIER.fullmatch(database):
            raise ValueError(f"invalid ClickHouse database name {database!r}")
        return cls(url=url or None, path=None if url else path, database=database)

    def describe(self) -> str:
        if self.url:
            parts = urlsplit(self.url)
            return f"ClickHouse at {parts.scheme}://{parts.hostname}:{parts.port or 8123}"
        return f"chdb at {self.path}"


def error_code(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    found = re.search(r"\bCode:\s*(\d+)", str(exc))
    return int(found.group(1)) if found else None


class PathLock:
    """An exclusive, advisory lock on a chdb data path; released when the process ends."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ChdbPathOwnedError(
                f"chdb path {self.path} is owned by pid {owner} (strata dev? strata serve "
                "read-api?): only one process may open it; stop that process, or set "
                "STRATA_CLICKHOUSE_URL to use a ClickHouse server"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _client(target: Target) -> Any:
    if target.url is None:
        return clickhouse_connect.get_client(interface="chdb", path=target.path, tz_mode="aware")
    parts = urlsplit(target.url)
    return clickhouse_connect.get_client(
        interface=parts.scheme or "http",
        host=parts.hostname or "127.0.0.1",
        port=parts.port or (8443 if parts.scheme == "https" else 8123),
        username=unquote(parts.username or "default"),
        password=unquote(parts.password or ""),
        tz_mode="aware",
        # No server session: one client then runs concurrent queries from several threads.
        autogenerate_session_id=False,
        connect_timeout=5,
        send_receive_timeout=300,
    )


class Connection:
    """A pool of clients to one ClickHouse. `on_open` runs once, with a client, when the
    first call opens the pool (the store applies its migrations there)."""

    def __init__(
        self, target: Target, *, pool_size: int = 4, on_open: Callable[[Any], None] | None = None
    ) -> None:
        self.target = target
        self.pool_size = max(1, pool_size)
        self.on_open = on_open
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._clients: list[Any] = []
        self._lock: PathLock | None = None
        self._opening = threading.Lock()
        self._open = False
        self._closed = False

    def _ensure_open(self) -> None:
        if self._open:
            return
        with self._opening:
            if self._open:
                return
            if self._closed:
                raise StoreUnavailableError("the ClickHouse connection is closed")
            lock = PathLock(self.target.path) if self.target.path else None
            if lock is not None:
                lock.acquire()
            try:
                self._clients = [_client(self.target) for _ in range(self.pool_size)]
                if self.on_open is not None:
                    self.on_open(self._clients[0])
            except BaseException:
                self._close_clients()
                if lock is not None:
                    lock.release()
                raise
            for client in self._clients:
                self._idle.put(client)
            self._lock = lock
            self._open = True

    @contextlib.contextmanager
    def _borrow(self) -> Iterator[Any]:
        self._ensure_open()
        client = self._idle.get()
        try:
            yield client
        finally:
            self._idle.put(client)

    def call(self, fn: Callable[[Any], T]) -> T:
        """Run `fn(client)` here (on this thread); connectivity problems become
        StoreUnavailableError, errors the server reports stay DatabaseError."""
        try:
            with self._borrow() as client:
                return fn(client)
        except StoreUnavailableError:
            raise
        except OperationalError as exc:
            raise StoreUnavailableError(f"{self.target.describe()}: {exc}") from exc
        except DatabaseError as exc:
            if "Unable to open the chdb engine" in str(exc):
                raise StoreUnavailableError(f"{self.target.describe()}: {exc}") from exc
            raise

    async def run(self, fn: Callable[[Any], T]) -> T:
        return await asyncio.to_thread(self.call, fn)

    async def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> None:
        await self.run(lambda c: c.command(sql, parameters=dict(parameters or {})))

    async def rows(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> list[tuple[Any, ...]]:
        def query(client: Any) -> list[tuple[Any, ...]]:
            result = client.query(
                sql, parameters=dict(parameters or {}), settings=dict(settings or {})
            )
            return [tuple(row) for row in result.result_rows]

        return await self.run(query)

    async def insert(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        if rows:
            await self.run(lambda c: c.insert(table, rows, column_names=list(columns)))

    def _close_clients(self) -> None:
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.close()
        self._clients = []

    def close(self) -> None:
        """Close every client (a chdb engine is released only when all are closed)."""
        with self._opening:
            self._closed = True
            if not self._open:
                return
            for _ in self._clients:
                self._idle.get()  # wait for borrowed clients to come back
            self._close_clients()
            if self._lock is not None:
                self._lock.release()
            self._open = False
