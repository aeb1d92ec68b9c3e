"""Video sites through yt-dlp's Python API: format by minimum height and codec, cookies, sleeps and rate limits,
subtitles and automatic captions (VTT, which keeps YouTube's word timings) and, with ``--sections``, only the
row's spans (cut by ffmpeg at exact times).

Everything is written into the item's staging directory ``<name>.part/``; yt-dlp's own ``.part`` files in it
are what a re-run continues. The runner moves the finished video and its ``<name>.<lang>.vtt`` files next to each
other at the destination, where ``fx clip`` finds the transcript by the video's stem.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from faceexpr_cli.console import log
from faceexpr_cli.download.errors import FetchError, Interrupted, PermanentError, TransientError, http_error
from faceexpr_cli.download.options import DownloadOptions, VideoOptions
from faceexpr_cli.download.redaction import Scrubber
from faceexpr_cli.download.sources import SOURCES, Fetched, FetchJob

_CODECS = {"h264": "avc1", "avc": "avc1", "avc1": "avc1", "hevc": "(hev1|hvc1)", "h265": "(hev1|hvc1)",
           "vp9": "vp0?9", "av1": "av01"}
_TEMP = (".ytdl", ".temp", ".tmp")
_CAPTIONS = (".vtt", ".srt", ".json3", ".srv3", ".ttml")
_PERMANENT_TEXT = {
    "private_video": ("private video", "this video is private"),
    "login_required": ("sign in to confirm", "login required", "members-only", "age-restricted", "join this channel"),
    "unavailable": ("video unavailable", "has been removed", "no longer available", "not available",
                    "does not exist", "copyright", "unsupported url"),
    "no_format": ("requested format is not available", "no video formats"),
}
_TRANSIENT_TEXT = ("timed out", "connection reset", "incompleteread", "temporary failure", "remote end closed",
                   "connection refused", "connection aborted", "read timed out", "try again later")


def format_selector(video: VideoOptions) -> str:
    """A yt-dlp format string: best video at or above the minimum height (and codec) with best audio."""
    if video.format:
        return video.format
    filters = ""
    if video.min_height:
        filters += f"[height>=?{video.min_height}]"
    if video.codec:
        codec = _CODECS.get(video.codec.lower(), re.escape(video.codec))
        filters += f"[vcodec~='^{codec}']"
    return f"bv*{filters}+ba/b{filters}" if filters else "bv*+ba/b"


def classify(exc: BaseException, url: str) -> FetchError:
    """A yt-dlp failure as transient or permanent, from the HTTP status it wraps, else from its message."""
    from yt_dlp.networking.exceptions import HTTPError, TransportError

    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, HTTPError):
            return http_error(cause.status, url, cause.response.headers.get("Retry-After"))
        if isinstance(cause, TransportError):
            return TransientError("connection", f"{cause}")
        exc_info = getattr(cause, "exc_info", None)  # DownloadError keeps the original here
        wrapped = exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) > 1 else None
        cause = getattr(cause, "cause", None) or wrapped or cause.__cause__ or cause.__context__
    text = str(exc).removeprefix("ERROR: ").strip()
    low = text.lower()
    m = re.search(r"http error (\d{3})", low)
    if m:
        return http_error(int(m.group(1)), url)
    for kind, needles in _PERMANENT_TEXT.items():
        if any(n in low for n in needles):
            return PermanentError(kind, f"{text}")
    if any(n in low for n in _TRANSIENT_TEXT):
        return TransientError("network", f"{text}")
    return PermanentError("ytdlp_error", f"{text}")


class _Logger:
    """yt-dlp's messages go to fx's logger at debug level, the item's URL secrets blanked; its errors are
    raised and recorded instead."""

    def __init__(self, scrub: Scrubber):
        self.scrub = scrub

    def debug(self, msg: str) -> None:
        log.debug("yt-dlp: %s", self.scrub.text(msg))

    info = debug

    def warning(self, msg: str) -> None:
        log.debug("yt-dlp warning: %s", self.scrub.text(msg))

    def error(self, msg: str) -> None:
        log.debug("yt-dlp error: %s", self.scrub.text(msg))


_MEDIA = frozenset({".mp4", ".m4v", ".mkv", ".webm", ".mov", ".avi", ".flv", ".3gp", ".ts", ".m4a", ".mp3",
                    ".opus", ".ogg", ".wav", ".aac", ".flac"})


def video_stem(name: str) -> str:
    """The item's name without a media extension: yt-dlp adds the real one (``v.mp4`` must not become
    ``v.mp4.mp4``, nor ``v.mp4.webm`` when the site serves WebM)."""
    stem, dot, ext = name.rpartition(".")
    return stem if dot and stem and f".{ext.lower()}" in _MEDIA else name


def ydl_options(job: FetchJob, options: DownloadOptions, hook: Any, cookiefile: Path | None = None) -> dict[str, Any]:
    """yt-dlp's options for one item. ``cookiefile`` is the private copy of ``--cookies`` (yt-dlp rewrites the
    file it is given when it closes), never the user's file itself."""
    from faceexpr_cli.media.ffmpeg import find_ffmpeg

    video, stage, stem = options.video, job.part, video_stem(job.item.name)
    sections = video.sections and bool(job.item.spans)
    default = f"{stem}_%(section_start)s-%(section_end)s.%(ext)s" if sections else f"{stem}.%(ext)s"
    opts: dict[str, Any] = {
        "outtmpl": {"default": str(stage / default), "subtitle": str(stage / f"{stem}.%(ext)s")},
        "format": format_selector(video),
        "merge_output_format": "mp4/mkv",
        "noplaylist": True,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": _Logger(Scrubber(job.item.url)),
        "progress_hooks": [hook],
        "continuedl": True,
        "overwrites": False,
        "socket_timeout": options.timeout,
        "retries": 2,
        "fragment_retries": 3,
        "extractor_retries": 1,
        "ffmpeg_location": find_ffmpeg(),
    }
    if video.subtitles:
        opts.update(writesubtitles=True, writeautomaticsub=True, subtitleslangs=list(video.sub_langs),
                    subtitlesformat="vtt/json3/srv3/best")
    if cookiefile is not None:
        opts["cookiefile"] = str(cookiefile)
    if video.sleep:
        opts.update(sleep_interval_requests=video.sleep, sleep_interval=video.sleep)
    if video.rate_limit:
        opts["ratelimit"] = video.rate_limit
    if sections:
        from yt_dlp.utils import download_range_func

        opts["download_ranges"] = download_range_func(None, [tuple(s) for s in job.item.spans])
        opts["force_keyframes_at_cuts"] = True
    return opts


