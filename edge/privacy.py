"""Salted hashing of shoppers' identifiers: MAC addresses, phone tokens, loyalty numbers.

Identifiers leave the device only as a keyed hash (HMAC-SHA256 with the per-store salt), so
central can count and correlate visits within a store without learning the identifier,
and a leaked table cannot be reversed by hashing every possible loyalty number.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Final

# 128 bits of the HMAC: collision-free in practice for a store's shoppers, half the size.
HASH_HEX_CHARS: Final = 32


def hash_identifier(salt: str, kind: str, value: str) -> str:
    """The salted hash of an identifier; ``kind`` (e.g. "loyalty") separates namespaces."""
    mac = hmac.new(salt.encode(), f"{kind}:{value}".encode(), hashlib.sha256)
    return mac.hexdigest()[:HASH_HEX_CHARS]


def load_or_create_salt(configured: str, data_dir: Path) -> str:
    """The configured salt, else one generated once and kept (0600) in the data dir."""
    if configured:
        return configured
    path = data_dir / "identity-salt"
    try:
        existing = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    data_dir.mkdir(parents=True, exist_ok=True)
    salt = secrets.token_hex(32)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(salt, encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)
    return salt
