"""The durable outbox: gap-free sequence, persistence, bounds, eviction policy, TTL, stats."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.events import EVENT_TYPES, Event, new_event
from edge.relay.outbox import DB_NAME, Outbox, read_stats, seq_ranges
from tests.conftest import KIOSK_EDGE


def make(path: Path, **kwargs: object) -> tuple[Outbox, list[Event]]:
    """An outbox whose kiosk.relay.dropped reports land in a list."""
    reports: list[Event] = []
    outbox = Outbox(
        path / DB_NAME,
        store_id="s1",
        device_id="k1",
        emit=reports.append,
        **kwargs,  # type: ignore[arg-type]
    )
    return outbox, reports


def search(i: int) -> Event:
    return new_event("kiosk.search", {"q": f"query {i}"})


def telemetry(i: int) -> Event:
    return new_event("kiosk.beacon.telemetry", {"id": f"b{i}", "battery_mv": 3000})


def payloads(outbox: Outbox) -> list[dict[str, object]]:
    return [json.loads(r.payload) for r in outbox.fetch(0, 1_000_000)]


def test_sequences_are_gap_free_and_persist_across_reopen(tmp_path: Path) -> None:
    """Sequences are 1, 2, 3... and continue after the database is reopened; epoch stays."""
    outbox, _ = make(tmp_path)
    assert outbox.accept([search(i) for i in range(5)]) == [1, 2, 3, 4, 5]
    epoch = outbox.epoch
    outbox.delete([1, 2, 3, 4, 5])
    outbox.close()
    again, _ = make(tmp_path)
    assert again.epoch == epoch
    assert again.accept([search(9)]) == [6]
    (row,) = payloads(again)
    assert row["sequence"] == "00000000000000000006"
    assert row["outboxepoch"] == epoch
    again.close()


def test_envelope_is_cloudevents_with_stable_id(tmp_path: Path) -> None:
    """The stored payload is the CloudEvents JSON central receives, with the event's own id."""
    outbox, _ = make(tmp_path)
    event = new_event("kiosk.product.scan", {"ean": "3760000000017", "source": "hid"})
    outbox.accept([event])
    (row,) = outbox.fetch(0, 10)
    body = json.loads(row.payload)
    assert body["id"] == event.id == row.id
    assert body["source"] == "urn:kiosk-edge:s1:k1"
    assert body["type"] == "kiosk.product.scan"
    assert body["data"] == {"ean": "3760000000017", "source": "hid"}
    assert body["specversion"] == "1.0"
    assert "recordedtime" in body
    outbox.close()


def test_local_unknown_and_unserialisable_events_get_no_sequence(tmp_path: Path) -> None:
    """Events that must not or cannot be relayed are skipped without burning a sequence."""
    outbox, _ = make(tmp_path)
    local = new_event("local.session.welcome", {"first_name": "Camille"})
    bad = new_event("kiosk.search", {"q": object()})
    unknown = Event(type="kiosk.nope", data={}, time=datetime.now(UTC))
    assert outbox.accept([local, bad, unknown, search(1)]) == [1]
    assert outbox.stats().depth == 1
    outbox.close()


def test_submit_commits_in_batches_on_the_writer_thread(tmp_path: Path) -> None:
    """submit() never blocks; flush() returns once everything is on disk, in order."""
    outbox, _ = make(tmp_path, commit_interval_ms=2)
    outbox.start()
    events = [search(i) for i in range(3000)]
    for e in events:
        assert outbox.submit(e)
    assert outbox.flush(20)
    rows = outbox.fetch(0, 10_000)
    assert [r.seq for r in rows] == list(range(1, 3001))
    assert [r.id for r in rows] == [e.id for e in events]
    outbox.close()


def test_close_commits_what_was_submitted(tmp_path: Path) -> None:
    """Closing the outbox commits pending events before the files close."""
    outbox, _ = make(tmp_path, commit_interval_ms=50)
    outbox.start()
    for i in range(100):
        outbox.submit(search(i))
    outbox.close()
    again, _ = make(tmp_path)
    assert again.stats().depth == 100
    again.close()


def test_delete_only_removes_acknowledged_rows(tmp_path: Path) -> None:
    """delete() removes exactly the given rows, tolerates unknown ones and keeps totals right."""
    outbox, _ = make(tmp_path)
    outbox.accept([search(i) for i in range(10)])
    assert outbox.delete([2, 4, 99]) == 2
    assert outbox.delete([2]) == 0
    stats = outbox.stats()
    assert stats.depth == 8
    assert [r.seq for r in outbox.fetch(0, 100)] == [1, 3, 5, 6, 7, 8, 9, 10]
    assert [r.seq for r in outbox.fetch(5, 2)] == [6, 7]
    assert outbox.first_sequence() == 1
    outbox.close()


