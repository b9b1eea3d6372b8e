"""The kiosk UI served by waitress in a thread of the daemon, as a supervised component."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any, Final

from waitress.server import create_server

from edge.services import Services
from kiosk_ui import create_app

_LOGGER = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]

# Requests computed at once (live event streams, which mostly wait, are not counted). Python
# runs one thread at a time; with more requests in flight than about twice the cores, threads
# only hand the interpreter lock to each other and the slowest answers wait longest (32 wrk
# clients, 2 shared cores, product page p95: 22-33 ms with 4 at once, 41-50 ms unlimited).
ACTIVE_REQUESTS: Final = 4
# Paths passed straight through: the live stream runs for minutes and must never wait behind
# the limit; files (static, product images) are handed to waitress's file sender, not read.
UNLIMITED_PATHS: Final = ("/api/events", "/static/", "/media/")


class AdmissionLimit:
    """WSGI middleware: at most ``limit`` requests computed at once; the others wait their turn.

    The waitress threads stay free for live event streams (which bypass the limit), while
    ordinary requests no longer all contend for the interpreter at the same time.
    """

    def __init__(self, app: WSGIApp, limit: int = ACTIVE_REQUESTS) -> None:
        self.app = app
        self._slots = threading.BoundedSemaphore(limit)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """Run the app in a slot; the body is produced before the slot is given back."""
        if environ.get("PATH_INFO", "").startswith(UNLIMITED_PATHS):
            return self.app(environ, start_response)
        with self._slots:
            result = self.app(environ, start_response)
            # Flask answers are bodies already computed; a generator would be drained here.
            try:
                body = list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        return body


class WebServer:
    """Serves the kiosk app on the configured host and port until cancelled."""

    name = "kiosk"

    def __init__(self, services: Services) -> None:
        self.services = services
        self.bound_port: int | None = None

    async def run(self) -> None:
        """Bind, serve in a thread, report ok; close the server when cancelled."""
        cfg = self.services.config.kiosk
        app = create_app(self.services)
        server: Any = create_server(
            AdmissionLimit(app),
            host=cfg.host,
            port=cfg.port,
            threads=cfg.threads,
            ident="kiosk-edge",
            # Answer quickly on shutdown; the default 1 s poll would delay SIGTERM handling.
            asyncore_loop_timeout=0.2,
            channel_timeout=30,
            clear_untrusted_proxy_headers=True,
        )
        # Send every write at once: waitress otherwise holds a running response's output until
        # 18 kB have accumulated, which would stall the live event stream (SSE). Set on the
        # adjustments object because the send_bytes keyword is deprecated in waitress 3.
        server.adj.send_bytes = 1
        self.bound_port = int(server.effective_port)
        finished = threading.Event()
        closing = threading.Event()

        def serve() -> None:
            try:
                server.run()
            except Exception:  # waitress re-raises socket errors after closing
                if closing.is_set():  # our own close() pulled the socket from under select()
                    _LOGGER.debug("web server loop ended while closing", exc_info=True)
                else:
                    _LOGGER.exception("web server stopped with an error")
            finally:
                finished.set()

        thread = threading.Thread(target=serve, name="waitress", daemon=True)
        thread.start()
        _LOGGER.info("kiosk UI on http://%s:%s/", server.effective_host, self.bound_port)
        self.services.health.set(self.name, "ok")
        self.services.health.metric(self.name, "url", f"http://{cfg.host}:{self.bound_port}/")
        try:
            while not finished.is_set():
                await asyncio.sleep(0.5)
            raise RuntimeError("the web server thread ended")
        finally:
            closing.set()
            await asyncio.get_running_loop().run_in_executor(None, self._close, server, thread)

    @staticmethod
    def _close(server: Any, thread: threading.Thread) -> None:
        from waitress import wasyncore

        # Stop accepting, let requests in progress finish (their writes still need the
        # server's loop and its wake-up pipe), then close every channel: closing first made
        # each in-flight request fail with a "Bad file descriptor" traceback.
        with contextlib.suppress(Exception):
            wasyncore.dispatcher.close(server)  # the listening socket only, not the pipe
        with contextlib.suppress(Exception):
            server.task_dispatcher.shutdown(cancel_pending=True, timeout=2)
        with contextlib.suppress(Exception):
            server.close()  # the wake-up pipe (closing the socket twice is harmless)
        with contextlib.suppress(Exception):
            wasyncore.close_all(server._map)
        thread.join(timeout=2)
