"""The SQLite outbox: order, acknowledgement, bound and drop policy, durability."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isthmus.errors import SessionError
from isthmus.uns.outbox import QUARANTINE_KEEP, OutboundMessage, Outbox, StoredMessage
from isthmus.uns.settings import OutboxSettings


def msg(i: int, *, alert: bool = False, size: int = 10) -> OutboundMessage:
    return OutboundMessage(
        topic="t",
        payload=bytes([i % 256]) * (size - 1),  # topic (1 byte) + payload = size
        qos=1,
        retain=False,
        droppable=not alert,
        message_id=f"{'A' if alert else 'T'}{i}",
    )


def ids(box: Outbox) -> list[str]:
    return [m.message_id for m in box.peek(0, 10_000)]


def test_fifo_peek_and_ack(tmp_path: Path) -> None:
    with Outbox(OutboxSettings(path=str(tmp_path / "o.db"))) as box:
        seqs = box.put_many([msg(i) for i in range(5)])
        assert seqs == sorted(seqs) and None not in seqs
        first = box.peek(0, 2)
        assert [m.message_id for m in first] == ["T0", "T1"]
        assert [m.message_id for m in box.peek(first[-1].seq, 10)] == ["T2", "T3", "T4"]
        assert box.ack([first[0].seq, first[0].seq]) == 1  # a repeated ack is harmless
        assert ids(box) == ["T1", "T2", "T3", "T4"]
        assert box.depth == 4 and box.size_bytes == 40
        assert box.counters["accepted"] == 5 and box.counters["acked"] == 1


def test_seq_never_reused_after_emptying(tmp_path: Path) -> None:
    # A drain cursor "seq > last" must never skip a new message: seqs only grow.
    with Outbox(OutboxSettings(path=str(tmp_path / "o.db"))) as box:
        (a,) = box.put_many([msg(0)])
        assert a is not None
        box.ack([a])
        (b,) = box.put_many([msg(1)])
        assert b is not None and b > a


def test_survives_reopen_with_counters(tmp_path: Path) -> None:
    cfg = OutboxSettings(path=str(tmp_path / "o.db"), max_messages=3)
    with Outbox(cfg) as box:
        box.put_many([msg(i) for i in range(5)])
        box.ack([box.peek(0, 1)[0].seq])
    with Outbox(cfg) as box:
        assert ids(box) == ["T3", "T4"]
        assert box.counters == {
            "accepted": 5,
            "acked": 1,
            "dropped_telemetry": 2,
            "conflated_telemetry": 0,
            "rejected_telemetry": 0,
            "alerts_over_bound": 0,
            "quarantined": 0,
            "quarantine_trimmed": 0,
        }
        assert box.snapshot()["depth"] == 2 and box.snapshot()["bytes"] == 20


def test_full_store_drops_oldest_telemetry_never_an_alert(tmp_path: Path) -> None:
    cfg = OutboxSettings(path=str(tmp_path / "o.db"), max_messages=6)
    with Outbox(cfg) as box:
        box.put_many([msg(0), msg(1, alert=True), msg(2), msg(3), msg(4, alert=True), msg(5)])
        box.put_many([msg(6), msg(7, alert=True)])
        assert ids(box) == ["A1", "T3", "A4", "T5", "T6", "A7"]
        assert box.counters["dropped_telemetry"] == 2
        # Alerts push out all telemetry, then go beyond the bound: never dropped.
        results = box.put_many([msg(i, alert=True) for i in range(8, 13)])
        assert None not in results
        assert ids(box) == ["A1", "A4", "A7", "A8", "A9", "A10", "A11", "A12"]
        assert box.counters["alerts_over_bound"] == 2
        assert box.put(msg(13)) is None  # telemetry has no room left
        assert box.counters["rejected_telemetry"] == 1
        assert box.counters["dropped_telemetry"] == 5  # T0, T2, then T3, T5, T6


def test_byte_bound_drops_enough_telemetry(tmp_path: Path) -> None:
    cfg = OutboxSettings(path=str(tmp_path / "o.db"), max_bytes=1024)
    with Outbox(cfg) as box:
        box.put_many([msg(i, size=100) for i in range(10)])  # 1000 bytes
        assert box.put(msg(10, alert=True, size=350)) is not None
        # 1000 + 350 - 1024 = 326 bytes to free: the 4 oldest 100-byte messages.
        assert ids(box)[:2] == ["T4", "T5"] and box.size_bytes == 950
        assert box.put(msg(11, size=2000)) is None  # larger than the whole bound
        assert box.counters["rejected_telemetry"] == 1


def test_reject_new_policy_never_drops(tmp_path: Path) -> None:
    cfg = OutboxSettings(path=str(tmp_path / "o.db"), max_messages=3, policy="reject-new")
    with Outbox(cfg) as box:
        assert None not in box.put_many([msg(0), msg(1), msg(2)])
        result = box.put_many([msg(3), msg(4, alert=True)])
        assert result[0] is None and result[1] is not None  # an alert is never rejected
        assert ids(box) == ["T0", "T1", "T2", "A4"]
        assert box.counters["dropped_telemetry"] == 0
        assert box.counters["alerts_over_bound"] == 1


def test_wal_mode_and_second_process_refused(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(OutboxSettings(path=str(path))) as box:
        box.put(msg(0))
        row = box._db.execute("PRAGMA journal_mode").fetchone()
        assert row[0] == "wal"
        with pytest.raises(SessionError, match="in use by another process"):
            Outbox(OutboxSettings(path=str(path)))
    # Closed: the data is readable by anyone (checkpointed into the main file).
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT message_id FROM outbox").fetchall() == [("T0",)]


@settings(max_examples=60, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.booleans(), st.integers(min_value=2, max_value=60)), min_size=1, max_size=80
    ),
    max_messages=st.integers(min_value=1, max_value=20),
    max_bytes=st.integers(min_value=1024, max_value=1500),
)
def test_bound_invariants(
    tmp_path_factory: pytest.TempPathFactory,
    ops: list[tuple[bool, int]],
    max_messages: int,
    max_bytes: int,
) -> None:
    """Within bounds; accepted alerts never dropped; order kept; counters add up."""
    path = tmp_path_factory.mktemp("prop") / "o.db"
    cfg = OutboxSettings(path=str(path), max_messages=max_messages, max_bytes=max_bytes)
    accepted_alerts: list[str] = []
    accepted_order: list[str] = []
    with Outbox(cfg) as box:
        for i, (is_alert, size) in enumerate(ops):
            m = msg(i, alert=is_alert, size=size * 10)
            if box.put(m) is not None:
                accepted_order.append(m.message_id)
                if is_alert:
                    accepted_alerts.append(m.message_id)
            else:
                assert not is_alert  # an alert is never refused
            stored_alerts = [s for s in box.peek(0, 10_000) if not s.droppable]
            alert_rows = len(stored_alerts)
            alert_bytes = sum(len(s.topic) + len(s.payload) for s in stored_alerts)
            # Telemetry stays within the bound; only alerts may go beyond it.
            assert box.depth <= max(max_messages, alert_rows)
            assert box.size_bytes <= max(max_bytes, alert_bytes)
        stored = ids(box)
        assert [i for i in accepted_order if i in set(stored)] == stored  # FIFO kept
        assert set(accepted_alerts) <= set(stored)  # no accepted alert ever dropped
        c = box.counters
        assert c["accepted"] == len(accepted_order)
        assert c["accepted"] - c["dropped_telemetry"] == len(stored)
        assert c["accepted"] + c["rejected_telemetry"] == len(ops)
        assert "rejected_alerts" not in c  # alerts are never rejected, so no such counter


def test_file_stays_bounded_under_churn(tmp_path: Path) -> None:
    """Freed pages are reused, so a full outbox churning telemetry does not grow on disk."""
    path = tmp_path / "o.db"
    cfg = OutboxSettings(path=str(path), max_bytes=256 * 1024)
    with Outbox(cfg) as box:
        for start in range(0, 3000, 200):
            box.put_many([msg(i, size=1000) for i in range(start, start + 200)])
            box.ack([m.seq for m in box.peek(0, 20)])  # a slow broker acknowledges a few
        assert box.size_bytes <= cfg.max_bytes
        assert box.counters["dropped_telemetry"] > 2000
    # Page and index overhead on top of the payload bound, not 3 MB of history.
    assert path.stat().st_size < 3 * cfg.max_bytes


def topic_msg(topic: str, i: int, *, alert: bool = False) -> OutboundMessage:
    return OutboundMessage(topic, b"%d" % i, 1, not alert, not alert, f"{topic}:{i}")


def test_conflation_latest_wins_per_topic_when_backlogged(tmp_path: Path) -> None:
    cfg = OutboxSettings(path=str(tmp_path / "o.db"))
    with Outbox(cfg, conflate_above=4) as box:
        # Below the threshold nothing is conflated: every value is kept.
        box.put_many([topic_msg("a", 0), topic_msg("b", 0), topic_msg("a", 1)])
        assert ids(box) == ["a:0", "b:0", "a:1"]
        sent = box.peek(0, 1)  # "a:0" is on the wire: never replaced
        assert [m.message_id for m in sent] == ["a:0"]
        # Backlogged: the newest telemetry of a topic replaces its waiting one.
        box.put_many([topic_msg("a", 2), topic_msg("b", 1), topic_msg("a", 3)])
        box.put_many([topic_msg("x", 0, alert=True), topic_msg("x", 1, alert=True)])
        assert ids(box) == ["a:0", "b:1", "a:3", "x:0", "x:1"]
        # a:1 and b:0 replaced in the outbox, a:2 inside its own batch; alerts never.
        assert box.counters["conflated_telemetry"] == 3
        assert box.depth == 5 and box.counters["dropped_telemetry"] == 0
        assert box.size_bytes == sum(len(m.topic) + len(m.payload) for m in box.peek(0, 100))
    # The newest waiting row per topic is found again after a restart.
    with Outbox(cfg, conflate_above=1) as box:
        box.put_many([topic_msg("b", 2)])
        assert ids(box) == ["a:0", "a:3", "x:0", "x:1", "b:2"]


def test_acked_or_dropped_rows_are_not_conflated_twice(tmp_path: Path) -> None:
    cfg = OutboxSettings(path=str(tmp_path / "o.db"), max_messages=3)
    with Outbox(cfg, conflate_above=0) as box:
        box.put_many([topic_msg("a", 0), topic_msg("b", 0), topic_msg("c", 0)])
        box.put_many([topic_msg("d", 0)])  # full: drops a:0 (oldest telemetry)
        assert ids(box) == ["b:0", "c:0", "d:0"]
        box.ack([m.seq for m in box.peek(0, 1)])  # b:0 acknowledged
        box.put_many([topic_msg("a", 1), topic_msg("b", 1)])
        assert ids(box) == ["c:0", "d:0", "a:1"] or ids(box)[-2:] == ["a:1", "b:1"]
        assert box.depth == len(ids(box)) <= 3
        assert box.size_bytes == sum(len(m.topic) + len(m.payload) for m in box.peek(0, 100))


def test_quarantine_moves_refused_rows_aside(tmp_path: Path) -> None:
    cfg = OutboxSettings(path=str(tmp_path / "o.db"))
    with Outbox(cfg) as box:
        seqs = box.put_many([msg(i) for i in range(4)])
        assert box.quarantine([(seqs[1], "not authorized (0x87)")]) == 1
        assert ids(box) == ["T0", "T2", "T3"]
        assert box.depth == 3 and box.counters["quarantined"] == 1
        ((stored, reason),) = box.quarantined()
        assert stored.message_id == "T1" and reason == "not authorized (0x87)"
        # settle(): acks, quarantines and peeks in one call.
        rows = box.settle([seqs[0]], [(seqs[2], "packet too large (0x95)")], 0, 10)
        assert [m.message_id for m in rows] == ["T3"]
        assert box.counters["acked"] == 1 and box.counters["quarantined"] == 2
    with Outbox(cfg) as box:  # kept across restarts, never replayed
        assert ids(box) == ["T3"] and len(box.quarantined()) == 2
        # New seqs never collide with quarantined ones.
        (new,) = box.put_many([msg(9)])
        assert new is not None and new > seqs[3]


def test_quarantine_trim_keeps_every_alert_and_counts_telemetry(tmp_path: Path) -> None:
    """Trimming quarantine to the newest QUARANTINE_KEEP deletes old telemetry only."""
    cfg = OutboxSettings(path=str(tmp_path / "o.db"), max_messages=10_000)
    extra = 5
    with Outbox(cfg) as box:
        alerts = box.put_many([msg(i, alert=True) for i in range(3)])
        telemetry = box.put_many([msg(i) for i in range(3, 3 + QUARANTINE_KEEP + extra)])
        box.quarantine([(seq, "payload format invalid (0x99)") for seq in alerts if seq])
        box.quarantine([(seq, "packet too large (0x95)") for seq in telemetry if seq])
        kept = box.quarantined(limit=10 * QUARANTINE_KEEP)
        assert sorted(m.message_id for m, _ in kept if not m.droppable) == ["A0", "A1", "A2"]
        assert sum(m.droppable for m, _ in kept) == QUARANTINE_KEEP
        assert box.counters["quarantined"] == 3 + QUARANTINE_KEEP + extra
        assert box.counters["quarantine_trimmed"] == extra


def test_one_commit_per_batch(tmp_path: Path) -> None:
    with Outbox(OutboxSettings(path=str(tmp_path / "o.db"))) as box:
        statements: list[str] = []
        box._db.set_trace_callback(statements.append)
        box.put_many([msg(i) for i in range(1000)])
        box.ack([m.seq for m in box.peek(0, 1000)])
        commits = [s for s in statements if s.strip().upper() == "COMMIT"]
        assert len(commits) == 2  # one for the 1000 inserts, one for the 1000 deletes
        assert sum(s.startswith("DELETE") for s in statements) == 2  # chunks of 500
        assert box.depth == 0 and box.counters["acked"] == 1000


def table(box: Outbox) -> list[StoredMessage]:
    """The stored rows, read without moving the drain's cursor as peek() does."""
    rows = box._db.execute(
        "SELECT seq, topic, payload, qos, retain, droppable, message_id FROM outbox ORDER BY seq"
    ).fetchall()
    return [StoredMessage(s, t, p, q, bool(r), bool(d), m) for s, t, p, q, r, d, m in rows]


_OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("put"),
            st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=1, max_size=6),
        ),
        st.tuples(st.just("send"), st.integers(1, 5)),
        st.tuples(st.just("ack"), st.integers(1, 5)),
        st.tuples(st.just("reconnect"), st.just(0)),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=80, deadline=None)
@given(ops=_OPS)
def test_conflation_invariants(tmp_path_factory: pytest.TempPathFactory, ops: list[Any]) -> None:
    """With conflation always on: at most one never-sent telemetry row per topic, and it is
    the newest; rows on the wire are never replaced; alerts never conflate; counters add
    up; depth and bytes match the table."""
    path = tmp_path_factory.mktemp("conflate") / "o.db"
    n = 0
    newest: dict[str, str] = {}  # topic -> message id of its newest accepted telemetry
    alerts: list[str] = []
    acked: set[str] = set()
    on_wire: list[StoredMessage] = []  # handed out since the last reconnect, not acked
    cursor = 0
    sent_high = 0  # highest seq ever handed out: rows above it were never on the wire
    offered = accepted = 0
    with Outbox(OutboxSettings(path=str(path)), conflate_above=0) as box:
        for op, arg in ops:
            if op == "put":
                batch = []
                for topic_no, is_alert in arg:
                    n += 1
                    batch.append(topic_msg(f"t{topic_no}", n, alert=is_alert))
                results = box.put_many(batch)
                offered += len(batch)
                accepted += sum(r is not None for r in results)
                for m, r in zip(batch, results, strict=True):
                    if not m.droppable:
                        assert r is not None
                        alerts.append(m.message_id)
                    elif r is not None:
                        newest[m.topic] = m.message_id
            elif op == "send":
                rows = box.peek(cursor, arg)
                on_wire += rows
                cursor = rows[-1].seq if rows else cursor
                sent_high = max(sent_high, cursor)
            elif op == "ack":
                done, on_wire = on_wire[:arg], on_wire[arg:]
                box.ack([m.seq for m in done])
                acked |= {m.message_id for m in done}
            else:
                on_wire, cursor = [], 0
                box.peek(0, 0)  # a new connection starts from the oldest row again
            stored = table(box)
            stored_ids = [m.message_id for m in stored]
            assert box.depth == len(stored)
            assert box.size_bytes == sum(len(m.topic) + len(m.payload) for m in stored)
            assert [m.seq for m in stored] == sorted(m.seq for m in stored)
            assert set(alerts) <= set(stored_ids) | acked  # alerts never conflated
            assert {m.message_id for m in on_wire} <= set(stored_ids)  # never replaced
            for topic, mid in newest.items():
                assert mid in stored_ids or mid in acked  # the newest value always survives
                unsent = [m for m in stored if m.topic == topic and m.droppable]
                # a row sent before a reconnect is resent beside its successor (at least once)
                unsent = [m for m in unsent if m.seq > sent_high]
                assert len(unsent) <= 1
                assert not unsent or unsent[0].message_id == mid
            c = box.counters
            in_batch = offered - accepted - c["rejected_telemetry"]
            replaced = c["conflated_telemetry"] - in_batch
            assert len(stored) == accepted - c["acked"] - c["dropped_telemetry"] - replaced
