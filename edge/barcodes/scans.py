"""From a decoded text to a scan event: classify, validate, suppress repeats, hash loyalty.

The camera's decode worker and the USB scanner reader both hand every read here, so a card
shown to the camera and swiped on the scanner at once is still one scan. Loyalty numbers are
hashed here and never leave this object: events carry only the salted hash.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from edge.barcodes.loyalty import Classified, DuplicateFilter, PatternLike, classify
from edge.events import Event, new_event
from edge.privacy import hash_identifier

_LOGGER = logging.getLogger(__name__)

LOYALTY_EVENT: Final = "kiosk.loyalty.scan"
PRODUCT_EVENT: Final = "kiosk.product.scan"
# The hash namespace of loyalty numbers (shared with the session and central).
LOYALTY_HASH_KIND: Final = "loyalty"


def scan_event(result: Classified, salt: str, source: str, symbology: str) -> Event | None:
    """The event for a valid loyalty or product read; None for anything else."""
    if not result.valid:
        return None
    if result.kind == "loyalty":
        data = {
            "id_hash": hash_identifier(salt, LOYALTY_HASH_KIND, result.code),
            "source": source,
            "symbology": symbology,
        }
        return new_event(LOYALTY_EVENT, data)
    if result.kind == "product":
        return new_event(
            PRODUCT_EVENT, {"ean": result.code, "source": source, "symbology": symbology}
        )
    return None


@dataclass
class ScanCounters:
    """What the router saw, for health metrics (counts only, never codes)."""

    loyalty: int = 0
    product: int = 0
    duplicates: int = 0
    rejected: int = 0
    other: int = 0
    by_source: dict[str, int] = field(default_factory=dict)


class ScanRouter:
    """Turns reads from any source into at most one event per code and window (thread-safe)."""

    def __init__(
        self,
        patterns: Sequence[PatternLike],
        window_s: float,
        salt: str,
        publish: Callable[[Event], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.patterns = list(patterns)
        self.salt = salt
        self._publish = publish
        self._clock = clock
        self._filter = DuplicateFilter(window_s)
        self._lock = threading.Lock()
        self.counters = ScanCounters()

    def handle(self, text: str, symbology: str, source: str) -> Event | None:
        """Classify one read and publish its event unless it is invalid or a repeat."""
        result = classify(text, symbology, self.patterns)
        with self._lock:
            c = self.counters
            c.by_source[source] = c.by_source.get(source, 0) + 1
            if result.kind == "other":
                c.other += 1
                return None
            if not result.valid:
                c.rejected += 1
                # The reason names the check, never the number itself.
                _LOGGER.info("rejected a %s read from %s: %s", result.kind, source, result.reason)
                return None
            if not self._filter.accept(f"{result.kind}:{result.code}", self._clock()):
                c.duplicates += 1
                return None
            event = scan_event(result, self.salt, source, symbology)
            if event is None:
                return None
            if result.kind == "loyalty":
                c.loyalty += 1
            else:
                c.product += 1
        self._publish(event)
        return event
