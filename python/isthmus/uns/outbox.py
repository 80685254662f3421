"""Durable store-and-forward outbox in SQLite (WAL).

Every data and alert message is committed here before it is published, and deleted only
after the broker acknowledged it (PUBACK for QoS 1). After a reconnect or a restart the
remaining rows are published again in ``seq`` order, so delivery is at-least-once and
consumers drop duplicates by the envelope's ``message_id``.

Durability: WAL journal, ``synchronous=NORMAL`` by default. In WAL mode a committed
transaction is in the WAL file (OS page cache) when COMMIT returns, so it survives the
gateway being killed (SIGKILL, OOM killer, crash); only an OS crash or power cut can lose
the last commits. ``synchronous=FULL`` adds an fsync per commit for that case. Writes are
batched (one transaction per batch) so either mode costs one commit per batch, not per
message.

Bound (see :class:`isthmus.uns.settings.OutboxSettings`): at most ``max_messages`` rows and
``max_bytes`` of topic + payload. Policy ``drop-oldest-telemetry`` drops the oldest
droppable (telemetry) rows to make room; alerts are kept and, once only alerts fill the
store, the *new* message is rejected. Policy ``reject-new`` never drops. Every drop and
rejection is counted; the counters persist in the same database. The file itself stays
within a small multiple of ``max_bytes`` (SQLite reuses freed pages; the WAL is truncated
to ``journal_size_limit`` after checkpoints).

``locking_mode=EXCLUSIVE`` keeps a second gateway from sharing the file; the OS releases
the lock when a killed process dies, so a restart reopens it at once.

An :class:`Outbox` is synchronous and not thread-safe: the publisher runs all its calls on
one dedicated thread.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from isthmus.errors import SessionError
from isthmus.uns.settings import OutboxSettings

__all__ = ["COUNTER_NAMES", "OutboundMessage", "Outbox", "StoredMessage"]

#: Persistent counters kept by the outbox.
COUNTER_NAMES = (
    "accepted",
    "acked",
    "dropped_telemetry",
    "rejected_telemetry",
    "rejected_alerts",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: replay order is seq order
    topic      TEXT    NOT NULL,
    payload    BLOB    NOT NULL,
    qos        INTEGER NOT NULL,
    retain     INTEGER NOT NULL,
    droppable  INTEGER NOT NULL,                   -- 1 telemetry, 0 alert / metadata
    message_id TEXT    NOT NULL,
    size       INTEGER NOT NULL,                   -- topic + payload bytes, for the bound
    created    REAL    NOT NULL                    -- Unix seconds when accepted
);
CREATE INDEX IF NOT EXISTS outbox_droppable ON outbox (droppable, seq);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class OutboundMessage(NamedTuple):
    """A message to put into the outbox."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    #: True for telemetry the bound may drop; False for alerts and metadata.
    droppable: bool
    message_id: str


class StoredMessage(NamedTuple):
    """A message read back from the outbox, with its sequence number."""

    seq: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    droppable: bool
    message_id: str


