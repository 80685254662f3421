"""The SQLite outbox: order, acknowledgement, bound and drop policy, durability."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isthmus.errors import SessionError
from isthmus.uns.outbox import OutboundMessage, Outbox
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
            "rejected_telemetry": 0,
            "rejected_alerts": 0,
        }
        assert box.snapshot()["depth"] == 2 and box.snapshot()["bytes"] == 20


def test_full_store_drops_oldest_telemetry_keeps_alerts(tmp_path: Path) -> None:
    cfg = OutboxSettings(path=str(tmp_path / "o.db"), max_messages=6)
    with Outbox(cfg) as box:
        box.put_many([msg(0), msg(1, alert=True), msg(2), msg(3), msg(4, alert=True), msg(5)])
        box.put_many([msg(6), msg(7, alert=True)])
        assert ids(box) == ["A1", "T3", "A4", "T5", "T6", "A7"]
        assert box.counters["dropped_telemetry"] == 2
        # Alerts push out all telemetry, then new messages are rejected, alerts kept.
        results = box.put_many([msg(i, alert=True) for i in range(8, 13)])
        assert None not in results[:3] and results[3:] == [None, None]
        assert ids(box) == ["A1", "A4", "A7", "A8", "A9", "A10"]
        assert box.put(msg(13)) is None
        assert box.counters["rejected_alerts"] == 2
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
        assert box.put_many([msg(3), msg(4, alert=True)]) == [None, None]
        assert ids(box) == ["T0", "T1", "T2"]
        assert box.counters["dropped_telemetry"] == 0


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
            assert box.depth <= max_messages and box.size_bytes <= max_bytes
        stored = ids(box)
        assert [i for i in accepted_order if i in set(stored)] == stored  # FIFO kept
        assert set(accepted_alerts) <= set(stored)  # no accepted alert ever dropped
        c = box.counters
        assert c["accepted"] == len(accepted_order)
        assert c["accepted"] - c["dropped_telemetry"] == len(stored)
        assert c["accepted"] + c["rejected_alerts"] + c["rejected_telemetry"] == len(ops)


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
