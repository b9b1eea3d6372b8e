"""The local catalog: products, offers, reviews and shopper profiles, kept in SQLite."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from edge.catalog.models import CatalogChange


class CatalogSink(Protocol):
    """The narrow interface the MQTT relay uses to apply central's retained state.

    Implementations apply a batch in one transaction and are idempotent: applying the same
    change twice leaves the store as applying it once; a None payload deletes the record.
    Malformed payloads are skipped and reported in the returned list of error messages.
    """

    def apply_changes(self, changes: Sequence[CatalogChange]) -> list[str]:
        """Apply upserts and deletes; return one message per rejected change."""
        ...