@SOURCES.register("ytdlp")
class YtdlpSource:
    part_is_dir = True

    def __init__(self, options: DownloadOptions):
        self.options = options

    def fetch(self, job: FetchJob) -> Fetched:
        import yt_dlp

        from faceexpr_cli.media.ffmpeg import find_ffmpeg

        _share_ffmpeg_location(find_ffmpeg())
        job.part.mkdir(parents=True, exist_ok=True)
        # bytes already in yt-dlp's .part files count as resumed, not as moved by this run
        seen = {str(p): p.stat().st_size for p in job.part.iterdir() if p.name.endswith(".part")}
        resumed = sum(seen.values())
        moved = [0]

        def hook(status: dict[str, Any]) -> None:
            # Count new bytes per file for the progress bar and the bandwidth cap; stop on Ctrl-C.
            name = status.get("tmpfilename") or status.get("filename") or ""
            done = int(status.get("downloaded_bytes") or 0)
            delta = max(0, done - seen.get(name, 0))
            seen[name] = max(done, seen.get(name, 0))
            moved[0] += delta
            job.meter.add(delta)

        try:
            with private_copy(self.options.video.cookies) as cookiefile, \
                    yt_dlp.YoutubeDL(ydl_options(job, self.options, hook, cookiefile)) as ydl:
                info = ydl.extract_info(job.item.url, download=True)
        except Interrupted:
            raise
        except Exception as exc:
            job.meter.check()  # an Interrupted raised in the hook may come back wrapped
            raise classify(exc, job.item.url) from exc
        # finished files only (yt-dlp's own partial and fragment files carry ".part"), the video first
        files = sorted((p for p in job.part.iterdir() if p.is_file() and ".part" not in p.name
                        and not p.name.endswith(_TEMP)), key=lambda p: (p.suffix in _CAPTIONS, p.name))
        if not files or files[0].suffix in _CAPTIONS:
            raise PermanentError("no_video", "yt-dlp finished without a video file")
        extra = {"title": (info or {}).get("title"), "site_id": (info or {}).get("id"),
                 "extractor": (info or {}).get("extractor_key"), "height": (info or {}).get("height"),
                 "vcodec": (info or {}).get("vcodec"), "duration": (info or {}).get("duration")}
        return Fetched(files, moved[0], resumed, None, (info or {}).get("webpage_url"), None, None, extra)


@contextlib.contextmanager
def private_copy(path: Path | None) -> Iterator[Path | None]:
    """A copy of the user's cookies file, readable only by this user, removed afterwards; yt-dlp may rewrite
    it (it saves its cookie jar on close) without touching the original's bytes or mtime."""
    if path is None:
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="fx-cookies-"))  # mode 0700, a unique name per process and item
    try:
        copy = folder / "cookies.txt"
        shutil.copyfile(path, copy)
        os.chmod(copy, 0o600)
        yield copy
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _share_ffmpeg_location(path: str) -> None:
    """yt-dlp's partial-download check reads ffmpeg's place from a context variable that new threads start
    without (its own CLI sets it once on the main thread); set it in each worker thread."""
    try:
        from yt_dlp.postprocessor.ffmpeg import FFmpegPostProcessor

        FFmpegPostProcessor._ffmpeg_location.set(path)
    except (ImportError, AttributeError):  # a yt-dlp without it finds ffmpeg on PATH instead
        pass

