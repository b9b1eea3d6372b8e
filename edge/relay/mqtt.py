"""The MQTT uplink: one thread owns a paho client and drains the outbox in order.

paho's own queue lives in RAM, may resend in-flight messages twice on reconnect and can
ignore ``max_inflight`` (paho issues 24, 492), so this module owns the window: it hands paho
at most ``max_inflight`` rows from the outbox, correlates every ``publish()`` through the
returned :class:`MQTTMessageInfo` (``on_publish`` can fire first, issue 361), deletes a row
only when the PUBACK reason code is below 0x80 (an MQTT 5 refusal still "completes" the
publish, issues 474 and 715), and builds a fresh client with a fresh mid map for every
connection. Reconnects use exponential backoff with jitter so a store's kiosks do not all
reconnect at once after a broker outage. Every paho call happens on the owner thread (paho
is not fully thread-safe, issues 358 and 872); other threads hand it work through a queue.
Nothing here ever waits on ``wait_for_publish()``.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import queue
import random
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge.config import MqttConfig
from edge.events import CLOUDEVENTS_CONTENT_TYPE, format_sequence
from edge.relay.outbox import Outbox, OutboxRow
from edge.relay.topics import Topics

_LOGGER = logging.getLogger(__name__)

# Rows read from the outbox per query: amortises SQLite round trips, bounded RAM.
FETCH_CHUNK: Final = 512
# Acknowledged rows are deleted in batches of this many (or sooner when the window drains).
ACK_BATCH: Final = 256
# ... and at least this often, so the outbox depth shown to store IT is current.
ACK_FLUSH_S: Final = 0.05
# Longest idle wait in the owner loop: keep-alive pings and timers are checked this often.
IDLE_WAIT_S: Final = 0.5
# A broker that accepted TCP but sends no CONNACK within this time is treated as down.
CONNACK_TIMEOUT_S: Final = 10.0
# After a broker refused a message (PUBACK >= 0x80) the relay pauses this long at least,
# then resends from the oldest unacknowledged row (refusals are usually ACL mistakes).
REFUSAL_PAUSE_MIN_S: Final = 5.0
# On a clean stop, wait this long for the "offline" status to be acknowledged.
STOP_FLUSH_S: Final = 1.0
# Room in paho's own in-flight limit for non-outbox messages (birth, replies, health).
DIRECT_HEADROOM: Final = 32
# Linux TCP_CORK (None elsewhere): hold partial segments while a window is written.
_CORK: Final = getattr(socket, "TCP_CORK", None)
# Cork only when at least this many messages wait: two extra system calls pay off beyond it.
CORK_MIN_PACKETS: Final = 4
# PUBACK reason codes from 0x80 up are failures (MQTT 5, 3.4.2.1).
FAILURE_REASON: Final = 0x80
# A connection that lasted this long was stable: the next reconnect starts the backoff again.
# A shorter one is a flap (a broker that accepts and drops at once, or another device using
# the same client id taking the session over) and backs off like a failed connect.
STABLE_CONNECTION_S: Final = 5.0

MessageHandler = Callable[[str, bytes, Any, bool], None]  # topic, payload, properties, retained


def reconnect_delay(
    attempt: int, minimum: float, maximum: float, rng: random.Random | None = None
) -> float:
    """Delay before reconnect ``attempt`` (1-based): doubling from ``minimum`` up to
    ``maximum``, jittered to 50-100 % so a store's kiosks spread out after an outage."""
    ceiling = min(maximum, minimum * 2.0 ** min(max(0, attempt - 1), 32))
    r: float = (rng or random).uniform(0.5, 1.0)
    return ceiling * r


def next_attempt(attempt: int, connected_s: float) -> int:
    """The reconnect attempt number after a connection that lasted ``connected_s`` seconds
    (0: never accepted): 1 after a stable connection, one more after a failure or a flap."""
    return 1 if connected_s >= STABLE_CONNECTION_S else attempt + 1


def new_properties(packet_type: int) -> Properties:
    """An empty MQTT 5 property set for a packet type (paho's constructor is untyped)."""
    return Properties(packet_type)  # type: ignore[no-untyped-call]