def test_seq_ranges_merges_consecutive_sequences_in_any_order() -> None:
    """Acks arrive out of order and twice: they become sorted, merged runs."""
    assert seq_ranges([]) == []
    assert seq_ranges([5]) == [(5, 5)]
    assert seq_ranges([3, 1, 2, 2, 7, 9, 8, 11]) == [(1, 3), (7, 9), (11, 11)]


def test_delete_by_ranges_keeps_per_type_counts_and_bytes(tmp_path: Path) -> None:
    """Deleting out-of-order acks over mixed types leaves exactly the right rows and totals."""
    outbox, _ = make(tmp_path)
    scans = [new_event("kiosk.product.scan", {"ean": str(i), "source": "hid"}) for i in range(6)]
    searches = [search(i) for i in range(6)]
    outbox.accept([e for pair in zip(searches, scans, strict=True) for e in pair])
    assert outbox.delete([12, 1, 3, 2, 9, 10, 12, 40]) == 6
    stats = outbox.stats()
    left = outbox.fetch(0, 100)
    assert [r.seq for r in left] == [4, 5, 6, 7, 8, 11]
    assert stats.depth == 6
    assert stats.per_type == {"kiosk.search": 3, "kiosk.product.scan": 3}
    assert stats.bytes == sum(len(r.payload) for r in left)
    assert outbox.delete([4, 5, 6, 7, 8, 11]) == 6
    assert outbox.stats().per_type == {}
    assert outbox.stats().bytes == 0
    outbox.close()


def test_full_outbox_evicts_lowest_priority_oldest_first_and_reports(tmp_path: Path) -> None:
    """Beyond max_rows, telemetry goes first (oldest first), then presence, then shopper."""
    outbox, reports = make(tmp_path, max_rows=100)
    outbox.accept([search(i) for i in range(40)])  # shopper, seq 1-40
    outbox.accept([telemetry(i) for i in range(30)])  # telemetry, seq 41-70
    zone = {"beacon_class": "store", "id": "u:1:2", "zone": "near"}
    outbox.accept([new_event("kiosk.beacon.zone", zone) for _ in range(30)])  # 71-100
    assert outbox.stats().depth == 100
    assert reports == []
    outbox.accept([search(100 + i) for i in range(35)])  # 101-135: 35 must go
    stats = outbox.stats()
    assert stats.depth == 100
    seqs = [r.seq for r in outbox.fetch(0, 1000)]
    # All 30 telemetry rows went, then the 5 oldest presence rows.
    assert seqs == list(range(1, 41)) + list(range(76, 136))
    assert stats.per_type == {"kiosk.search": 75, "kiosk.beacon.zone": 25}
    (report,) = reports
    assert report.type == "kiosk.relay.dropped"
    assert report.data["reason"] == "full"
    assert report.data["count"] == 35
    assert report.data["by_type"] == {"kiosk.beacon.telemetry": 30, "kiosk.beacon.zone": 5}
    assert (report.data["first_sequence"], report.data["last_sequence"]) == (41, 75)
    assert stats.dropped == {"kiosk.beacon.telemetry": 30, "kiosk.beacon.zone": 5}
    outbox.close()


def test_byte_bound_evicts_too(tmp_path: Path) -> None:
    """max_bytes bounds the payload bytes kept, whatever the row count."""
    outbox, reports = make(tmp_path, max_bytes=1024 * 1024)
    big = "x" * 10_000
    outbox.accept([new_event("kiosk.search", {"q": big}) for _ in range(150)])
    stats = outbox.stats()
    assert stats.bytes <= 1024 * 1024
    assert 90 <= stats.depth < 150
    assert reports
    assert reports[0].data["count"] == 150 - stats.depth
    assert outbox.fetch(0, 1)[0].seq == 150 - stats.depth + 1  # oldest went first
    outbox.close()


def test_dropped_reports_are_rate_limited_and_relayed(tmp_path: Path) -> None:
    """A flood of evictions gives one report per interval; the report itself is queued."""
    outbox = Outbox(tmp_path / DB_NAME, store_id="s", device_id="k", max_rows=100)
    outbox.start()
    for i in range(5):
        outbox.accept([telemetry(i * 100 + j) for j in range(100)])
    assert outbox.flush(5)
    time.sleep(1.2)
    assert outbox.flush(5)
    types = outbox.stats().per_type
    dropped = types.get("kiosk.relay.dropped", 0)
    assert 1 <= dropped <= 3, types
    outbox.close()


def test_stale_events_are_dropped_not_published(tmp_path: Path) -> None:
    """An event older than its type's TTL is not returned by fetch and is reported."""
    ttl = EVENT_TYPES["kiosk.beacon.zone"].ttl_s
    assert ttl is not None
    now = [time.time()]
    outbox, reports = make(tmp_path, clock=lambda: now[0])
    old = Event(
        type="kiosk.beacon.zone",
        data={"zone": "near"},
        time=datetime.now(UTC) - timedelta(seconds=ttl - 5),
    )
    outbox.accept([old, search(1)])
    assert [r.seq for r in outbox.fetch(0, 10)] == [1, 2]
    now[0] += 10
    assert [r.seq for r in outbox.fetch(0, 10)] == [2]
    assert reports[0].data["reason"] == "expired"
    assert reports[0].data["by_type"] == {"kiosk.beacon.zone": 1}
    assert outbox.purge_expired() == 0
    outbox.close()


