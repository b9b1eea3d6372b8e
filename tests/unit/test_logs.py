"""Logs: JSON under the journal, text on a terminal, an in-memory ring, no personal data."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from edge.logs import RING, RingBufferHandler, recent_logs, scrub, setup_logging

SHOPPER_LINE = (
    "phone AA:BB:CC:DD:EE:01 at kiosk, mail camille.martin@mail.example.fr, "
    "card 2900001234566, product 3760000000017"
)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    RING.clear()
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


def test_scrub_keeps_products_and_hashes() -> None:
    """MACs, e-mails, loyalty cards (GS1 prefix 2x) go; product EANs, hashes, times stay."""
    cleaned = scrub(SHOPPER_LINE + " hash 49698d7f90c7344b7552e55142b73e35 at 12:30:45")
    assert "AA:BB" not in cleaned
    assert "camille" not in cleaned
    assert "2900001234566" not in cleaned
    assert "<mac>" in cleaned
    assert "<email>" in cleaned
    assert "<card>" in cleaned
    assert "3760000000017" in cleaned
    assert "49698d7f90c7344b7552e55142b73e35" in cleaned
    assert "12:30:45" in cleaned
    assert scrub("pan 4111111111111111") == "pan <number>"


def test_json_under_the_journal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With JOURNAL_STREAM set, each line is one JSON object with extras, personal data gone."""
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    setup_logging("INFO", "auto")
    logging.getLogger("edge.test").info("seen %s", SHOPPER_LINE, extra={"zone": "near"})
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["level"] == "INFO"
    assert record["logger"] == "edge.test"
    assert record["zone"] == "near"
    assert "AA:BB:CC" not in line
    assert "camille" not in line
    assert "3760000000017" in record["message"]


def test_text_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the journal, readable text; still scrubbed."""
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    setup_logging("INFO", "auto")
    logging.getLogger("edge.test").warning("mail to %s failed", "jean@shop.example")
    err = capsys.readouterr().err
    assert "WARNING edge.test: mail to <email> failed" in err
    with pytest.raises(json.JSONDecodeError):
        json.loads(err.strip().splitlines()[-1])


def test_exceptions_are_scrubbed(capsys: pytest.CaptureFixture[str]) -> None:
    """A traceback quoting a card number does not leak it."""
    setup_logging("INFO", "json")
    try:
        raise ValueError("bad card 2900001234566")
    except ValueError:
        logging.getLogger("edge.test").exception("lookup failed")
    err = capsys.readouterr().err
    assert "2900001234566" not in err
    assert "<card>" in err
    assert "2900001234566" not in json.dumps(recent_logs())


def test_ring_buffer_keeps_the_last_records() -> None:
    """The ring keeps the newest records up to its capacity, oldest first, scrubbed."""
    ring = RingBufferHandler(capacity=3)
    logger = logging.getLogger("edge.ringtest")
    logger.addHandler(ring)
    logger.setLevel(logging.INFO)
    try:
        for i in range(5):
            logger.info("event %d from %s", i, "11:22:33:44:55:66")
    finally:
        logger.removeHandler(ring)
    records = ring.records()
    assert [r["message"] for r in records] == [f"event {i} from <mac>" for i in (2, 3, 4)]
    assert ring.records(1)[0]["message"] == "event 4 from <mac>"


def test_setup_logging_feeds_the_shared_ring(capsys: pytest.CaptureFixture[str]) -> None:
    """After setup_logging, recent_logs() returns what the process logged."""
    setup_logging("INFO", "text")
    logging.getLogger("edge.test").info("component %s ok", "beacons")
    assert recent_logs(1)[0]["message"] == "component beacons ok"


def test_structured_extras_are_scrubbed_too(capsys: pytest.CaptureFixture[str]) -> None:
    """A dict passed as an extra field cannot smuggle a MAC or an e-mail into the journal."""
    setup_logging("INFO", "json")
    logging.getLogger("edge.test").info(
        "scan", extra={"device": {"address": "AA:BB:CC:DD:EE:02", "mail": "x@y.example"}}
    )
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "AA:BB" not in line
    assert "x@y.example" not in line
    assert "<mac>" in json.loads(line)["device"]
