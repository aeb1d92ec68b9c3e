"""The demo's HTML report: one section per step with its pictures, videos, tables and timings.

The report has to read without playing anything (a browser without H.264, a printed page, a quick scroll): every
video gets a poster (its middle frame, ``<stem>.poster.png`` next to it) and a strip of evenly spaced frames under
it (``<stem>.frames.png``). Every ``src`` and ``poster`` is a relative, URL-quoted path inside the report's folder,
so a copied or zipped demo folder opens anywhere; a file a step left outside the folder is copied into
``report_files/`` first.
"""

from __future__ import annotations

import html
import json
import os
import shutil
from pathlib import Path
from urllib.parse import quote

import numpy as np

from faceexpr_cli.console import log
from faceexpr_cli.demo.framework import StepResult
from faceexpr_cli.errors import FxError, MediaError

STRIP_FRAMES = 6
STRIP_HEIGHT = 96  # pixels of each thumbnail in the strip
_GAP = 2

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
section{border-top:1px solid #ccc;padding:.5em 0}.ok{color:#180}.failed{color:#c00}.skipped{color:#888}
img,video{max-width:100%;border:1px solid #ddd;margin:.3em 0}figure{overflow-x:auto}video,img.strip{display:block}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}figure{margin:.5em 0}pre{background:#f6f6f6;padding:.5em}"""


def _inside(path: Path, root: Path) -> Path:
    """``path`` itself when it lies under ``root``, else a copy of it under ``root/report_files``."""
    path, root = Path(path).resolve(), root.resolve()
    if path.is_relative_to(root) or not path.exists():
        return path
    copy = root / "report_files" / path.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(path, copy)
    return copy


def _src(path: Path, root: Path) -> str:
    rel = Path(os.path.relpath(_inside(path, root), root.resolve())).as_posix()
    return html.escape(quote(rel), quote=True)


def _thumb(image: np.ndarray, height: int) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)


def video_previews(video: Path, frames: int = STRIP_FRAMES) -> tuple[Path, Path]:
    """Write ``<stem>.poster.png`` (the middle frame) and ``<stem>.frames.png`` (``frames`` evenly spaced frames,
    first to last) next to ``video``; decodes the video once, forward."""
    from faceexpr_cli.media import iter_frames, write_image
    from faceexpr_cli.media.timeline import frame_times

    n = len(frame_times(video))
    if n == 0:
        raise MediaError(video, "has no frames to show")
    wanted = sorted({int(round(i)) for i in np.linspace(0, n - 1, min(frames, n))})
    middle = n // 2
    picked: dict[int, np.ndarray] = {}
    poster = None
    for frame in iter_frames(video):
        if frame.index == middle:
            poster = frame.image
        if frame.index in wanted:
            picked[frame.index] = _thumb(frame.image, STRIP_HEIGHT)
        if frame.index >= max(middle, wanted[-1]):
            break
    if poster is None or not picked:
        raise MediaError(video, "decoded fewer frames than its packets say")
    gap = np.full((STRIP_HEIGHT, _GAP, 3), 255, np.uint8)
    tiles = [t for i in sorted(picked) for t in (picked[i], gap)][:-1]
    stem = video.with_suffix("")
    return (write_image(stem.with_name(stem.name + ".poster.png"), poster),
            write_image(stem.with_name(stem.name + ".frames.png"), np.concatenate(tiles, axis=1)))


def _video(path: Path, out: Path, cap: str) -> str:
    path = _inside(path, out)
    try:
        poster, strip = video_previews(path)
    except FxError as exc:  # the report is still written; the video just has no preview
        log.warning("report: no preview for %s: %s", path, exc.one_line())
        return f"<figure><video controls preload='none' src='{_src(path, out)}'></video>{cap}</figure>"
    return (f"<figure><video controls preload='none' poster='{_src(poster, out)}' src='{_src(path, out)}'></video>"
            f"<img class='strip' src='{_src(strip, out)}' alt='frames of {html.escape(path.name)}'>{cap}</figure>")


def _table(rows: list[dict]) -> str:
    if not rows:
        return "<p>(empty)</p>"
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in cols) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(results: list[StepResult], out: Path, title: str = "fx demo") -> Path:
    out = Path(out)
    title = html.escape(title)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{_CSS}</style>"
             f"</head><body><h1>{title}</h1>"]
    parts.append(_table([{"step": r.title, "status": r.status, "seconds": f"{r.seconds:.1f}"} for r in results]))
    for r in results:
        parts.append(f"<section><h2>{html.escape(r.title)} <span class='{r.status}'>{r.status}</span></h2>")
        if r.error:
            parts.append(f"<p class='{r.status}'>{html.escape(r.error)}</p>")
        for item in r.items:
            cap = f"<figcaption>{html.escape(item.caption)}</figcaption>" if item.caption else ""
            if item.kind == "text":
                parts.append(f"<p>{html.escape(str(item.value))}</p>")
            elif item.kind == "image":
                parts.append(f"<figure><img src='{_src(item.value, out)}'>{cap}</figure>")
            elif item.kind == "video":
                parts.append(_video(item.value, out, cap))
            elif item.kind == "table":
                parts.append(f"<figure>{_table(item.value)}{cap}</figure>")
            else:
                parts.append(f"<pre>{html.escape(json.dumps(item.value, indent=1, default=str))}</pre>")
        parts.append("</section>")
    parts.append("</body></html>")
    path = out / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
