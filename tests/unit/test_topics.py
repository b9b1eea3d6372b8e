"""Topic names, MQTT 5 property packing, backoff, command parsing and catalog messages."""

from __future__ import annotations

import json
import random
import sqlite3

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes

from edge.catalog.models import CatalogChange
from edge.catalog.sync import (
    APPLY_RETRIES,
    CatalogMessageError,
    CatalogSync,
    change_from_message,
)
from edge.relay import commands
from edge.relay.mqtt import (
    STABLE_CONNECTION_S,
    is_success,
    new_properties,
    next_attempt,
    pack_event_properties,
    pack_publish_properties,
    reconnect_delay,
)
from edge.relay.topics import TopicError, Topics

T = Topics("store-7", "kiosk-2")


def test_device_topics_follow_the_contract() -> None:
    """Topics are exactly as in ARCHITECTURE.md."""
    assert (
        T.event("kiosk.beacon.enter") == "kiosk-edge/v1/store-7/kiosk-2/events/kiosk.beacon.enter"
    )
    assert T.status == "kiosk-edge/v1/store-7/kiosk-2/status"
    assert T.health == "kiosk-edge/v1/store-7/kiosk-2/health"
    assert T.command_filters() == [
        "kiosk-edge/v1/store-7/kiosk-2/cmd/+",
        "kiosk-edge/v1/store-7/all/cmd/+",
    ]
    assert T.reply("ping") == "kiosk-edge/v1/store-7/kiosk-2/cmd/ping/reply"
    assert T.catalog_filter == "kiosk-edge/v1/store-7/catalog/#"


def test_command_names_are_parsed_from_both_trees() -> None:
    """Device and store-wide commands are recognised; replies and others are not."""
    assert T.command_name("kiosk-edge/v1/store-7/kiosk-2/cmd/ping") == "ping"
    assert T.command_name("kiosk-edge/v1/store-7/all/cmd/identify") == "identify"
    assert T.command_name("kiosk-edge/v1/store-7/kiosk-2/cmd/ping/reply") is None
    assert T.command_name("kiosk-edge/v1/store-7/kiosk-3/cmd/ping") is None
    assert T.command_name("kiosk-edge/v1/other/all/cmd/ping") is None


def test_catalog_keys() -> None:
    """Retained catalog topics map to change kinds (shoppers included); others are None."""
    base = "kiosk-edge/v1/store-7/catalog"
    assert T.catalog_key(f"{base}/products/TV-001") == ("product", "TV-001")
    assert T.catalog_key(f"{base}/offers/o1") == ("offer", "o1")
    assert T.catalog_key(f"{base}/reviews/TV-001") == ("reviews", "TV-001")
    assert T.catalog_key(f"{base}/shoppers/49698d7f90c7344b7552e55142b73e35") == (
        "shopper",
        "49698d7f90c7344b7552e55142b73e35",
    )
    assert T.catalog_key(f"{base}/widgets/x") is None
    assert T.catalog_key(f"{base}/products/") is None
    assert T.catalog_key(f"{base}/products/a/b") is None
    assert T.catalog_topic("reviews", "TV-1") == f"{base}/reviews/TV-1"


@pytest.mark.parametrize("bad", ["", "a/b", "a+", "#", "x\x00"])
def test_unusable_levels_are_refused(bad: str) -> None:
    """Ids with MQTT separators or wildcards are refused with a message naming the fix."""
    with pytest.raises(TopicError, match="cannot be used in an MQTT topic"):
        Topics(bad, "k")
    with pytest.raises(TopicError):
        T.event(bad)


@given(
    st.text(max_size=80),
    st.text(min_size=1, max_size=40),
    st.integers(min_value=0, max_value=2**63 - 1),
    st.one_of(st.none(), st.integers(min_value=1, max_value=2**32 - 1)),
)
def test_packed_properties_equal_paho_packing(
    event_id: str, event_type: str, seq: int, expiry: int | None
) -> None:
    """Our fast property encoder produces the same bytes as paho's Properties.pack()."""
    props = new_properties(PacketTypes.PUBLISH)
    if expiry is not None:
        props.MessageExpiryInterval = expiry
    props.ContentType = "application/cloudevents+json"
    props.UserProperty = [("id", event_id), ("type", event_type), ("sequence", str(seq).zfill(20))]
    expected = props.pack()
    user = [("id", event_id), ("type", event_type), ("sequence", str(seq).zfill(20))]
    assert pack_publish_properties("application/cloudevents+json", user, expiry) == expected
    assert pack_event_properties(event_id, event_type, seq, expiry) == expected


def test_reconnect_delay_doubles_with_jitter_and_caps() -> None:
    """Backoff doubles from the minimum, stays within 50-100 % of the step, never exceeds max."""
    rng = random.Random(4)
    for attempt in range(1, 12):
        ceiling = min(60.0, 1.0 * 2 ** (attempt - 1))
        delays = {reconnect_delay(attempt, 1.0, 60.0, rng) for _ in range(50)}
        assert all(ceiling * 0.5 <= d <= ceiling for d in delays)
        assert len(delays) > 40  # jittered: kiosks do not reconnect in lock-step
    assert reconnect_delay(10_000, 1.0, 60.0, rng) <= 60.0


