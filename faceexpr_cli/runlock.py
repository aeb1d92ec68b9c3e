"""One run per output folder.

``output_lock(out, "fx crop")`` makes ``out`` (refusing a path that is, or lies under, a file) and holds an
exclusive lock on ``out/.fx-lock`` for the run: a second run on the same folder refuses with one line naming the
holder (pid, host, start time, command). The lock is an ``flock`` on an open file, so a run that dies releases it;
the next run takes the folder over with a warning naming the dead holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from faceexpr_cli.console import log
from faceexpr_cli.errors import FxError, UsageError

LOCK_NAME = ".fx-lock"


class OutputLockedError(FxError):
    """Another fx run holds the output folder."""


def ensure_out_dir(path: str | Path, flag: str = "--out") -> Path:
    """Create ``path`` as a directory; a path that is a file, or lies under one, is a usage error."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists() and not p.is_dir():
            what = "is a file" if p == path else f"lies under the file {p}"
            raise UsageError(f"{flag} {path} {what}", "give a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot create it ({exc.strerror or exc})") from None
    return path


def _holder(text: str) -> str:
    try:
        info = json.loads(text)
        return (f"{info.get('command', 'fx')} (pid {info.get('pid')} on {info.get('host')}, "
                f"since {info.get('started')})")
    except (ValueError, AttributeError):
        return "another fx run"


@contextlib.contextmanager
def output_lock(out: str | Path, command: str, flag: str = "--out") -> Iterator[Path]:
    out = ensure_out_dir(out, flag)
    lock = out / LOCK_NAME
    for _ in range(20):
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
            os.close(fd)
            raise OutputLockedError(f"{out} is in use by {_holder(text)}",
                                    "wait for that run to finish, or use another output folder") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the file was removed and replaced between open and flock: try the new one
    else:  # pragma: no cover - needs 20 lost races in a row
        raise OutputLockedError(f"{out}: could not take the output lock")
    try:
        previous = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
        if previous:
            log.warning("%s: taking over from a run that ended without releasing it: %s", out, _holder(previous))
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        yield out
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)
