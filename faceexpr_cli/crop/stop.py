"""How a running ``fx crop`` stops on Ctrl-C.

In the parent process Ctrl-C is Python's ``KeyboardInterrupt``, raised wherever the frame loop is. Worker
processes ignore SIGINT (a terminal sends it to the whole process group) and instead watch an ``Event`` the
parent sets: the frame loops call ``check()`` once per frame, so a video in flight is abandoned within a frame
and its writers drop their temporary files on the way out.
"""

from __future__ import annotations

import signal

_event = None  # set in worker processes only (see ``watch``)


class Stopped(KeyboardInterrupt):
    """The run was asked to stop; the video in flight is abandoned (a re-run redoes it)."""


def watch(event) -> None:
    """Worker initialiser: leave SIGINT to the parent and stop when ``event`` is set."""
    global _event
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _event = event


def check() -> None:
    if _event is not None and _event.is_set():
        raise Stopped()


def frames(it):
    """``it`` with a stop check before each frame."""
    for frame in it:
        check()
        yield frame
