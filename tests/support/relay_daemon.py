"""`kiosk-edge run` plus a burst of events, as a subprocess the relay tests can kill -9.

Usage: python -m tests.support.relay_daemon CONFIG N
Runs the real daemon (every configured component, the relay included) with one extra
component that publishes N ``kiosk.search`` events on the bus as fast as the loop allows,
then idles. The events enter the outbox exactly as any source's would.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from edge import daemon
from edge.events import new_event
from edge.services import Services

# Yield to the loop every this many events, so the daemon stays responsive mid-burst.
YIELD_EVERY = 50


class Burst:
    """Publishes ``count`` events on the bus, then waits to be cancelled."""

    name = "burst"

    def __init__(self, services: Services, count: int) -> None:
        self.services = services
        self.count = count

    async def run(self) -> None:
        """Publish the burst, then idle."""
        self.services.health.set(self.name, "ok")
        for i in range(self.count):
            data = {"query": f"burst {i}", "category": None, "results": 0, "session_id": ""}
            self.services.bus.publish(new_event("kiosk.search", data))
            if i % YIELD_EVERY == 0:
                await asyncio.sleep(0.002)
        while True:
            await asyncio.sleep(3600)


def main(argv: list[str]) -> int:
    """Run the daemon with the burst component added."""
    config, count = Path(argv[0]), int(argv[1])
    daemon.COMPONENT_FACTORIES.append(("burst", lambda services: Burst(services, count)))
    return daemon.run(config)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
