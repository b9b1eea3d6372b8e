"""A real USB receipt printer (opt-in: -m hardware and KIOSK_EDGE_USB_PRINTER=usb://VID:PID)."""

from __future__ import annotations

import os
from datetime import datetime

import pytest

from edge.takeaway.printer import deliver
from edge.takeaway.printer_url import parse_printer_url
from edge.takeaway.receipt import ReceiptContext, render_test_page

pytestmark = pytest.mark.hardware


def test_usb_printer_prints_the_test_page() -> None:
    """The test page reaches a USB printer after a status check (needs paper and a person)."""
    url = os.environ.get("KIOSK_EDGE_USB_PRINTER")
    if not url:
        pytest.skip("set KIOSK_EDGE_USB_PRINTER=usb://VID:PID to test a real USB printer")
    target = parse_printer_url(url)
    ctx = ReceiptContext(
        "kiosk-edge", "usb-test", datetime.now().astimezone(), "https://s.example/t"
    )
    deliver(target, render_test_page(ctx), timeout=5.0, status_query=True)
