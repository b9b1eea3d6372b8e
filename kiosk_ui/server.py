"""The kiosk UI served by waitress in a thread of the daemon, as a supervised component."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

from waitress.server import create_server

from edge.services import Services
from kiosk_ui import create_app

_LOGGER = logging.getLogger(__name__)


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
            app,
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

        with contextlib.suppress(Exception):
            server.close()
        with contextlib.suppress(Exception):
            wasyncore.close_all(server._map)
        with contextlib.suppress(Exception):
            server.task_dispatcher.shutdown(cancel_pending=True, timeout=2)
        thread.join(timeout=2)
