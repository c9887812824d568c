"""The tamper-evident hash chain over every stored event.

Event n's hash is SHA-256(hash of event n-1 || canonical JSON of event n),
with 64 zeros before the first event. Ingest extends the chain batch by
batch; `verify_chain` recomputes it from the stored rows.
"""

from __future__ import annotations

import hashlib

GENESIS = "0" * 64


def link_hash(previous: str, canonical: bytes) -> str:
    """The hash of an event whose canonical JSON is `canonical`, following `previous`."""
    digest = hashlib.sha256(previous.encode("ascii"))
    digest.update(canonical)
    return digest.hexdigest()
