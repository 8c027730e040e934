"""A Redis ephemeral store under a key prefix of its own, emptied and closed afterwards."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from idp.store.ephemeral import RedisEphemeral


@contextmanager
def private_redis_store(url: str, label: str) -> Iterator[RedisEphemeral]:
    prefix = f"{label}:{secrets.token_hex(4)}:"
    store = RedisEphemeral(url, prefix)
    try:
        yield store
    finally:
        keys = list(store.client.scan_iter(match=prefix + "*"))
        if keys:
            store.client.delete(*keys)
        store.close()