class Outbox:
    """SQLite-backed FIFO of messages awaiting broker acknowledgement."""

    def __init__(self, settings: OutboxSettings) -> None:
        self.settings = settings
        path = Path(settings.path)
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
            self._db = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=2.0
            )
            self._db.execute("PRAGMA locking_mode=EXCLUSIVE")
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise SessionError(f"outbox {path}: cannot enable WAL (journal_mode={mode})")
            self._db.execute(f"PRAGMA synchronous={settings.synchronous.upper()}")
            self._db.execute("PRAGMA journal_size_limit=4194304")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox").fetchone()
            stored = dict(self._db.execute("SELECT name, value FROM counters").fetchall())
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                raise SessionError(
                    f"outbox {path} is in use by another process (database is locked)"
                ) from None
            raise SessionError(f"outbox {path}: {exc}") from exc
        self._depth = int(row[0])
        self._bytes = int(row[1])
        self.counters: dict[str, int] = {name: int(stored.get(name, 0)) for name in COUNTER_NAMES}

    # -- state ---------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Messages stored (not yet acknowledged)."""
        return self._depth

    @property
    def size_bytes(self) -> int:
        """Topic + payload bytes stored."""
        return self._bytes

    def snapshot(self) -> dict[str, int]:
        """Counters plus current depth and bytes, for the gateway status."""
        out = dict(self.counters)
        out["depth"] = self._depth
        out["bytes"] = self._bytes
        return out

    # -- writing -------------------------------------------------------------------------

    def put(self, message: OutboundMessage) -> int | None:
        """Store one message; its ``seq``, or None if the bound rejected it."""
        return self.put_many([message])[0]

    def put_many(self, messages: Sequence[OutboundMessage]) -> list[int | None]:
        """Store messages in order in one transaction (durable when this returns).

        Returns each message's ``seq``, or None for a message the bound rejected.
        """
        if not messages:
            return []
        now = time.time()
        results: list[int | None] = []
        changed = dict(self.counters)
        depth, nbytes = self._depth, self._bytes
        cur = self._db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            for msg in messages:
                size = len(msg.topic.encode("utf-8")) + len(msg.payload)
                need_rows = depth + 1 - self.settings.max_messages
                need_bytes = nbytes + size - self.settings.max_bytes
                if (
                    (need_rows > 0 or need_bytes > 0)
                    and size <= self.settings.max_bytes
                    and self.settings.policy == "drop-oldest-telemetry"
                ):
                    freed_rows, freed_bytes = self._drop_oldest(cur, need_rows, need_bytes)
                    depth -= freed_rows
                    nbytes -= freed_bytes
                    changed["dropped_telemetry"] += freed_rows
                    need_rows -= freed_rows
                    need_bytes -= freed_bytes
                if need_rows > 0 or need_bytes > 0:
                    changed["rejected_telemetry" if msg.droppable else "rejected_alerts"] += 1
                    results.append(None)
                    continue
                cur.execute(
                    "INSERT INTO outbox (topic, payload, qos, retain, droppable, message_id,"
                    " size, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        msg.topic,
                        msg.payload,
                        msg.qos,
                        int(msg.retain),
                        int(msg.droppable),
                        msg.message_id,
                        size,
                        now,
                    ),
                )
                results.append(cur.lastrowid)
                depth += 1
                nbytes += size
                changed["accepted"] += 1
            self._save_counters(cur, changed)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        self.counters = changed
        self._depth, self._bytes = depth, nbytes
        return results

    def _drop_oldest(self, cur: sqlite3.Cursor, need_rows: int, need_bytes: int) -> tuple[int, int]:
        """Delete the oldest droppable rows until both needs are met (or none are left)."""
        freed_rows = freed_bytes = 0
        last_seq: int | None = None
        after = 0
        while freed_rows < need_rows or freed_bytes < need_bytes:
            chunk = cur.execute(
                "SELECT seq, size FROM outbox WHERE droppable = 1 AND seq > ? "
                "ORDER BY seq LIMIT 256",
                (after,),
            ).fetchall()
            if not chunk:
                break
            for seq, size in chunk:
                last_seq, after = seq, seq
                freed_rows += 1
                freed_bytes += size
                if freed_rows >= need_rows and freed_bytes >= need_bytes:
                    break
        if last_seq is not None:
            cur.execute("DELETE FROM outbox WHERE droppable = 1 AND seq <= ?", (last_seq,))
        return freed_rows, freed_bytes

    def _save_counters(self, cur: sqlite3.Cursor, values: dict[str, int]) -> None:
        updates = [(k, v) for k, v in values.items() if v != self.counters.get(k)]
        if updates:
            cur.executemany(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                updates,
            )

    # -- reading and acknowledging ----------------------------------------------------------

    def peek(self, after_seq: int = 0, limit: int = 64) -> list[StoredMessage]:
        """Up to ``limit`` stored messages with ``seq > after_seq``, oldest first."""
        rows = self._db.execute(
            "SELECT seq, topic, payload, qos, retain, droppable, message_id FROM outbox "
            "WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [
            StoredMessage(seq, topic, bytes(payload), qos, bool(retain), bool(drop), mid)
            for seq, topic, payload, qos, retain, drop, mid in rows
        ]

    def ack(self, seqs: Iterable[int]) -> int:
        """Delete acknowledged messages; returns how many were still stored."""
        keys = list(seqs)
        if not keys:
            return 0
        cur = self._db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            removed = freed = 0
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                sizes = cur.execute(
                    f"DELETE FROM outbox WHERE seq IN ({marks}) RETURNING size", chunk
                ).fetchall()
                removed += len(sizes)
                freed += sum(size for (size,) in sizes)
            changed = dict(self.counters)
            changed["acked"] += removed
            self._save_counters(cur, changed)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        self.counters = changed
        self._depth -= removed
        self._bytes -= freed
        return removed

    def ack_and_peek(self, seqs: Sequence[int], after_seq: int, limit: int) -> list[StoredMessage]:
        """:meth:`ack` then :meth:`peek` in one call (one thread hop for the publisher)."""
        self.ack(seqs)
        return self.peek(after_seq, limit)

    def close(self) -> None:
        """Checkpoint the WAL and close the database."""
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
