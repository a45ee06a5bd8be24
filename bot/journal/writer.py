"""The journal's writer: one thread commits queued statements in batches, so that writes never
block the event loop; reads run at once on their own connection.

`JournalBase` owns the two SQLite connections (WAL), the queue and the writer thread; the record and
query methods are bot.journal.store.Journal's.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import structlog

from bot.journal.schema import JournalError, migrate

BATCH_ROWS = 500

log = structlog.get_logger("copybot.journal")


class JournalClosed(JournalError):
    pass


class _Barrier:
    def __init__(self, done: Callable[[], None]) -> None:
        self.done = done


_STOP = object()


class JournalBase:
    def __init__(self, path: Path, writer: sqlite3.Connection, reader: sqlite3.Connection) -> None:
        self.path = path
        self._writer = writer
        self._reader = reader
        self._read_lock = threading.Lock()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending_fills: set[tuple[str, str]] = set()
        self._pending_lock = threading.Lock()
        self._closed = False
        self.write_errors = 0
        self._thread = threading.Thread(target=self._run, name=f"journal-writer:{path.name}", daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, path: str | Path) -> Self:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # The writer connection is created here but used only by the writer thread.
            writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            writer.execute("PRAGMA journal_mode=WAL")
            writer.execute("PRAGMA synchronous=NORMAL")
            writer.execute("PRAGMA busy_timeout=5000")
            migrate(writer, str(path))
            reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            reader.execute("PRAGMA busy_timeout=5000")
        except sqlite3.Error as exc:
            raise JournalError(f"{path}: cannot open journal: {exc}") from exc
        return cls(path, writer, reader)

    # ------------------------------------------------------------ writer thread

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            batch: list[tuple[str, tuple[Any, ...], tuple[str, str] | None]] = []
            barriers: list[_Barrier] = []
            stop = False
            while True:
                if item is _STOP:
                    stop = True
                    break
                if isinstance(item, _Barrier):
                    barriers.append(item)
                else:
                    batch.append(item)
                if len(batch) >= BATCH_ROWS:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._commit(batch)
            for barrier in barriers:
                barrier.done()
            if stop:
                return

    def _commit(self, batch: list[tuple[str, tuple[Any, ...], tuple[str, str] | None]]) -> None:
        conn = self._writer
        try:
            conn.execute("BEGIN")
            for sql, params, _ in batch:
                conn.execute(sql, params)
            conn.execute("COMMIT")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            # Isolate the bad statement so one bug does not lose a whole batch.
            for sql, params, _ in batch:
                try:
                    conn.execute(sql, params)
                except sqlite3.Error as exc:
                    self.write_errors += 1
                    log.error("journal write failed", error=str(exc), sql=sql.split("(")[0])
        with self._pending_lock:
            for *_, key in batch:
                if key is not None:
                    self._pending_fills.discard(key)

    def _put(self, sql: str, params: tuple[Any, ...], fill_key: tuple[str, str] | None = None) -> None:
        if self._closed:
            raise JournalClosed(f"{self.path}: journal is closed; write refused: {sql.split('(')[0].strip()}")
        if fill_key is not None:
            with self._pending_lock:
                self._pending_fills.add(fill_key)
        self._queue.put((sql, params, fill_key))

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything queued before this call is committed."""
        if self._closed:
            raise JournalClosed(f"{self.path}: journal is closed")
        done = threading.Event()
        self._queue.put(_Barrier(done.set))
        if not done.wait(timeout):
            raise JournalError(f"{self.path}: flush did not complete within {timeout}s")

    async def aflush(self) -> None:
        """flush() for the event loop: waits without blocking it."""
        if self._closed:
            raise JournalClosed(f"{self.path}: journal is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def resolve() -> None:
            if not future.done():
                future.set_result(None)

        def done() -> None:
            loop.call_soon_threadsafe(resolve)

        self._queue.put(_Barrier(done))
        await future

    def close(self) -> None:
        """Commit what is queued, stop the writer and close both connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()
        self._writer.close()
        with self._read_lock:
            self._reader.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._read_lock:
            if self._closed:
                raise JournalClosed(f"{self.path}: journal is closed")
            return self._reader.execute(sql, params).fetchall()
