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
``max_bytes`` of topic + payload *of telemetry*. Alerts and metadata (``droppable=False``)
are never dropped nor rejected: when the store is full they are stored beyond the bound
(counted in ``alerts_over_bound``), so only the disk can refuse them. Telemetry makes room
first by conflation (below), then, with policy ``drop-oldest-telemetry``, by dropping the
oldest telemetry rows; with policy ``reject-new`` new telemetry is rejected while full.
Every conflation, drop and rejection is counted; the counters persist in the same
database. The file itself stays within a small multiple of the bound (SQLite reuses freed
pages; the WAL is truncated to ``journal_size_limit`` after checkpoints).

Conflation: when more than ``conflate_above`` messages wait (the broker is not keeping
up), a new telemetry message replaces the waiting, not yet sent telemetry message of the
same topic (latest wins; counted in ``conflated_telemetry``). Rows already handed to the
connection (``seq`` at or below the last :meth:`Outbox.peek`) are never replaced.

Quarantine: a message the broker refuses (malformed topic, too large, not authorised) is
moved by :meth:`Outbox.quarantine` into the ``quarantine`` table with the reason, so it
never blocks the messages behind it. Alerts and metadata stay there for inspection; of
telemetry, the newest ``QUARANTINE_KEEP`` rows stay (older ones counted in
``quarantine_trimmed``).

Every write is one transaction per batch: ``executemany`` inserts, one ``DELETE`` per
chunk of 500 acknowledged rows.

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

__all__ = ["COUNTER_NAMES", "QUARANTINE_KEEP", "OutboundMessage", "Outbox", "StoredMessage"]

#: Persistent counters kept by the outbox.
COUNTER_NAMES = (
    "accepted",
    "acked",
    "dropped_telemetry",
    "conflated_telemetry",
    "rejected_telemetry",
    "alerts_over_bound",
    "quarantined",
    "quarantine_trimmed",
)

