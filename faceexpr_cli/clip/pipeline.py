"""``fx clip``'s core: for each input, find hits (or random windows), cut them in one pass, write the dataset.

One run per output folder (``runlock.output_lock``). Per input: probe (size limit) -> transcript -> hits -> windows (+ dropped hits) -> ``cut_many`` (one decode pass) -> optional
face filter and crop -> ``DatasetWriter``. A bad input becomes a failed row and the run goes on; an input is
marked done only after all its clips are written, so a resumed run redoes exactly the unfinished ones.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from faceexpr_cli.clip.inputs import ClipInput
from faceexpr_cli.clip.matching import MATCHERS, find_hits
from faceexpr_cli.clip.stats import SEP, build_stats
from faceexpr_cli.clip.windows import NO_ROOM, Window, WindowSpec, plan_windows, random_windows
from faceexpr_cli.console import log, progress
from faceexpr_cli.dataset import format as fmt
from faceexpr_cli.dataset.writer import DatasetWriter, write_stats
from faceexpr_cli.errors import DataError, FxError, MediaError, UsageError
from faceexpr_cli.executors import ExecutorSpec
from faceexpr_cli.runlock import output_lock
from faceexpr_cli.safety import check_number

DEFAULT_MAX_PIXELS = 4096 * 4096  # fx crop's limit: one 63 MP frame of a span decoded to RGB took 8.6 GB


@dataclass
class ClipSettings:
    keywords: list[str] | None = None
    random: int | None = None  # clips per video instead of keywords
    match: str = "word"
    stem: bool = False
    window: WindowSpec = field(default_factory=WindowSpec)
    seed: int = 0
    min_gap: float = 0.0
    cut: str = "exact"
    crf: int = 18
    x264_preset: str = "veryfast"
    threads: int = 0
    fps: float | None = None  # resample clips to a constant rate; None keeps the source's frame times
    faces: bool = False
    face_size: int = 518
    face_fill: str = "blur"  # what fills a face square that still leaves the frame once shifted inside
    face_backend: str | None = None
    shard_count: int = 1000
    shard_bytes: int = 512 * 1024 * 1024
    max_pixels: int | None = DEFAULT_MAX_PIXELS  # larger videos are failed rows, checked from the probe

    def check(self) -> None:
        if (self.keywords is None) == (self.random is None):
            raise UsageError("give either --keywords or --random N", "e.g. --keywords smile or --random 5")
        check_number(self.random, "--random", minimum=1)
        check_number(self.fps, "--fps", above=0, maximum=1000, hint="use a rate such as 25 or 30, or leave it out")
        check_number(self.min_gap, "--min-gap", minimum=0)
        check_number(self.crf, "--crf", minimum=0, maximum=51)
        check_number(self.face_size, "--face-size", minimum=16, maximum=4096)
        check_number(self.shard_count, "--shard-count", minimum=1)
        check_number(self.shard_bytes, "--shard-mb", above=0)
        check_number(self.max_pixels, "--max-pixels", minimum=1)
        MATCHERS.get(self.match)
        self.window.check()
        if self.faces and self.face_backend in (None, "", "default"):
            from faceexpr_cli.face.backend import resolve_backend_name

            self.face_backend = resolve_backend_name(self.face_backend)  # the folder records the real backend

    def to_json(self) -> dict[str, Any]:
        """What a resume must match (output-shaping settings only)."""
        d = asdict(self)
        for k in ("shard_count", "shard_bytes", "threads", "max_pixels"):
            d.pop(k)
        return d


class ClipInterrupted(FxError):
    """Ctrl-C: the finished shards are kept and the run resumes. An ``FxError`` so that it is one line with exit
    130 (Typer turns a bare KeyboardInterrupt into a silent exit)."""

    exit_code = 130


@dataclass
class ClipRun:
    out: Path
    stats: dict[str, Any]
    rows: list[dict]


def clip_key(source: str, index: int) -> str:
    return f"{fmt.safe_key(Path(source).stem)[:40]}-{zlib.crc32(source.encode()):08x}-{index:04d}"


def run_clip(inputs: list[ClipInput], out: str | Path, settings: ClipSettings, *, overwrite: bool = False,
             executor: ExecutorSpec | None = None) -> ClipRun:
    """``executor`` (``ray``) cuts the inputs on a cluster with the same per-input code; this process replays
    each input's clips and rows into the dataset in input order, so the shards are the local run's."""
    settings.check()
    spec = (executor or ExecutorSpec()).check()
    if not spec.distributed and spec.workers > 1:
        raise UsageError("fx clip runs its inputs in this process; --workers N needs --executor ray")
    with output_lock(out, "fx clip") as out:
        return _run_locked(inputs, out, settings, overwrite, spec)


def _run_locked(inputs: list[ClipInput], out: Path, settings: ClipSettings, overwrite: bool,
                spec: ExecutorSpec) -> ClipRun:
    started = time.time()
    writer = DatasetWriter(out, max_count=settings.shard_count, max_bytes=settings.shard_bytes,
                           settings=settings.to_json(), overwrite=overwrite)
    skipped = 0
    summary = None
    try:
        if spec.distributed:
            from faceexpr_cli.clip.job import clip_on

            todo, seen = [], set(writer.done_inputs)
            for item in inputs:  # each source once (its first row), in input order
                if item.source not in seen:
                    seen.add(item.source)
                    todo.append(item)
            skipped = len(inputs) - len(todo)
            summary = clip_on(spec, todo, settings, writer, out) if todo else None
        else:
            with progress() as bar:
                task = bar.add_task("clipping", total=len(inputs))
                for item in inputs:
                    if item.source in writer.done_inputs:
                        skipped += 1
                    else:
                        process_input(item, settings, writer)
                    bar.advance(task)
    except KeyboardInterrupt:
        writer.close_shard()  # keep what is finished; a re-run resumes
        raise
    except BaseException:
        writer.abort()
        raise
    rows = writer.close()
    shards = len(list(out.glob(f"{fmt.SHARD_PREFIX}-*.tar")))
    stats = build_stats(rows, keywords=settings.keywords, inputs_total=len(inputs), skipped=skipped,
                        wall_seconds=time.time() - started, settings=settings.to_json(), shards=shards)
    if summary is not None:
        stats["executor"] = summary.to_dict()
    write_stats(out, stats)
    return ClipRun(out, stats, [r for r in rows if r["status"] != fmt.INPUT_DONE])


def process_input(item: ClipInput, settings: ClipSettings, writer) -> None:
    """One input, start to finish, on any executor: its clips and rows go to ``writer`` (the dataset, or a
    worker's recorder); a bad input becomes a failed row, and the input is marked done only after its clips."""
    try:
        _process(item, settings, writer)
        writer.input_done(item.source)
    except FxError as exc:
        log.warning("%s", exc.one_line())
        writer.add_row(failed_row(item, exc.one_line(), getattr(exc, "reason", None)))


def failed_row(item: ClipInput, error: str, reason: str | None = None) -> dict:
    return {"status": fmt.FAILED, "source": item.source, "error": error, "reason": reason,
            "transcript": str(item.transcript) if item.transcript else None, "subject": item.fields or None}


def _process(item: ClipInput, s: ClipSettings, writer: DatasetWriter) -> None:
    from faceexpr_cli.media import probe
    from faceexpr_cli.transcripts import NoTranscriptError, load_transcript

    if item.error:
        raise DataError(item.error)
    from faceexpr_cli.media.clipping import grid_fps
    from faceexpr_cli.media.timeline import frame_times

    assert item.video is not None
    info = probe(item.video)
    if s.max_pixels is not None and info.width * info.height > s.max_pixels:  # before any frame is decoded
        raise MediaError(item.video, f"resolution {info.width}x{info.height} is above the limit "
                                     f"({s.max_pixels} pixels)", "raise --max-pixels or downscale it")
    fps = grid_fps(item.video)  # planning only: windows are then snapped to the real frame times
    table = frame_times(item.video)
    base = {"source": item.source, "transcript": str(item.transcript) if item.transcript else None,
            "subject": item.fields or None}
    if s.keywords is not None:
        tl = item.timeline
        if tl is None:
            if item.transcript is None:
                raise NoTranscriptError(item.video)
            tl = load_transcript(item.transcript)[0]
        for warning in tl.warnings:  # unordered or inverted cues were fixed; say so
            log.warning("%s: %s", tl.source or item.transcript, warning)
        hits = find_hits(tl, s.keywords, s.match, s.stem)
        windows, dropped = plan_windows(tl, hits, s.window, info.duration, fps)
        for j, d in enumerate(dropped):
            writer.add_row({**base, "status": fmt.DROPPED, "key": f"{clip_key(item.source, j)}-dropped",
                            "reason": d.reason, "keyword": d.hit["keyword"],
                            "matched_text": d.hit["matched_text"], "anchor": d.hit["anchor"],
                            "anchor_mode": s.window.anchor})
    else:
        length = s.window.frames / fps if s.window.frames else s.window.pre + s.window.post
        windows, missing = random_windows(info.duration, fps, s.random or 0, length, seed=s.seed,
                                          source=item.source, min_gap=s.min_gap, end_margin=s.window.end_margin)
        for j in range(missing):
            writer.add_row({**base, "status": fmt.DROPPED, "key": f"{clip_key(item.source, j)}-dropped",
                            "reason": NO_ROOM})
    # random windows are placed in whole frames of the planning grid; their length is the one asked for
    exact = None if s.keywords is not None or s.window.frames else s.window.pre + s.window.post
    windows, unfit = snap_to_frames(windows, table, s.window.frames, exact)
    for j, (w, reason) in enumerate(unfit):
        hit = w.hits[0] if w.hits else {}
        writer.add_row({**base, "status": fmt.DROPPED, "key": f"{clip_key(item.source, j)}-unfit", "reason": reason,
                        "keyword": hit.get("keyword"), "matched_text": hit.get("matched_text"),
                        "start": w.start, "end": w.end})
    keys = [clip_key(item.source, i) for i in range(len(windows))]
    todo = [i for i, k in enumerate(keys) if k not in writer.done_keys]
    if not todo:
        return
    if s.faces:
        from faceexpr_cli.clip.faces import cut_face_clips

        cuts = cut_face_clips(item, [windows[i] for i in todo], s, writer, base)
    else:
        from faceexpr_cli.media.clipping import cut_many

        cuts = cut_many(item.video, [(windows[i].start, windows[i].end) for i in todo], s.cut, crf=s.crf,
                        preset=s.x264_preset, threads=s.threads, fps=s.fps)
    for cut in cuts:
        i = todo[cut.index]
        meta, row = clip_record(item, windows[i], cut, s, base)
        meta.update(getattr(cut, "extra", None) or {})  # e.g. the face crop boxes
        writer.add_sample(keys[i], cut.data, meta, row)


def snap_to_frames(windows: list[Window], table, frames: int | None, length: float | None = None
                   ) -> tuple[list[Window], list[tuple[Window, str]]]:
    """Windows moved onto the source's real frame times: a window starts at its first frame and ends when its
    last frame stops being shown; ``--frames N`` takes exactly N source frames (variable frame rate included),
    ``length`` (s) replaces the planned end. Windows that hold no frame, or fewer than N before the video ends,
    come back with the reason."""
    from faceexpr_cli.clip.windows import TOO_SHORT, WINDOW_PAST_END

    kept, unfit = [], []
    for w in windows:
        i, j = table.span(w.start, w.start + length if length else w.end)
        if frames:
            j = i + frames
        if j > len(table):
            unfit.append((w, WINDOW_PAST_END))
        elif j <= i:
            unfit.append((w, TOO_SHORT))
        else:
            kept.append(Window(float(table.times[i]), table.span_end(i, j), w.anchor, w.hits, w.kind))
    return kept, unfit


def clip_record(item: ClipInput, w: Window, cut, s: ClipSettings, base: dict) -> tuple[dict, dict]:
    """The clip's JSON metadata and its index row."""
    keywords = [h["keyword"] for h in w.hits]
    matched = [h["matched_text"] for h in w.hits]
    duration = cut.duration
    meta = {
        "source": item.source, "transcript": base["transcript"], "mode": "random" if s.random else "keywords",
        "keyword": keywords[0] if keywords else None, "keywords": keywords,
        "matched_text": matched[0] if matched else None, "hits": w.hits,
        "anchor_mode": s.window.anchor if s.keywords is not None else None, "anchor": round(w.anchor, 4),
        "offset": s.window.offset, "window": [round(w.start, 4), round(w.end, 4)],
        "actual_start": round(cut.actual_start, 4), "snap": round(cut.snap, 4), "cut": s.cut,
        "fps": cut.fps, "frames": cut.frames, "width": cut.width, "height": cut.height,
        "duration": round(duration, 4), "actual_end": round(cut.actual_end, 4), "fps_mode": cut.fps_mode,
        "has_audio": cut.has_audio, "audio_coverage": cut.audio_coverage, "subject": item.fields,
    }
    row = {**base, "keyword": SEP.join(keywords) or None, "matched_text": SEP.join(matched) or None,
           "anchor_mode": meta["anchor_mode"], "anchor": w.anchor, "start": w.start, "end": w.end,
           "actual_start": cut.actual_start, "snap": cut.snap, "duration": duration, "frames": cut.frames,
           "fps": cut.fps, "has_audio": cut.has_audio, "audio_coverage": cut.audio_coverage,
           "fps_mode": cut.fps_mode}
    return meta, row
