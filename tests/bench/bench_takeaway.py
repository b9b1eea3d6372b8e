"""Take-away figures: rendering a 4-product receipt, and printing it to a loopback printer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from edge.bus import Bus
from edge.catalog.models import product_from_dict
from edge.config import Config
from edge.health import Health
from edge.services import Services
from edge.takeaway.printer import build_print_queue, deliver
from edge.takeaway.printer_url import PrinterTarget
from edge.takeaway.receipt import ReceiptContext, render_comparison
from tests.bench import Figure
from tests.conftest import free_port
from tests.support.printer_listener import PrinterListener

CATALOG = Path(__file__).resolve().parent.parent / "data" / "receipts" / "comparison.json"
RENDER_RUNS = 200
PRINT_RUNS = 100
QUEUE_RUNS = 30


def _receipt() -> bytes:
    products = [product_from_dict(d) for d in json.loads(CATALOG.read_text(encoding="utf-8"))]
    ctx = ReceiptContext(
        "Magasin Démo",
        "kiosk-1",
        datetime.now().astimezone(),
        "https://shop.example/compare?skus=TV-001,TV-002,TV-003,TV-004",
        "fr",
        48,
    )
    return render_comparison(products, ctx)


def _render_ms() -> float:
    """Median render time with a new link each run (the QR code is not in the cache)."""
    products = [product_from_dict(d) for d in json.loads(CATALOG.read_text(encoding="utf-8"))]

    def ctx(n: int) -> ReceiptContext:
        url = f"https://shop.example/compare?skus=TV-001,TV-002,TV-003,TV-{n:04d}"
        return ReceiptContext("Magasin Démo", "kiosk-1", datetime.now().astimezone(), url, "fr", 48)

    render_comparison(products, ctx(-1 % 10000))  # warm code page maps and profiles
    times = []
    for n in range(RENDER_RUNS):
        context = ctx(n)
        start = time.perf_counter()
        render_comparison(products, context)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _print_to_ack_ms(port: int, data: bytes) -> float:
    """Connect, read status, send the receipt, until the status asked after it is answered."""
    target = PrinterTarget("tcp", host="127.0.0.1", port=port)
    times = []
    for _ in range(PRINT_RUNS):
        start = time.perf_counter()
        deliver(target, data, timeout=3.0, status_query=True)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _queue_ms(port: int, data: bytes) -> float:
    """Submit to the durable queue (SQLite, synchronous=FULL) until the job is printed."""

    async def body(folder: Path) -> float:
        config = Config()
        config.device.data_dir = folder
        config.printer.url = f"tcp://127.0.0.1:{port}"
        services = Services(config=config, bus=Bus(), health=Health(), salt="s")
        loop = asyncio.get_running_loop()
        services.loop = loop
        services.bus.bind(loop)
        queue = build_print_queue(services)
        assert queue is not None
        task = asyncio.create_task(queue.run())
        times = []
        try:
            for _ in range(QUEUE_RUNS):
                start = time.perf_counter()
                job = queue.submit(data)
                while (state := queue.job(job)) is None or state.state != "printed":
                    await asyncio.sleep(0.0005)
                times.append((time.perf_counter() - start) * 1000)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            queue.close()
        return statistics.median(times)

    with tempfile.TemporaryDirectory() as folder:
        return asyncio.run(body(Path(folder)))


def run() -> Iterator[Figure]:
    """takeaway.render_ms, takeaway.print_to_ack_ms and takeaway.queue_to_printed_ms."""
    yield Figure("takeaway.render_ms", _render_ms(), "ms", target="< 20")
    data = _receipt()
    port = free_port()
    listener = PrinterListener(port).start()
    try:
        yield Figure("takeaway.print_to_ack_ms", _print_to_ack_ms(port, data), "ms", target="< 100")
        yield Figure("takeaway.queue_to_printed_ms", _queue_ms(port, data), "ms")
    finally:
        listener.stop()