def test_reconnect_attempts_restart_only_after_a_stable_connection() -> None:
    """A refused connect or a connection dropped within seconds (a flap) backs off further;
    a connection that held starts the backoff from the beginning."""
    assert next_attempt(0, 0.0) == 1
    assert next_attempt(3, 0.0) == 4
    assert next_attempt(3, STABLE_CONNECTION_S / 10) == 4
    assert next_attempt(7, STABLE_CONNECTION_S) == 1


def test_puback_reason_codes() -> None:
    """Below 0x80 is success (0x10 'no matching subscribers' included); 0x87 is a refusal."""
    assert is_success(0x00)
    assert is_success(0x10)
    assert not is_success(0x80)
    assert not is_success(0x87)


# ------------------------------------------------------------------ commands
class FakeServices:
    """Just enough of Services for command handlers: a publish sink and no printer."""

    def __init__(self) -> None:
        self.published: list[object] = []
        self.printer: object = None
        self.extras: dict[str, object] = {}

    def publish(self, event: object) -> None:
        self.published.append(event)


def test_commands_answer_with_the_request_id() -> None:
    """ping answers ok with the caller's id; identify publishes local.kiosk.identify."""
    services = FakeServices()
    ctx = commands.CommandContext(services)
    answer = commands.execute("ping", b'{"id": "r-1"}', ctx)
    assert answer["ok"] is True
    assert answer["id"] == "r-1"
    assert answer["result"]["pong"] is True
    answer = commands.execute("identify", b'{"id": 7, "args": {"seconds": 3}}', ctx)
    assert answer["ok"]
    assert answer["id"] == "7"
    assert [e.type for e in services.published] == ["local.kiosk.identify"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "payload", "error"),
    [
        ("ping", b"{not json", "malformed command: payload is not JSON"),
        ("ping", b"[1, 2]", "malformed command: payload must be a JSON object"),
        ("ping", b'{"args": 5}', "malformed command: args must be a JSON object"),
        ("ping", b"\xff\xfe", "malformed command: payload is not JSON"),
        ("ping", b"[" * 60_000, "malformed command: payload is nested too deeply"),
        ("reboot-now", b"{}", "unknown command 'reboot-now'; known: identify, ping"),
        ("identify", b'{"args": {"seconds": "x"}}', "args.seconds must be a number"),
        ("print-test", b"", "printer disabled"),
    ],
)
def test_bad_commands_get_error_replies(name: str, payload: bytes, error: str) -> None:
    """Malformed payloads, unknown commands and failing handlers answer with an error."""
    answer = commands.execute(name, payload, commands.CommandContext(FakeServices()))
    assert answer["ok"] is False
    assert answer["error"].startswith(error)
    assert "result" not in answer


def test_malformed_request_still_echoes_its_id() -> None:
    """A request with a usable id but bad args gets its id back."""
    answer = commands.execute(
        "ping", b'{"id": "abc", "args": []}', commands.CommandContext(FakeServices())
    )
    assert answer == {**answer, "ok": False, "id": "abc"}


def test_command_table_is_extensible() -> None:
    """A new handler in the table is dispatched like the built-in ones."""
    table = dict(commands.COMMANDS)
    table["echo"] = lambda _ctx, args: {"echo": args}
    answer = commands.execute(
        "echo",
        json.dumps({"args": {"x": 1}}).encode(),
        commands.CommandContext(FakeServices()),
        table,
    )
    assert answer["result"] == {"echo": {"x": 1}}


# ------------------------------------------------------------------ catalog
def test_catalog_messages_become_changes() -> None:
    """Objects upsert, empty payloads delete, review lists are wrapped for the store."""
    base = "kiosk-edge/v1/store-7/catalog"
    change = change_from_message(T, f"{base}/products/TV-001", b'{"name": "TV", "price": 1}')
    assert change == CatalogChange("product", "TV-001", {"name": "TV", "price": 1})
    assert change_from_message(T, f"{base}/offers/o1", b"") == CatalogChange("offer", "o1", None)
    reviews = change_from_message(T, f"{base}/reviews/TV-001", b'[{"id": "r1", "rating": 5}]')
    assert reviews.payload == {"reviews": [{"id": "r1", "rating": 5}]}
    shopper = change_from_message(
        T, f"{base}/shoppers/49698d7f90c7344b7552e55142b73e35", b'{"first_name": "Camille"}'
    )
    assert shopper.kind == "shopper"