#: Quarantined telemetry messages kept (the newest); older ones are deleted. Quarantined
#: alerts and metadata are all kept.
QUARANTINE_KEEP = 1000

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
-- Dropping the oldest telemetry walks the primary key and skips the (few) alerts: an index
-- on (droppable, seq) would cost every insert more than it saves the rare drop.
DROP INDEX IF EXISTS outbox_droppable;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS quarantine (
    seq        INTEGER PRIMARY KEY,                -- its seq in the outbox
    topic      TEXT    NOT NULL,
    payload    BLOB    NOT NULL,
    qos        INTEGER NOT NULL,
    retain     INTEGER NOT NULL,
    droppable  INTEGER NOT NULL,
    message_id TEXT    NOT NULL,
    created    REAL    NOT NULL,
    reason     TEXT    NOT NULL,                   -- why the broker refused it
    quarantined REAL   NOT NULL
);
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

    def __init__(self, settings: OutboxSettings, *, conflate_above: int | None = None) -> None:
        self.settings = settings
        #: Waiting messages above which telemetry conflates per topic (None: never).
        self.conflate_above = conflate_above
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
            rows = self._db.execute(
                "SELECT droppable, COUNT(*), COALESCE(SUM(size), 0) FROM outbox GROUP BY droppable"
            ).fetchall()
            stored = dict(self._db.execute("SELECT name, value FROM counters").fetchall())
            top = self._db.execute(
                "SELECT MAX(m) FROM (SELECT MAX(seq) AS m FROM outbox UNION ALL "
                "SELECT seq FROM sqlite_sequence WHERE name = 'outbox' UNION ALL "
                "SELECT MAX(seq) FROM quarantine)"
            ).fetchone()[0]
            # The newest waiting telemetry row of each topic, for conflation.
            latest = self._db.execute(
                "SELECT topic, MAX(seq), size FROM outbox WHERE droppable = 1 GROUP BY topic"
            ).fetchall()
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                raise SessionError(
                    f"outbox {path} is in use by another process (database is locked)"
                ) from None
            raise SessionError(f"outbox {path}: {exc}") from exc
        self._depth = self._bytes = self._telemetry = self._telemetry_bytes = 0
        for droppable, count, size in rows:
            self._depth += int(count)
            self._bytes += int(size)
            if droppable:
                self._telemetry, self._telemetry_bytes = int(count), int(size)
        self._next_seq = int(top or 0) + 1
        self._sent_upto = 0
        self._latest: dict[str, tuple[int, int]] = {t: (int(q), int(z)) for t, q, z in latest}
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

        Returns each message's ``seq``, or None for telemetry the bound rejected or a
        later message of the same batch conflated. Alerts always get a ``seq``.
        """
        if not messages:
            return []
        now = time.time()
        settings = self.settings
        changed = dict(self.counters)
        depth, nbytes = self._depth, self._bytes
        telemetry, telemetry_bytes = self._telemetry, self._telemetry_bytes
        latest = dict(self._latest)
        conflate = self.conflate_above is not None and depth + len(messages) > self.conflate_above
        # Conflation inside the batch: only the last telemetry message of a topic counts.
        last_of_topic: dict[str, int] = {}
        if conflate:
            for i, msg in enumerate(messages):
                if msg.droppable:
                    last_of_topic[msg.topic] = i
        results: list[int | None] = []
        rows: list[tuple[object, ...]] = []
        replaced: list[int] = []
        cur = self._db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            for i, msg in enumerate(messages):
                size = len(msg.topic.encode("utf-8")) + len(msg.payload)
                if msg.droppable:
                    if conflate and last_of_topic[msg.topic] != i:
                        changed["conflated_telemetry"] += 1
                        results.append(None)
                        continue
                    old = latest.get(msg.topic) if conflate else None
                    if old is not None and old[0] > self._sent_upto:
                        # Replaced by this newer value; the row goes in the same commit.
                        replaced.append(old[0])
                        del latest[msg.topic]
                        changed["conflated_telemetry"] += 1
                        depth, nbytes = depth - 1, nbytes - old[1]
                        telemetry, telemetry_bytes = telemetry - 1, telemetry_bytes - old[1]
                need_rows = depth + 1 - settings.max_messages
                need_bytes = nbytes + size - settings.max_bytes
                if (
                    (need_rows > 0 or need_bytes > 0)
                    and (size <= settings.max_bytes or not msg.droppable)
                    and settings.policy == "drop-oldest-telemetry"
                ):
                    # The oldest may be in this very batch: write it (and delete what was
                    # conflated) first, so the drop sees the table as it stands.
                    if rows:
                        self._insert(cur, rows)
                        rows = []
                    self._delete_seqs(cur, replaced)
                    replaced = []
                    freed_rows, freed_bytes = self._drop_oldest(cur, need_rows, need_bytes, latest)
                    depth, nbytes = depth - freed_rows, nbytes - freed_bytes
                    telemetry -= freed_rows
                    telemetry_bytes -= freed_bytes
                    changed["dropped_telemetry"] += freed_rows
                    need_rows -= freed_rows
                    need_bytes -= freed_bytes
                if need_rows > 0 or need_bytes > 0:
                    if msg.droppable:
                        changed["rejected_telemetry"] += 1
                        results.append(None)
                        continue
                    changed["alerts_over_bound"] += 1  # never dropped: kept beyond the bound
                if msg.droppable:
                    telemetry, telemetry_bytes = telemetry + 1, telemetry_bytes + size
                seq = self._next_seq
                self._next_seq += 1
                rows.append(
                    (
                        seq,
                        msg.topic,
                        msg.payload,
                        msg.qos,
                        int(msg.retain),
                        int(msg.droppable),
                        msg.message_id,
                        size,
                        now,
                    )
                )
                if msg.droppable:
                    latest[msg.topic] = (seq, size)
                results.append(seq)
                depth += 1
                nbytes += size
                changed["accepted"] += 1
            if rows:
                self._insert(cur, rows)
            self._delete_seqs(cur, replaced)
            self._save_counters(cur, changed)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            self._next_seq = self._max_seq() + 1
            raise
        self.counters = changed
        self._depth, self._bytes = depth, nbytes
        self._telemetry, self._telemetry_bytes = telemetry, telemetry_bytes
        self._latest = latest
        return results

    @staticmethod
    def _insert(cur: sqlite3.Cursor, rows: list[tuple[object, ...]]) -> None:
        cur.executemany(
            "INSERT INTO outbox (seq, topic, payload, qos, retain, droppable, message_id,"
            " size, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    @staticmethod
    def _delete_seqs(cur: sqlite3.Cursor, seqs: list[int]) -> None:
        for start in range(0, len(seqs), 500):
            chunk = seqs[start : start + 500]
            cur.execute(f"DELETE FROM outbox WHERE seq IN ({','.join('?' * len(chunk))})", chunk)

    def _max_seq(self) -> int:
        row = self._db.execute(
            "SELECT MAX(m) FROM (SELECT MAX(seq) AS m FROM outbox UNION ALL "
            "SELECT seq FROM sqlite_sequence WHERE name = 'outbox' UNION ALL "
            "SELECT MAX(seq) FROM quarantine)"
        ).fetchone()
        return int(row[0] or 0)

    @staticmethod
    def _drop_oldest(
        cur: sqlite3.Cursor, need_rows: int, need_bytes: int, latest: dict[str, tuple[int, int]]
    ) -> tuple[int, int]:
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
            gone = [t for t, (seq, _) in latest.items() if seq <= last_seq]
            for topic in gone:
                del latest[topic]
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
        """Up to ``limit`` stored messages with ``seq > after_seq``, oldest first.

        The rows returned count as handed to the connection: conflation never replaces
        them (until a later peek starts below them again, as after a reconnect).
        """
        rows = self._db.execute(
            "SELECT seq, topic, payload, qos, retain, droppable, message_id FROM outbox "
            "WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        self._sent_upto = rows[-1][0] if rows else after_seq
        return [
            StoredMessage(seq, topic, payload, qos, bool(retain), bool(drop), mid)
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
            removed, _ = self._delete(cur, keys)
            changed = dict(self.counters)
            changed["acked"] += removed
            self._save_counters(cur, changed)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        self.counters = changed
        return removed

    def _delete(self, cur: sqlite3.Cursor, keys: Sequence[int]) -> tuple[int, int]:
        """Delete rows by seq in chunks; (rows, bytes) removed, depth and sizes updated."""
        removed = freed = 0
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            gone = cur.execute(
                f"DELETE FROM outbox WHERE seq IN ({marks}) RETURNING size, droppable, topic, seq",
                chunk,
            ).fetchall()
            removed += len(gone)
            for size, droppable, topic, seq in gone:
                freed += size
                if droppable:
                    self._telemetry -= 1
                    self._telemetry_bytes -= size
                    if self._latest.get(topic, (0, 0))[0] == seq:
                        del self._latest[topic]
        self._depth -= removed
        self._bytes -= freed
        return removed, freed

    def quarantine(self, refused: Sequence[tuple[int, str]]) -> int:
        """Move refused messages (``(seq, reason)``) out of the queue into ``quarantine``.

        Returns how many were still stored. Of quarantined telemetry only the newest
        :data:`QUARANTINE_KEEP` rows are kept; alerts and metadata are never deleted.
        """
        if not refused:
            return 0
        now = time.time()
        cur = self._db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.executemany(
                "INSERT OR REPLACE INTO quarantine (seq, topic, payload, qos, retain, droppable,"
                " message_id, created, reason, quarantined) SELECT seq, topic, payload, qos,"
                " retain, droppable, message_id, created, ?, ? FROM outbox WHERE seq = ?",
                [(reason, now, seq) for seq, reason in refused],
            )
            removed, _ = self._delete(cur, [seq for seq, _ in refused])
            cur.execute(
                "DELETE FROM quarantine WHERE droppable = 1 AND seq <= (SELECT seq FROM "
                "quarantine WHERE droppable = 1 ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                (QUARANTINE_KEEP,),
            )
            changed = dict(self.counters)
            changed["quarantined"] += removed
            changed["quarantine_trimmed"] += max(0, cur.rowcount)
            self._save_counters(cur, changed)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        self.counters = changed
        return removed

    def quarantined(self, limit: int = 100) -> list[tuple[StoredMessage, str]]:
        """The newest quarantined messages with their reasons, newest first."""
        rows = self._db.execute(
            "SELECT seq, topic, payload, qos, retain, droppable, message_id, reason "
            "FROM quarantine ORDER BY seq DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            (StoredMessage(seq, topic, payload, qos, bool(retain), bool(drop), mid), reason)
            for seq, topic, payload, qos, retain, drop, mid, reason in rows
        ]

    def settle(
        self,
        acked: Sequence[int],
        refused: Sequence[tuple[int, str]],
        after_seq: int,
        limit: int,
    ) -> list[StoredMessage]:
        """:meth:`ack`, :meth:`quarantine` then :meth:`peek`: one thread hop for the drain."""
        self.ack(acked)
        self.quarantine(refused)
        return self.peek(after_seq, limit) if limit > 0 else []

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
