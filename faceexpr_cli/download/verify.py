"""Checksums while streaming, and the checks that decide whether a finished ``.part`` may take its final name.

Hashing runs while bytes arrive, so verification costs no extra pass over the file. For large bodies it moves to
a helper thread (hashlib releases the GIL on big buffers), so that hashing one chunk overlaps receiving the next.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from pathlib import Path
from typing import BinaryIO

from faceexpr_cli.download.errors import PermanentError

THREAD_ABOVE = 16 << 20  # bodies larger than this hash on a helper thread


def sha256_file(path: Path, limit: int | None = None, chunk: int = 4 << 20) -> hashlib._Hash:
    """A running sha256 of a file's first ``limit`` bytes (all of it by default): resumes start from here."""
    digest = hashlib.sha256()
    left = limit
    with open(path, "rb") as fh:
        while left is None or left > 0:
            block = fh.read(chunk if left is None else min(chunk, left))
            if not block:
                break
            digest.update(block)
            if left is not None:
                left -= len(block)
    return digest


class HashingWriter:
    """Writes chunks to a file and feeds the same chunks to sha256, on a thread when the body is large."""

    def __init__(self, fh: BinaryIO, digest: hashlib._Hash, expected: int | None):
        self.fh = fh
        self.digest = digest
        self.written = 0
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        if expected is not None and expected > THREAD_ABOVE:
            self._queue = queue.Queue(maxsize=16)
            self._thread = threading.Thread(target=self._hash_loop, daemon=True, name="fx-sha256")
            self._thread.start()

    def _hash_loop(self) -> None:
        assert self._queue is not None
        while (block := self._queue.get()) is not None:
            self.digest.update(block)

    def write(self, block: bytes) -> None:
        self.fh.write(block)
        self.written += len(block)
        if self._queue is not None:
            self._queue.put(block)
        else:
            self.digest.update(block)

    def close(self) -> str:
        """Flush the hashing thread; returns the hex digest of everything written (plus the resumed prefix)."""
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = None
        return self.digest.hexdigest()


def check(path: Path, sha256: str | None, *, want_sha: str | None, want_size: int | None, name: str = "") -> None:
    """Raise ``PermanentError`` when a finished file is not the one the manifest or card describes."""
    name = name or path.name
    size = path.stat().st_size
    if want_size is not None and size != want_size:
        raise PermanentError("size_mismatch", f"{name}: size mismatch, got {size} bytes, expected {want_size}")
    if want_sha is not None and sha256 is not None and sha256 != want_sha:
        raise PermanentError("checksum_mismatch",
                             f"{name}: checksum mismatch, sha256 {sha256[:16]}... expected {want_sha[:16]}...")
