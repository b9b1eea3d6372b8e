"""The whole daemon running in a background thread, for tests that need its services."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from edge.config import Config
from edge.daemon import Daemon
from edge.services import Services


class InProcessDaemon:
    """Start `kiosk-edge run` in-process on its own loop thread; stop it on exit.

    Use as a context manager; `services` gives the live bus, health, catalog and so on,
    `base_url` the kiosk UI (the port the kiosk actually bound).
    """

    def __init__(
        self,
        config_path: Path,
        start_timeout: float = 20.0,
        on_services: Callable[[Services], None] | None = None,
    ) -> None:
        self.config_path = config_path
        self.start_timeout = start_timeout
        self.daemon = Daemon(config_path, handle_signals=False, on_services=on_services)
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self.exit_code: int | None = None

    @property
    def services(self) -> Services:
        """The running daemon's services."""
        assert self.daemon.services is not None, "daemon not started"
        return self.daemon.services

    @property
    def config(self) -> Config:
        """The effective configuration."""
        return self.services.config

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT of the kiosk UI."""
        cfg = self.config.kiosk
        return f"http://{cfg.host}:{cfg.port}"

    def _main(self) -> None:
        async def body() -> None:
            try:
                await self.daemon.async_start()
            except BaseException as exc:
                self._error = exc
                self._started.set()
                raise
            self._started.set()
            self.exit_code = await self.daemon.async_wait()

        try:
            asyncio.run(body())
        except BaseException as exc:  # reported by start()
            if self._error is None:
                self._error = exc

    def start(self) -> InProcessDaemon:
        """Start and wait until the daemon reports ready."""
        self._thread = threading.Thread(target=self._main, name="daemon", daemon=True)
        self._thread.start()
        if not self._started.wait(self.start_timeout):
            raise TimeoutError("the daemon did not start in time")
        if self._error is not None:
            raise RuntimeError("the daemon failed to start") from self._error
        return self

    def run_on_loop(self, func: object, *args: object) -> None:
        """Call a function on the daemon's loop thread (e.g. bus.publish)."""
        loop = self.services.loop
        assert loop is not None
        loop.call_soon_threadsafe(func, *args)  # type: ignore[arg-type]

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the daemon and wait for its thread."""
        self.daemon.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError("the daemon did not stop in time")

    def __enter__(self) -> InProcessDaemon:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
