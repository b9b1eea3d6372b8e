"""Store IT figures: how long the doctor takes, what log scrubbing costs, how slow a password
guess is, and how long provisioning and its idempotent rerun take.

- doctor: the daemon's periodic local checks (clock, disk, temperature, throttling), and the
  full `kiosk-edge doctor` against a loopback Mosquitto with TLS and password auth plus a
  network printer listener (what store IT waits for).
- logs: JSON lines per second through the personal-data filter, beside the same JsonFormatter
  without the filter (the cost of never logging a MAC, e-mail or card number).
- admin: one password check with the scrypt hash `kiosk-edge provision` writes, beside
  werkzeug's pbkdf2 default (slow is the point: it bounds guessing with the lockout).
- provision: a first run into an empty image root, and the rerun that must change nothing.
"""

from __future__ import annotations

import io
import logging
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Final

from tests.bench import Figure

LOG_LINES: Final = 20_000
DOCTOR_LOCAL_RUNS: Final = 50
DOCTOR_FULL_RUNS: Final = 5
PASSWORD_RUNS: Final = 5
SHOPPER_MESSAGE: Final = "phone %s near beacon %s, loyalty %s, product %s"
SHOPPER_ARGS: Final = ("AA:BB:CC:DD:EE:01", "f7826da6:1:2", "2900001234566", "3760000000017")


def _median_ms(func: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _log_rate(with_filter: bool) -> float:
    from edge.logs import JsonFormatter, PersonalDataFilter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    if with_filter:
        handler.addFilter(PersonalDataFilter())
    logger = logging.getLogger(f"bench.logs.{with_filter}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        start = time.perf_counter()
        for _ in range(LOG_LINES):
            logger.info(SHOPPER_MESSAGE, *SHOPPER_ARGS)
        elapsed = time.perf_counter() - start
    finally:
        logger.removeHandler(handler)
    if with_filter:
        assert "AA:BB" not in stream.getvalue()
    return LOG_LINES / elapsed


def _doctor_figures(tmp: Path) -> Iterator[Figure]:
    import subprocess

    from edge.config import Config
    from edge.doctor_probes import run_checks, system_checks
    from tests.conftest import free_port
    from tests.integration.test_doctor import PASSWORD, USER, make_server_pki, wait_listening
    from tests.support.mosquitto import Mosquitto
    from tests.support.printer_listener import PrinterListener

    config = Config()
    config.device.data_dir = tmp / "data"
    yield Figure(
        "storeit.doctor_local_checks",
        _median_ms(lambda: system_checks(config), DOCTOR_LOCAL_RUNS),
        "ms",
        target="< 50",
    )
    pki = make_server_pki(tmp / "pki", 90)
    passwd = tmp / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-c", "-b", str(passwd), USER, PASSWORD], check=True, timeout=30
    )
    port = free_port()
    extra = (
        f"allow_anonymous false\npassword_file {passwd}\nlistener {port} 127.0.0.1\n"
        f"certfile {pki['cert']}\nkeyfile {pki['key']}"
    )
    printer_port = free_port()
    with Mosquitto(tmp, extra_config=extra, name="bench-broker"):
        wait_listening(port)
        printer = PrinterListener(printer_port, "ok").start()
        try:
            m = config.mqtt
            m.host, m.port, m.username, m.password = "127.0.0.1", port, USER, PASSWORD
            m.tls.enabled, m.tls.ca_file = True, pki["ca"]
            config.printer.url = f"tcp://127.0.0.1:{printer_port}"
            config.beacons.enabled = config.barcodes.enabled = False
            results = run_checks(config)
            assert all(r.status != "fail" for r in results), results
            yield Figure(
                "storeit.doctor_full_loopback",
                _median_ms(lambda: run_checks(config), DOCTOR_FULL_RUNS),
                "ms",
                target="< 5000",
            )
        finally:
            printer.stop()


def _password_figure() -> Figure:
    from werkzeug.security import generate_password_hash

    from kiosk_ui.admin_auth import verify_password

    scrypt = generate_password_hash("store-it-password")  # what provision writes
    pbkdf2 = generate_password_hash("store-it-password", "pbkdf2")
    return Figure(
        "storeit.admin_password_check_scrypt",
        _median_ms(lambda: verify_password(scrypt, "wrong-guess"), PASSWORD_RUNS),
        "ms",
        peer_name="werkzeug_pbkdf2_600k",
        peer_value=_median_ms(lambda: verify_password(pbkdf2, "wrong-guess"), PASSWORD_RUNS),
        target=">= 20",
    )


def _provision_figures(tmp: Path) -> Iterator[Figure]:
    from edge.provision import main

    root = tmp / "image"
    (root / "boot/firmware").mkdir(parents=True)
    (root / "boot/firmware/cmdline.txt").write_text("console=tty1 root=PARTUUID=1-02 rootwait\n")
    args = ["--store", "s1", "--device", "k1", "--broker", "mqtts://broker.example:8883"]
    args += ["--root", str(root)]
    sink = io.StringIO()
    with redirect_stdout(sink):
        start = time.perf_counter()
        assert main(args) == 0
        first = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        assert main(args) == 0
        rerun = (time.perf_counter() - start) * 1000
    assert "nothing to change" in sink.getvalue()
    yield Figure("storeit.provision_first_run", first, "ms", target="< 5000")
    yield Figure("storeit.provision_idempotent_rerun", rerun, "ms", target="< 2000")


def run() -> Iterator[Figure]:
    """Measure and yield the store IT figures."""
    with tempfile.TemporaryDirectory(prefix="bench-storeit-") as folder:
        tmp = Path(folder)
        yield from _doctor_figures(tmp)
        yield Figure(
            "storeit.log_json_lines_scrubbed",
            _log_rate(True),
            "lines/s",
            peer_name="json_unscrubbed",
            peer_value=_log_rate(False),
            target=">= 20000",
        )
        yield _password_figure()
        yield from _provision_figures(tmp)