def json_publish_properties(correlation: bytes | None = None) -> Properties:
    """MQTT 5 PUBLISH properties for a JSON payload, with a request's correlation data."""
    props = new_properties(PacketTypes.PUBLISH)
    props.ContentType = "application/json"
    if correlation is not None:
        props.CorrelationData = correlation
    return props


def _utf8(value: str) -> bytes:
    raw = value.encode()
    if len(raw) > 0xFFFF:
        raise ValueError("MQTT strings are at most 65535 bytes")
    return len(raw).to_bytes(2, "big") + raw


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


# MQTT 5 property identifiers (MQTT 5.0, 2.2.2.2).
_MESSAGE_EXPIRY: Final = b"\x02"
_CONTENT_TYPE: Final = b"\x03"
_USER_PROPERTY: Final = b"\x26"


def pack_publish_properties(
    content_type: str, user: list[tuple[str, str]], expiry_s: int | None
) -> bytes:
    """The encoded PUBLISH property block (length prefix included), as paho would pack it.

    Pure and several times faster than building a paho ``Properties`` per message, which
    alone halved the relay's throughput.
    """
    body = bytearray()
    if expiry_s is not None:
        body += _MESSAGE_EXPIRY + expiry_s.to_bytes(4, "big")
    body += _CONTENT_TYPE + _utf8(content_type)
    for name, value in user:
        body += _USER_PROPERTY + _utf8(name) + _utf8(value)
    return _varint(len(body)) + bytes(body)


# The constant part of an event's properties: content type, then the "id" user property name.
_EVENT_PROPS_HEAD: Final = _CONTENT_TYPE + _utf8(CLOUDEVENTS_CONTENT_TYPE) + _USER_PROPERTY
_ID: Final = _utf8("id")
_TYPE: Final = _USER_PROPERTY + _utf8("type")
_SEQUENCE: Final = _USER_PROPERTY + _utf8("sequence")


def pack_event_properties(event_id: str, event_type: str, seq: int, expiry_s: int | None) -> bytes:
    """The PUBLISH properties of an outbox event (same bytes as :func:`pack_publish_properties`
    with content type, id, type and sequence), built with as few steps as possible."""
    body = b"".join(
        (
            b"" if expiry_s is None else _MESSAGE_EXPIRY + expiry_s.to_bytes(4, "big"),
            _EVENT_PROPS_HEAD,
            _ID,
            _utf8(event_id),
            _TYPE,
            _utf8(event_type),
            _SEQUENCE,
            _utf8(format_sequence(seq)),
        )
    )
    return _varint(len(body)) + body


class PackedProperties(Properties):
    """PUBLISH properties already encoded: paho only calls ``pack()`` on them."""

    _packed: bytes

    def __init__(self, packed: bytes) -> None:  # no super().__init__: nothing else is read
        # paho's Properties.__setattr__ only admits property names: bypass it.
        object.__setattr__(self, "packetType", PacketTypes.PUBLISH)
        object.__setattr__(self, "_packed", packed)

    def pack(self) -> bytes:
        """The encoded property block."""
        return self._packed

    def __str__(self) -> str:
        return f"PackedProperties({self._packed!r})"


def _ignore_register_write(_client: paho.Client, _userdata: Any, _sock: Any) -> None:
    """The owner loop polls ``want_write()`` itself: nothing to register."""


def _ssl_pending(sock: Any) -> int:
    """Bytes a TLS socket has decrypted but select() cannot see (0 for plain sockets)."""
    pending = getattr(sock, "pending", None)
    return int(pending()) if pending is not None else 0


def is_success(reason: ReasonCode | int) -> bool:
    """True for a PUBACK reason code below 0x80 (success or "no matching subscribers")."""
    value = reason if isinstance(reason, int) else reason.value
    return value < FAILURE_REASON


