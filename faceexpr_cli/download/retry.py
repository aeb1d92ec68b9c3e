"""Retry timing: exponential backoff with jitter, and the server's Retry-After when it sends one.

Jitter keeps many threads (or many machines running shards) that failed together from retrying together.
``scale`` multiplies every wait: tests set it small so that a retry sequence takes milliseconds.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass


@dataclass
class RetryPolicy:
    attempts: int = 5  # total tries per item, the first included
    base: float = 1.0  # first backoff in seconds
    cap: float = 60.0  # longest backoff
    scale: float = 1.0
    max_retry_after: float = 600.0  # a server asking for a longer wait fails the item now
    seed: int | None = None

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:  # sent to Ray workers (fx download --executor ray): a lock does not pickle
        state = dict(self.__dict__)
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def delay(self, attempt: int, retry_after: float | None = None) -> float | None:
        """Seconds to wait after failed try number ``attempt`` (1-based); None when the item should give up."""
        if attempt >= self.attempts:
            return None
        if retry_after is not None and retry_after > self.max_retry_after:
            return None
        backoff = min(self.cap, self.base * 2 ** (attempt - 1))
        with self._lock:
            backoff *= self._rng.uniform(0.5, 1.0)
        if retry_after is not None:
            backoff = max(backoff, retry_after)
        return backoff * self.scale
