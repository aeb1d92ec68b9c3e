"""Why a fetch failed, and whether trying again can help.

Every source turns its library's exceptions into one of two kinds: ``TransientError`` (timeouts, resets, 429,
5xx, truncated bodies: retried with backoff, the ``.part`` kept for resume) or ``PermanentError`` (404, 403,
private video, checksum mismatch: not retried, the ``.part`` removed). ``kind`` is a short stable label that
lands in the status manifest's ``error_class`` column, so failures can be counted and filtered.
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime

from faceexpr_cli.errors import DownloadError

# 4xx codes that a later request may well get past
_TRANSIENT_4XX = {408, 409, 423, 425, 429}
_PERMANENT_5XX = {501, 505}


class FetchError(DownloadError):
    transient = False

    def __init__(self, kind: str, message: str, *, retry_after: float | None = None, http_status: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after
        self.http_status = http_status


class TransientError(FetchError):
    transient = True


class PermanentError(FetchError):
    transient = False


class Interrupted(Exception):
    """The run is stopping (Ctrl-C): the current transfer ends at the next chunk and keeps its ``.part``."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C ended a run after its status was written: how many items finished, were cut short, never started."""

    def __init__(self, finished: int, cut: int, queued: int):
        super().__init__(finished, cut, queued)
        self.finished, self.cut, self.queued = finished, cut, queued

    def one_line(self) -> str:
        return (f"interrupted: {self.finished} item(s) recorded, {self.cut} still transferring were left as .part "
                f"for resume, {self.queued} not started; re-run the same command to continue")


def http_error(status: int, url: str, retry_after: str | None = None) -> FetchError:
    """The error for an HTTP status >= 400, transient or not by the status alone."""
    message = f"HTTP {status}"
    wait = parse_retry_after(retry_after)
    if status in _TRANSIENT_4XX or (status >= 500 and status not in _PERMANENT_5XX):
        if wait is not None:
            message += f" (retry after {wait:g} s)"
        return TransientError(f"http_{status}", message, retry_after=wait, http_status=status)
    return PermanentError(f"http_{status}", message, http_status=status)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        import time

        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