@pytest.mark.parametrize(
    ("topic", "payload", "error"),
    [
        ("kiosk-edge/v1/store-7/catalog/products/A", b"{oops", "payload is not JSON"),
        ("kiosk-edge/v1/store-7/catalog/products/A", b"[1]", "expected a JSON object"),
        ("kiosk-edge/v1/store-7/catalog/reviews/A", b'{"x": 1}', "expected a JSON list"),
        ("kiosk-edge/v1/store-7/catalog/gadgets/A", b"{}", "not a catalog topic"),
    ],
)
def test_malformed_catalog_messages_are_rejected(topic: str, payload: bytes, error: str) -> None:
    """Malformed retained messages raise a clear error (the sync logs and counts it)."""
    with pytest.raises(CatalogMessageError, match=error):
        change_from_message(T, topic, payload)


class ListSink:
    """A CatalogSink that records batches (and rejects products without a name)."""

    def __init__(self) -> None:
        self.batches: list[list[CatalogChange]] = []

    def apply_changes(self, changes: list[CatalogChange]) -> list[str]:
        self.batches.append(list(changes))
        return [
            f"{c.key}: no name"
            for c in changes
            if c.payload is not None and "name" not in c.payload
        ]


def test_catalog_sync_batches_and_keeps_the_newest_state() -> None:
    """Changes are applied in batches; a later message for a record supersedes an earlier one."""
    sink = ListSink()
    sync = CatalogSync(T, lambda: sink, linger_s=0.05)
    base = "kiosk-edge/v1/store-7/catalog/products"
    sync.offer(f"{base}/A", b'{"name": "first"}')
    sync.offer(f"{base}/B", b'{"price": 1}')
    sync.offer(f"{base}/A", b"")
    sync.offer(f"{base}/C", b"not json")
    sync.start()
    assert sync.wait_idle(5)
    sync.stop()
    applied = [c for batch in sink.batches for c in batch]
    assert applied == [
        CatalogChange("product", "B", {"price": 1}),
        CatalogChange("product", "A", None),
    ]
    assert sync.stats.rejected == 2  # C (not JSON) and B (no name)
    assert sync.stats.applied == 1


class LockedSink(ListSink):
    """A store whose database is locked (a catalog import running) for the first calls."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.calls = 0

    def apply_changes(self, changes: list[CatalogChange]) -> list[str]:
        self.calls += 1
        if self.calls <= self.failures:
            raise sqlite3.OperationalError("database is locked")
        return super().apply_changes(changes)


def test_catalog_batch_the_store_refuses_is_tried_again() -> None:
    """A locked store delays the retained records; none is lost, newer state still wins."""
    sink = LockedSink(failures=2)
    sync = CatalogSync(T, lambda: sink, linger_s=0, retry_s=0.01)
    base = "kiosk-edge/v1/store-7/catalog/products"
    sync.offer(f"{base}/A", b'{"name": "a"}')
    sync.offer(f"{base}/B", b'{"name": "b"}')
    sync.start()
    assert sync.wait_idle(5)
    sync.stop()
    assert sink.calls == 3
    assert [c.key for batch in sink.batches for c in batch] == ["A", "B"]
    assert (sync.stats.applied, sync.stats.rejected) == (2, 0)


def test_catalog_batch_is_counted_rejected_after_the_retries() -> None:
    """A store that never recovers: the batch is rejected (and logged) after the retries."""
    sink = LockedSink(failures=1000)
    sync = CatalogSync(T, lambda: sink, linger_s=0, retry_s=0.001)
    sync.offer("kiosk-edge/v1/store-7/catalog/products/A", b'{"name": "a"}')
    sync.start()
    assert sync.wait_idle(5)
    sync.stop()
    assert sink.calls == APPLY_RETRIES + 1
    assert (sync.stats.applied, sync.stats.rejected) == (0, 1)
    assert "database is locked" in sync.errors[-1]


# ------------------------------------------------------------------ fuzz
@given(st.text(max_size=30), st.binary(max_size=300))
def test_commands_never_raise_on_outside_bytes(name: str, payload: bytes) -> None:
    """Any command name and payload bytes give a reply object, never an exception."""
    answer = commands.execute(name, payload, commands.CommandContext(FakeServices()))
    assert answer["command"] == name
    assert isinstance(answer["ok"], bool)
    assert answer["ok"] or answer["error"]


@given(
    st.sampled_from(["products", "offers", "reviews", "shoppers", "other", ""]),
    st.text(max_size=20),
    st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10),
            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
            max_leaves=12,
        ).map(lambda v: json.dumps(v).encode()),
    ),
)
def test_catalog_messages_never_crash_the_sync(level: str, key: str, payload: bytes) -> None:
    """Any retained topic and payload is either a change or a counted rejection."""
    sink = ListSink()
    sync = CatalogSync(T, lambda: sink, linger_s=0)
    sync.offer(f"kiosk-edge/v1/store-7/catalog/{level}/{key}", payload)
    assert sync.stats.received == 1
    assert sync.stats.rejected + len(sync._pending) == 1


@given(st.text(max_size=120))
def test_topic_parsers_never_raise(topic: str) -> None:
    """Parsing any incoming topic returns a name/key or None."""
    T.command_name(topic)
    T.catalog_key(topic)
