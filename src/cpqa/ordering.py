"""A stable hash for orderings that must not change between runs, processes or Python versions
(`hash()` of a string is salted per process): ties broken by id, samples drawn by id, rotations
started by id. Changing it changes which items a build keeps, so its output is part of the records."""

from __future__ import annotations

import hashlib


def stable_hash(key: str, digest_size: int = 8) -> int:
    """The big-endian integer of `key`'s BLAKE2b digest of `digest_size` bytes."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=digest_size).digest(), "big")
