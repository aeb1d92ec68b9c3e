"""Shared limits between worker threads: connections per host, a global bandwidth cap, and the stop flag.

Every source reports each chunk it writes to one ``Meter``; that single call counts bytes for the progress bar,
sleeps when the bandwidth cap is reached, and raises ``Interrupted`` once the run is stopping, so Ctrl-C takes
effect within one chunk on every thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from faceexpr_cli.download.errors import Interrupted


class HostLimiter:
    """At most ``per_host`` transfers to one host at a time (politeness, and fewer 429s)."""

    def __init__(self, per_host: int):
        self.per_host = per_host
        self._sems: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, host: str, stop: threading.Event | None = None) -> Iterator[None]:
        with self._lock:
            sem = self._sems.setdefault(host, threading.BoundedSemaphore(self.per_host))
        while not sem.acquire(timeout=0.2):
            if stop is not None and stop.is_set():
                raise Interrupted()
        try:
            yield
        finally:
            sem.release()


class RateLimiter:
    """A token bucket shared by all threads; ``None`` rate means no cap."""

    def __init__(self, rate: float | None, burst_seconds: float = 0.25):
        self.rate = rate
        self._capacity = (rate or 0) * burst_seconds
        self._tokens = self._capacity
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def consume(self, nbytes: int, stop: threading.Event | None = None) -> None:
        if not self.rate:
            return
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= nbytes
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            if stop is not None:
                if stop.wait(wait):
                    raise Interrupted()
            else:
                time.sleep(wait)


class Meter:
    """Bytes moved by the whole run (for the progress bar and summary), with the cap and the stop flag."""

    def __init__(self, rate: float | None = None, stop: threading.Event | None = None):
        self.stop = stop or threading.Event()
        self.limiter = RateLimiter(rate)
        self.bytes = 0
        self._lock = threading.Lock()

    def add(self, nbytes: int) -> None:
        with self._lock:
            self.bytes += nbytes
        self.limiter.consume(nbytes, self.stop)
        if self.stop.is_set():
            raise Interrupted()

    def check(self) -> None:
        if self.stop.is_set():
            raise Interrupted()

    def sleep(self, seconds: float) -> None:
        """A backoff wait that Ctrl-C cuts short."""
        if self.stop.wait(seconds):
            raise Interrupted()