def test_stats_and_recent(tmp_path: Path) -> None:
    """stats() gives depth, bytes, oldest age and per-type counts; recent() has no data."""
    now = [1_000_000.0]
    outbox, _ = make(tmp_path, clock=lambda: now[0])
    outbox.accept([search(1), search(2)])
    now[0] += 7
    outbox.accept([telemetry(1)])
    stats = outbox.stats()
    assert stats.depth == 3
    assert stats.bytes == sum(len(r.payload) for r in outbox.fetch(0, 10))
    assert stats.oldest_age_s == pytest.approx(7)
    assert stats.per_type == {"kiosk.search": 2, "kiosk.beacon.telemetry": 1}
    assert stats.next_sequence == 4
    recent = outbox.recent(2)
    assert [r["sequence"] for r in recent] == [3, 2]
    assert set(recent[0]) == {"type", "recorded", "sequence"}
    on_disk = read_stats(tmp_path / DB_NAME, clock=lambda: now[0])
    assert on_disk is not None
    assert (on_disk.depth, on_disk.bytes, on_disk.per_type) == (3, stats.bytes, stats.per_type)
    outbox.close()


def test_unreadable_database_is_moved_aside_with_a_new_epoch(tmp_path: Path) -> None:
    """A corrupt file does not stop the appliance: it is kept aside, and the epoch changes."""
    (tmp_path / DB_NAME).write_bytes(b"this is not a database" * 100)
    outbox, _ = make(tmp_path)
    assert outbox.accept([search(1)]) == [1]
    assert list(tmp_path.glob(f"{DB_NAME}.corrupt-*"))
    outbox.close()


def test_locked_database_is_never_moved_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database another process holds locked is sound: opening fails, nothing is set aside."""
    outbox, _ = make(tmp_path)
    outbox.accept([search(i) for i in range(5)])
    outbox.close()
    monkeypatch.setattr("edge.relay.outbox.BUSY_TIMEOUT_MS", 100)
    other = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            make(tmp_path)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert not list(tmp_path.glob(f"{DB_NAME}.corrupt-*"))
    outbox, _ = make(tmp_path)
    assert outbox.stats().depth == 5
    assert outbox.accept([search(5)]) == [6]
    outbox.close()


def test_outbox_survives_a_killed_process(tmp_path: Path) -> None:
    """Whatever accept() returned before a SIGKILL is still there afterwards."""
    script = f"""
import sys, os, signal
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from pathlib import Path
from edge.events import new_event
from edge.relay.outbox import Outbox
o = Outbox(Path({str(tmp_path / DB_NAME)!r}), store_id="s", device_id="k")
for i in range(20):
    seqs = o.accept([new_event("kiosk.search", {{"q": str(i)}}) for _ in range(50)])
    print(seqs[-1], flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == -9
    last = int(proc.stdout.split()[-1])
    assert last == 1000
    conn = sqlite3.connect(tmp_path / DB_NAME)
    assert conn.execute("SELECT COUNT(*), MAX(seq) FROM events").fetchone() == (1000, 1000)
    conn.close()


def outbox_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`kiosk-edge outbox ARGS --config CONFIG` as store IT runs it."""
    return subprocess.run(
        [*KIOSK_EDGE, "outbox", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_outbox_reports_depth(tmp_path: Path, write_config: object) -> None:
    """`kiosk-edge outbox --json` prints depth, bytes, oldest age and per-type counts."""
    assert callable(write_config)
    config = write_config()
    data_dir = tmp_path / "data"
    proc = outbox_cli(config)
    assert proc.returncode == 0, proc.stderr
    assert "no outbox yet" in proc.stdout
    outbox = Outbox(data_dir / DB_NAME, store_id="s", device_id="k")
    outbox.accept([search(1), telemetry(1), telemetry(2)])
    proc = outbox_cli(config, "--json")
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert body["depth"] == 3
    assert body["per_type"] == {"kiosk.beacon.telemetry": 2, "kiosk.search": 1}
    assert body["bytes"] > 0
    assert body["oldest_age_s"] >= 0
    proc = outbox_cli(config)
    assert proc.returncode == 0
    assert "depth       3 events" in proc.stdout
    outbox.close()


def test_cli_outbox_names_an_unreadable_database(tmp_path: Path, write_config: object) -> None:
    """A damaged outbox file is one sentence naming it, exit 1 (a failure found)."""
    assert callable(write_config)
    config = write_config()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / DB_NAME).write_bytes(b"not a database" * 100)
    proc = outbox_cli(config)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith("kiosk-edge: cannot read the outbox")
    assert "not a database" in proc.stderr
