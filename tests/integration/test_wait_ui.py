"""`kiosk-edge wait-ui`: the browser unit starts Chromium once the kiosk UI answers, not after
a guessed sleep."""

from __future__ import annotations

import http.server
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import KIOSK_EDGE, ConfigWriter, free_port


class Degraded(http.server.BaseHTTPRequestHandler):
    """Answers /api/healthz with 503, as a kiosk with a component down does."""

    def do_GET(self) -> None:
        body = b'{"status": "degraded", "components": {}}'
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def late_server() -> Iterator[tuple[int, threading.Event]]:
    """An HTTP server that starts listening 1.5 s from now."""
    port = free_port()
    started = threading.Event()
    box: dict[str, http.server.HTTPServer] = {}

    def serve() -> None:
        time.sleep(1.5)
        server = http.server.HTTPServer(("127.0.0.1", port), Degraded)
        box["server"] = server
        started.set()
        server.serve_forever(poll_interval=0.1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port, started
    started.wait(5)
    if "server" in box:
        box["server"].shutdown()
        box["server"].server_close()
    thread.join(5)


def test_waits_until_the_ui_answers(
    write_config: ConfigWriter, cli_env: dict[str, str], late_server: tuple[int, threading.Event]
) -> None:
    """Exit 0 only after the UI answers (even 503 degraded counts: the screen should show it)."""
    port, started = late_server
    config = write_config(kiosk={"port": port})
    begin = time.monotonic()
    proc = subprocess.run(
        [*KIOSK_EDGE, "wait-ui", "--timeout", "20", "--config", str(config)],
        capture_output=True, text=True, env=cli_env, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert started.is_set()
    assert time.monotonic() - begin >= 1.4


def test_gives_up_after_the_timeout(write_config: ConfigWriter, cli_env: dict[str, str]) -> None:
    """Nothing answering: exit 1 with a sentence naming the URL and what to check."""
    config = write_config(kiosk={"port": free_port()})
    proc = subprocess.run(
        [*KIOSK_EDGE, "wait-ui", "--timeout", "1", "--config", str(config)],
        capture_output=True, text=True, env=cli_env, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "did not answer" in proc.stderr
    assert "systemctl status kiosk-edge" in proc.stderr
