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


_local = threading.local()
RING = 4  # buffers per thread when hashing runs on a helper thread


def _buffers(size: int, count: int) -> list[memoryview]:
    """Receive buffers reused across chunks and files on this thread: a fresh 1 MB allocation per chunk
    costs page faults that, on a fast link, take longer than hashing the chunk."""
    ring = getattr(_local, "ring", None)
    if ring is None or len(ring[0]) != size:
        ring = _local.ring = []
    while len(ring) < count:
        ring.append(memoryview(bytearray(size)))
    return ring[:count]


def resume_digest(part: Path, have: int, wanted: bool) -> hashlib._Hash | None:
    """The running sha256 to continue from (None: no hashing wanted for this file)."""
    if not wanted:
        return None
    return sha256_file(part, have) if have else hashlib.sha256()


class HashingWriter:
    """Writes chunks to a file and feeds the same chunks to sha256, on a helper thread when the body is large.

    ``fill(readinto)`` receives straight into a reused buffer; ``write(block)`` takes bytes from sources that
    hand out their own. With the helper thread, a buffer is reused only after it has been hashed.
    """

    def __init__(self, fh: BinaryIO, digest: hashlib._Hash | None, expected: int | None, chunk: int = 1 << 20):
        self.fh = fh
        self.digest = digest
        self.written = 0
        threaded = digest is not None and expected is not None and expected > THREAD_ABOVE
        self._ring = _buffers(chunk, RING if threaded else 1)
        self._next = 0
        self._free = threading.Semaphore(len(self._ring))
        self._queue: queue.Queue[memoryview | bytes | None] | None = None
        self._thread: threading.Thread | None = None
        if threaded:
            self._queue = queue.Queue()
            self._thread = threading.Thread(target=self._hash_loop, daemon=True, name="fx-sha256")
            self._thread.start()

    def _hash_loop(self) -> None:
        assert self._queue is not None
        while (block := self._queue.get()) is not None:
            self.digest.update(block)
            if isinstance(block, memoryview):
                self._free.release()

    def _hash(self, block: memoryview | bytes) -> None:
        if self._queue is not None:
            self._queue.put(block)
        else:
            if self.digest is not None:
                self.digest.update(block)
            if isinstance(block, memoryview):
                self._free.release()

    def fill(self, readinto) -> int:  # noqa: ANN001 - any readinto(buffer) -> int
        """Receive one chunk with ``readinto`` into the next free buffer, write and hash it; 0 at the end."""
        self._free.acquire()
        buf = self._ring[self._next]
        self._next = (self._next + 1) % len(self._ring)
        try:
            n = readinto(buf)
        except BaseException:
            self._free.release()
            raise
        if not n:
            self._free.release()
            return 0
        view = buf[:n]
        self.fh.write(view)
        self.written += n
        self._hash(view)
        return n

    def write(self, block: bytes) -> None:
        self.fh.write(block)
        self.written += len(block)
        self._hash(block)

    def close(self) -> str | None:
        """Flush the hashing thread; returns the hex digest of everything written (plus the resumed prefix)."""
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = None
        return self.digest.hexdigest() if self.digest is not None else None


def check(path: Path, sha256: str | None, *, want_sha: str | None, want_size: int | None) -> None:
    """Raise ``PermanentError`` when a finished file is not the one the manifest or card describes."""
    size = path.stat().st_size
    if want_size is not None and size != want_size:
        raise PermanentError("size_mismatch", f"size mismatch: got {size} bytes, expected {want_size}")
    if want_sha is not None and sha256 is not None and sha256 != want_sha:
        raise PermanentError("checksum_mismatch",
                             f"checksum mismatch: sha256 {sha256[:16]}... expected {want_sha[:16]}...")