@dataclass
class RelayStats:
    """Counters of the relay, readable from any thread."""

    connected: bool = False
    connects: int = 0
    published: int = 0
    acked: int = 0
    refused: int = 0
    inflight: int = 0
    session_present: bool = False
    last_error: str = ""
    connected_since: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able view."""
        return {
            "connected": self.connected,
            "connects": self.connects,
            "published": self.published,
            "acked": self.acked,
            "refused": self.refused,
            "inflight": self.inflight,
            "session_present": self.session_present,
            "last_error": self.last_error,
        }


@dataclass
class _Session:
    """State of one connection: a fresh paho client and a fresh mid map."""

    client: paho.Client
    started: float
    connected: bool = False
    connected_at: float | None = None  # monotonic time of the CONNACK
    failed: str = ""
    mid_to_seq: dict[int, int] = field(default_factory=dict)
    direct_mids: set[int] = field(default_factory=set)
    early: dict[int, ReasonCode] = field(default_factory=dict)
    publishing: bool = False  # inside client.publish(): a PUBACK now is "early"
    queued: int = 0  # messages published since the last write
    buffer: collections.deque[OutboxRow] = field(default_factory=collections.deque)
    fetch_after: int = 0
    exhausted: bool = False
    paused_until: float = 0.0


class MqttRelay:
    """Publishes the outbox to the broker and hands incoming messages to handlers."""

    def __init__(
        self,
        config: MqttConfig,
        outbox: Outbox,
        topics: Topics,
        *,
        client_id: str,
        birth: Callable[[], bytes],
        will: Callable[[], bytes],
        on_command: MessageHandler | None = None,
        on_catalog: MessageHandler | None = None,
        on_state: Callable[[bool, str], None] | None = None,
        subscribe_catalog: bool = True,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.topics = topics
        self.client_id = client_id
        self._birth = birth
        self._will = will
        self._on_command = on_command
        self._on_catalog = on_catalog
        self._on_state = on_state
        self._subscribe_catalog = subscribe_catalog
        self.v5 = config.protocol == "5"
        self.stats = RelayStats()
        self._tasks: queue.SimpleQueue[Callable[[_Session], None]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._acked: list[int] = []
        self._last_ack_flush = time.monotonic()
        self._rng = random.Random()
        self._event_topics: dict[str, str] = {}  # event type -> topic, built once
        outbox.add_listener(self._on_outbox_commit)

    # ------------------------------------------------------------ other threads
    def start(self) -> None:
        """Start the owner thread."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="mqtt-relay", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        """Publish ``offline``, disconnect cleanly and end the owner thread (bounded)."""
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                _LOGGER.error("MQTT relay thread did not stop within %.1f s", timeout)
            self._thread = None

    def close(self) -> None:
        """Release the wake-up sockets (after stop)."""
        self._wake_r.close()
        self._wake_w.close()

    @property
    def alive(self) -> bool:
        """True while the owner thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def publish_direct(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> None:
        """Publish a non-durable message (command reply, health) if connected, else drop it."""

        def task(session: _Session) -> None:
            if not session.connected:
                _LOGGER.debug("not connected: dropped message to %s", topic)
                return
            props = properties if self.v5 else None
            info = self._publish(session, topic, payload, qos=qos, retain=retain, props=props)
            if qos > 0:
                self._track_direct(session, info.mid)

        self._submit(task)

    def flush(self, timeout: float) -> bool:
        """Wait until the tasks queued so far (replies) have run on the owner thread.

        True once they have; False after ``timeout`` (not connected: tasks are dropped).
        """
        done = threading.Event()
        self._submit(lambda _session: done.set())
        return done.wait(timeout)

    def resync_catalog(self) -> None:
        """Subscribe to the retained catalog topics again: the broker resends every record."""

        def task(session: _Session) -> None:
            if session.connected and self._subscribe_catalog:
                session.client.unsubscribe(self.topics.catalog_filter)
                self._subscribe(session.client, catalog=True, commands=False)

        self._submit(task)

    def _submit(self, task: Callable[[_Session], None]) -> None:
        self._tasks.put(task)
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            self._wake_w.send(b"x")

    def _on_outbox_commit(self, _last_seq: int) -> None:
        self._wake()

    # ------------------------------------------------------------- owner thread
    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            session = self._connect()
            connected_s = 0.0
            if session is not None:
                connected_s = self._serve(session)
            if self._stop.is_set():
                break
            attempt = next_attempt(attempt, connected_s)
            delay = reconnect_delay(
                attempt, self.config.reconnect_min_s, self.config.reconnect_max_s, self._rng
            )
            _LOGGER.info("MQTT reconnect in %.1f s (attempt %d)", delay, attempt)
            self._idle(delay)
        self._drain_tasks(None)

    def _idle(self, delay: float) -> None:
        """Wait out a backoff delay; wakes early on stop, drops tasks that need a connection."""
        deadline = time.monotonic() + delay
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            with contextlib.suppress(OSError, ValueError):
                select.select([self._wake_r], [], [], left)
            self._clear_wake()
            self._drain_tasks(None)

    def _clear_wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while self._wake_r.recv(4096):
                pass

    def _drain_tasks(self, session: _Session | None) -> None:
        while True:
            try:
                task = self._tasks.get_nowait()
            except queue.Empty:
                return
            if session is None:
                continue
            try:
                task(session)
            except Exception:
                _LOGGER.exception("MQTT relay task failed")

    def _new_client(self) -> paho.Client:
        cfg = self.config
        if self.v5:
            client = paho.Client(
                callback_api_version=CallbackAPIVersion.VERSION2,
                client_id=self.client_id,
                protocol=paho.MQTTv5,
            )
        else:
            client = paho.Client(
                callback_api_version=CallbackAPIVersion.VERSION2,
                client_id=self.client_id,
                protocol=paho.MQTTv311,
                clean_session=False,
            )
        # The window is ours: paho must never hold back or queue on its own, even with the
        # birth message, command replies and health in flight beside a full window.
        client.max_inflight_messages_set(cfg.max_inflight + DIRECT_HEADROOM)
        client.max_queued_messages_set(0)
        client.connect_timeout = CONNACK_TIMEOUT_S
        # paho's hook for external event loops: with it set, publish() only queues the packet
        # (without it, every publish() is its own send() right away). The owner loop writes
        # the whole window at once when the socket is writable.
        client.on_socket_register_write = _ignore_register_write
        if cfg.username:
            client.username_pw_set(cfg.username, cfg.password or None)
        tls = cfg.tls
        if tls.enabled:
            client.tls_set(
                ca_certs=str(tls.ca_file) if tls.ca_file else None,
                certfile=str(tls.cert_file) if tls.cert_file else None,
                keyfile=str(tls.key_file) if tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
            client.tls_insecure_set(tls.insecure_skip_verify)
        will_props = None
        if self.v5:
            will_props = new_properties(PacketTypes.WILLMESSAGE)
            will_props.ContentType = "application/json"
        client.will_set(self.topics.status, self._will(), qos=1, retain=True, properties=will_props)
        return client

    def _connect(self) -> _Session | None:
        cfg = self.config
        try:
            client = self._new_client()
        except (OSError, ValueError, ssl.SSLError) as exc:
            self._report(False, f"TLS or client setup failed: {exc}")
            return None
        session = _Session(client=client, started=time.monotonic())
        client.on_connect = lambda c, u, flags, rc, props: self._handle_connect(
            session, flags, rc, props
        )
        client.on_disconnect = lambda c, u, flags, rc, props: self._handle_disconnect(session, rc)
        client.on_publish = lambda c, u, mid, rc, props: self._handle_puback(session, mid, rc)
        client.on_message = lambda c, u, msg: self._handle_message(msg)
        try:
            if self.v5:
                props = new_properties(PacketTypes.CONNECT)
                # Explicit: paho's default (0) ends the session with the connection, and then
                # session_present in the CONNACK means nothing (paho issue 877).
                props.SessionExpiryInterval = cfg.session_expiry_s
                client.connect(
                    cfg.host, cfg.port, cfg.keepalive_s, clean_start=False, properties=props
                )
            else:
                client.connect(cfg.host, cfg.port, cfg.keepalive_s)
        except (OSError, ssl.SSLError, ValueError) as exc:
            self._report(False, f"cannot reach broker {cfg.host}:{cfg.port}: {exc}")
            return None
        return session

    def _serve(self, session: _Session) -> float:
        """Run one connection until it ends; how long the broker had accepted it (0: never)."""
        client = session.client
        self._clear_wake()
        try:
            while not self._stop.is_set():
                self._drain_tasks(session)
                if session.failed:
                    break
                if session.connected:
                    self._fill_window(session)
                elif time.monotonic() - session.started > CONNACK_TIMEOUT_S:
                    self._report(False, "broker sent no CONNACK")
                    break
                sock = client.socket()
                if sock is None:
                    break
                busy = (
                    session.connected
                    and self._has_room(session)
                    and not session.exhausted
                    and not session.paused_until
                )
                timeout = 0.0 if busy else self._wait_time(session)
                if _ssl_pending(sock):
                    timeout = 0.0
                wlist = [sock] if client.want_write() else []
                try:
                    readable, writable, _ = select.select([sock, self._wake_r], wlist, [], timeout)
                except (OSError, ValueError):
                    break
                if self._wake_r in readable:
                    self._clear_wake()
                    session.exhausted = False
                rc = MQTTErrorCode.MQTT_ERR_SUCCESS
                if sock in readable or _ssl_pending(sock):
                    rc = client.loop_read()
                if rc == MQTTErrorCode.MQTT_ERR_SUCCESS and (
                    sock in writable or client.want_write()
                ):
                    rc = self._write(session, sock)
                if rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                    rc = client.loop_misc()
                self._flush_acks(force=False)
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    if not session.failed:
                        self._report(False, f"connection lost: {paho.error_string(rc)}")
                    break
            if self._stop.is_set() and session.connected:
                self._goodbye(session)
        except Exception as exc:  # a paho bug must not end the relay: reconnect instead
            _LOGGER.exception("MQTT session failed")
            self._report(False, f"{type(exc).__name__}: {exc}")
        finally:
            self._flush_acks(force=True)
            with contextlib.suppress(Exception):
                # Back to paho's default so the DISCONNECT is written at once (a clean
                # DISCONNECT is what keeps the broker from publishing the Last Will).
                client.on_socket_register_write = None
                client.disconnect()
            with contextlib.suppress(Exception):
                sock = client.socket()
                if sock is not None:
                    sock.close()
            self.stats.connected = False
            self.stats.inflight = 0
        if session.connected_at is None:
            return 0.0
        return time.monotonic() - session.connected_at

    def _write(self, session: _Session, sock: Any) -> MQTTErrorCode:
        """``loop_write``; a window of packets goes out corked, as full TCP segments rather
        than one segment (and one broker wake-up) per message."""
        queued, session.queued = session.queued, 0
        if queued < CORK_MIN_PACKETS or not _CORK:
            return session.client.loop_write()
        try:
            sock.setsockopt(socket.IPPROTO_TCP, _CORK, 1)
        except (OSError, AttributeError):
            return session.client.loop_write()
        try:
            return session.client.loop_write()
        finally:
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_TCP, _CORK, 0)  # uncorking sends the rest now

    def _wait_time(self, session: _Session) -> float:
        wait = IDLE_WAIT_S
        if self._acked:
            wait = min(wait, ACK_FLUSH_S)
        if session.paused_until:
            wait = min(wait, max(0.0, session.paused_until - time.monotonic()))
        return wait

    def _goodbye(self, session: _Session) -> None:
        """Say ``offline`` ourselves (a clean DISCONNECT suppresses the Last Will)."""
        info = session.client.publish(self.topics.status, self._will(), qos=1, retain=True)
        deadline = time.monotonic() + STOP_FLUSH_S
        while not info.is_published() and time.monotonic() < deadline:
            session.client.loop_write()  # publish() only queued it (see _new_client)
            rc = session.client.loop_read() if self._readable(session, 0.05) else 0
            if rc:
                break

    def _readable(self, session: _Session, timeout: float) -> bool:
        sock = session.client.socket()
        if sock is None:
            return False
        readable, _, _ = select.select([sock], [], [], timeout)
        return bool(readable)

    # --------------------------------------------------------------- callbacks
    def _handle_connect(self, session: _Session, flags: Any, rc: ReasonCode, _props: Any) -> None:
        if rc.is_failure:
            session.failed = f"broker refused the connection: {rc}"
            self._report(False, session.failed)
            return
        session.connected = True
        session.connected_at = time.monotonic()
        present = bool(getattr(flags, "session_present", False))
        self.stats.session_present = present
        self.stats.connects += 1
        self.stats.connected = True
        self.stats.connected_since = time.time()
        _LOGGER.info(
            "MQTT connected to %s:%d (session %s)",
            self.config.host,
            self.config.port,
            "resumed" if present else "new",
        )
        client = session.client
        props = None
        if self.v5:
            props = json_publish_properties()
        info = self._publish(
            session, self.topics.status, self._birth(), qos=1, retain=True, props=props
        )
        self._track_direct(session, info.mid)
        # Always subscribe: a resumed session keeps subscriptions, but subscribing again is
        # harmless and the full retained catalog is resent, so changes made while the
        # broker's offline queue overflowed are never missed.
        self._subscribe(client, catalog=self._subscribe_catalog, commands=True)
        # Everything still in the outbox is unacknowledged: resend it from the start, in order.
        session.buffer.clear()
        session.fetch_after = 0
        session.exhausted = False
        self._report(True, "")

    def _subscribe(self, client: paho.Client, *, catalog: bool, commands: bool) -> None:
        if self.v5:
            subs: list[tuple[str, SubscribeOptions]] = []
            if commands:
                # retainHandling 2: a retained command is never replayed on connect.
                opts = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)
                subs += [(f, opts) for f in self.topics.command_filters()]
            if catalog:
                opts = SubscribeOptions(
                    qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_ON_SUBSCRIBE
                )
                subs.append((self.topics.catalog_filter, opts))
            if subs:
                client.subscribe(subs)
        else:
            subs311: list[tuple[str, int]] = []
            if commands:
                subs311 += [(f, 1) for f in self.topics.command_filters()]
            if catalog:
                subs311.append((self.topics.catalog_filter, 1))
            if subs311:
                client.subscribe(subs311)

    def _handle_disconnect(self, session: _Session, rc: ReasonCode) -> None:
        was = session.connected
        session.connected = False
        if was and not self._stop.is_set():
            session.failed = f"disconnected: {rc}"
            self._report(False, session.failed)

    def _handle_message(self, msg: paho.MQTTMessage) -> None:
        topic = msg.topic
        try:
            if self._on_catalog is not None and self.topics.catalog_key(topic) is not None:
                self._on_catalog(topic, bytes(msg.payload), msg.properties, msg.retain)
            elif self._on_command is not None and self.topics.command_name(topic) is not None:
                self._on_command(topic, bytes(msg.payload), msg.properties, msg.retain)
            else:
                _LOGGER.debug("ignored message on %s", topic)
        except Exception:
            _LOGGER.exception("handler failed for a message on %s", topic)

    def _publish(
        self,
        session: _Session,
        topic: str,
        payload: bytes,
        *,
        qos: int,
        retain: bool,
        props: Properties | None,
    ) -> paho.MQTTMessageInfo:
        """``client.publish`` with PUBACKs that arrive before it returns set aside (issue 361)."""
        session.publishing = True
        session.queued += 1
        try:
            return session.client.publish(topic, payload, qos=qos, retain=retain, properties=props)
        finally:
            session.publishing = False

    def _track_direct(self, session: _Session, mid: int) -> None:
        if session.early.pop(mid, None) is None:
            session.direct_mids.add(mid)

    def _handle_puback(self, session: _Session, mid: int, rc: ReasonCode) -> None:
        seq = session.mid_to_seq.pop(mid, None)
        if seq is None:
            if mid in session.direct_mids:
                session.direct_mids.discard(mid)
            elif session.publishing:
                # PUBACK before publish() returned (paho issue 361): settled right after.
                session.early[mid] = rc
            else:
                _LOGGER.debug("PUBACK for unknown mid %d ignored", mid)
            return
        self._settle(session, seq, rc)

    def _settle(self, session: _Session, seq: int, rc: ReasonCode) -> None:
        self.stats.inflight = len(session.mid_to_seq)
        if is_success(rc):
            self._acked.append(seq)
            self.stats.acked += 1
            if len(self._acked) >= ACK_BATCH:
                self._flush_acks(force=True)
            return
        # The broker refused it: keep the row, pause, then resend from the oldest unacked.
        self.stats.refused += 1
        self.stats.last_error = f"broker refused event {seq}: {rc}"
        _LOGGER.warning("broker refused outbox event %d (%s); pausing the relay", seq, rc)
        pause = max(REFUSAL_PAUSE_MIN_S, self.config.reconnect_min_s)
        session.paused_until = time.monotonic() + pause
        session.buffer.clear()
        self._report(True, f"broker refused events ({rc}); retrying in {pause:.0f} s")

    def _flush_acks(self, *, force: bool) -> None:
        if not self._acked:
            return
        now = time.monotonic()
        if not force and len(self._acked) < ACK_BATCH and now - self._last_ack_flush < ACK_FLUSH_S:
            return
        acked, self._acked = self._acked, []
        self._last_ack_flush = now
        try:
            self.outbox.delete(acked)
        except Exception:
            # Not deleting only means a redelivery (same event id) later: never a loss.
            _LOGGER.exception("could not delete %d acknowledged outbox rows", len(acked))

    # --------------------------------------------------------------- the window
    def _has_room(self, session: _Session) -> bool:
        return len(session.mid_to_seq) < self.config.max_inflight

    def _fill_window(self, session: _Session) -> None:
        if session.paused_until:
            if time.monotonic() < session.paused_until or session.mid_to_seq:
                return
            # Everything in flight is settled: resend from the oldest unacknowledged row.
            session.paused_until = 0.0
            self._flush_acks(force=True)
            session.buffer.clear()
            session.fetch_after = 0
            session.exhausted = False
            self._report(True, "")
        while self._has_room(session):
            if not session.buffer:
                if session.exhausted:
                    return
                rows = self.outbox.fetch(session.fetch_after, FETCH_CHUNK)
                if not rows:
                    session.exhausted = True
                    return
                session.buffer.extend(rows)
                session.fetch_after = rows[-1].seq
            row = session.buffer.popleft()
            props = self._properties(row) if self.v5 else None
            topic = self._event_topics.get(row.type)
            if topic is None:
                topic = self._event_topics[row.type] = self.topics.event(row.type)
            info = self._publish(session, topic, row.payload, qos=1, retain=False, props=props)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                # Not sent (connection just dropped): resend from the oldest unacked later.
                session.buffer.appendleft(row)
                session.failed = f"publish failed: {paho.error_string(info.rc)}"
                return
            self.stats.published += 1
            early = session.early.pop(info.mid, None)
            if early is not None:
                self._settle(session, row.seq, early)
            else:
                session.mid_to_seq[info.mid] = row.seq
        self.stats.inflight = len(session.mid_to_seq)

    def _properties(self, row: OutboxRow) -> Properties:
        expiry = None if row.expires is None else max(1, int(row.expires - time.time()))
        return PackedProperties(pack_event_properties(row.id, row.type, row.seq, expiry))

    def _report(self, connected: bool, reason: str) -> None:
        if reason:
            self.stats.last_error = reason
            _LOGGER.warning("MQTT relay: %s", reason)
        if self._on_state is not None:
            try:
                self._on_state(connected, reason)
            except Exception:
                _LOGGER.exception("relay state callback failed")


