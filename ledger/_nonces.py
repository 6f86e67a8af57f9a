"""A bounded, thread-safe memory of the request nonces seen, for replay refusal.

Exported as ``ledger.httpsig.NonceCache``; ``verify_request`` turns its answers into errors.
"""

from __future__ import annotations

import heapq
import sys
import threading
from typing import Literal

__all__ = ["Claim", "NonceCache"]

Claim = Literal["new", "replayed", "expired", "full"]


class NonceCache:
    """The (keyid, nonce) pairs of accepted requests, each kept until its ``expires``.

    Its clock is the latest ``now`` any ``claim`` gave it (so a caller whose clock lags
    cannot slip past an entry that a faster caller already dropped). An entry is dropped
    once that clock reaches its ``expires``. When ``capacity`` unexpired entries are held,
    a new pair is refused ("full") rather than an unexpired one forgotten: forgetting
    one would let its request be replayed. Memory is about ``capacity`` x (200 bytes +
    the key id and nonce text). Safe to share between threads.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        """Precondition: ``capacity`` is an int >= 1 (else TypeError / ValueError)."""
        if not isinstance(capacity, int) or isinstance(capacity, bool):
            raise TypeError("capacity is an int")
        if capacity < 1:
            raise ValueError("capacity is at least 1")
        self.capacity = capacity
        self._lock = threading.Lock()
        self._expires: dict[tuple[str, str], int] = {}
        self._heap: list[tuple[int, tuple[str, str]]] = []
        self._clock = 0

    def claim(self, keyid: str, nonce: str, expires: int, now: int) -> Claim:
        """Record (keyid, nonce) until ``expires`` if it is new. Returns "new" when recorded
        (the caller may serve the request), "replayed" if it is held, "expired" if
        ``expires`` is not after the cache's clock, "full" if the cache holds ``capacity``
        unexpired entries. Precondition: ints for the times, text for the rest."""
        if not isinstance(keyid, str) or not isinstance(nonce, str):
            raise TypeError("keyid and nonce are text")
        for value in (expires, now):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError("expires and now are int seconds")
        key = (sys.intern(keyid), nonce)
        with self._lock:
            self._clock = max(self._clock, now)
            self._drop_expired()
            if key in self._expires:
                return "replayed"
            if expires <= self._clock:
                return "expired"
            if len(self._expires) >= self.capacity:
                return "full"
            self._expires[key] = expires
            heapq.heappush(self._heap, (expires, key))
            return "new"

    def _drop_expired(self) -> None:
        """Forget every entry whose expires is at or before the clock. Lock held."""
        heap, clock = self._heap, self._clock
        while heap and heap[0][0] <= clock:
            _, key = heapq.heappop(heap)
            del self._expires[key]

    def __len__(self) -> int:
        """The entries held (some may be due to be dropped at the next ``claim``)."""
        with self._lock:
            return len(self._expires)