def try_connect(
    cfg: MqttConfig, client_id: str, tls: ssl.SSLContext | None, timeout: float
) -> tuple[bool, str]:
    """One CONNECT with these credentials (for `kiosk-edge doctor`): accepted?, and why.

    A throw-away client (never the relay's session); ``tls`` is the caller's context, so the
    doctor can load credentials from where a shell reads them.
    """
    protocol = paho.MQTTv5 if cfg.protocol == "5" else paho.MQTTv311
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    if cfg.username:
        client.username_pw_set(cfg.username, cfg.password or None)
    if tls is not None:
        client.tls_set_context(tls)
        if cfg.tls.insecure_skip_verify:
            client.tls_insecure_set(True)
    done = threading.Event()
    result: dict[str, Any] = {}

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any = None) -> None:
        result["failure"] = bool(reason.is_failure)
        result["reason"] = str(reason)
        done.set()

    def on_disconnect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any = None) -> None:
        result.setdefault("failure", True)
        result.setdefault("reason", f"disconnected: {reason}")
        done.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    try:
        client.connect(cfg.host, cfg.port, keepalive=max(5, int(timeout) * 2))
    except (OSError, ssl.SSLError) as exc:
        return False, (str(exc) or type(exc).__name__).splitlines()[0][:200]
    client.loop_start()
    try:
        if not done.wait(timeout):
            return False, f"no CONNACK within {timeout:g} s"
    finally:
        with contextlib.suppress(Exception):
            client.disconnect()
        client.loop_stop()
    if result.get("failure"):
        return False, str(result.get("reason"))
    return True, f"MQTT {cfg.protocol} CONNECT accepted ({result.get('reason')})"
