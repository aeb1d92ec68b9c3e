"""Test footage that behaves like what phones and cameras write, built from the talking-head sample.

Generated videos are tidy: constant frame rate, one time base, audio as long as the video, no edit list. Real
footage is not, and each builder here reproduces one way it differs:

- ``make_phone_vfr``: an iPhone-style HEVC ``.mov``: variable frame rate (30 fps, then 24 fps), a 1/600 time base
  (so the nominal rate ffmpeg guesses is 120 fps), a rotation in the display matrix, 48 kHz stereo AAC.
- ``make_edit_list``: an MP4 cut by stream copy between key frames, so its first packets are marked discard by an
  edit list (ffmpeg decodes fewer frames than the sample table holds, without error).
- ``make_short_audio``: a video whose audio stream ends well before the video.
- ``make_face_exit``: the face slides out of the frame mid-video, stays out, and comes back.
- ``make_wide_edge``: a 16:9 video with the face near the left edge.

Every builder returns a ``Footage`` with the times the test needs to check against. The audio is a chirp whose
frequency rises linearly with source time (``chirp_freq``), so a test can tell from a clip's audio alone which
part of the source it came from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

CHIRP_F0 = 300.0  # Hz at t = 0
CHIRP_RATE = 100.0  # Hz per second


def chirp_freq(t: float | np.ndarray) -> float | np.ndarray:
    """The footage audio's instantaneous frequency at source time ``t`` (s)."""
    return CHIRP_F0 + CHIRP_RATE * np.asarray(t)


def chirp(t: np.ndarray) -> np.ndarray:
    """A linear chirp: frequency ``chirp_freq(t)``, amplitude 0.3."""
    return 0.3 * np.sin(2 * np.pi * (CHIRP_F0 * t + 0.5 * CHIRP_RATE * t * t))


@dataclass
class Footage:
    path: Path
    frame_times: np.ndarray  # presentation times (s) of the frames a player shows, from 0
    duration: float  # video duration (s): last frame time + its duration
    audio_duration: float  # 0 when there is no audio
    width: int  # display size (after rotation)
    height: int
    face_visible: np.ndarray | None = None  # (T,) bool: the face is fully inside the frame
    chirp_offset: float = 0.0  # the chirp's time at the file's 0 s (a cut file starts later in the chirp)
    extra: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return len(self.frame_times)


def _ffmpeg(args: list[str], what: Path) -> None:
    from faceexpr_cli.media.ffmpeg import run_ffmpeg

    run_ffmpeg(args, what)


def _render(path: Path, seconds: float, fps: float, width: int, height: int, **kwargs) -> np.ndarray:
    """Talking-head frames (T, H, W, 3) at a constant ``fps`` (rendered once to ``path``, then decoded)."""
    from faceexpr_cli.media.reader import read_frames
    from faceexpr_cli.samples.talking_head import make_talking_head

    make_talking_head(path, seconds=seconds, fps=fps, width=width, height=height, audio=False, crf=12, **kwargs)
    frames = read_frames(path)
    path.unlink()
    return frames


def _encode(path: Path, frames: list[np.ndarray], pts: list[int], time_base: Fraction, *, codec: str = "libx264",
            fmt: str = "mp4", audio: np.ndarray | None = None, audio_rate: int = 48000, gop: int = 25,
            last_duration: int | None = None) -> None:
    """Encode RGB frames with explicit timestamps (``pts`` in ``time_base``) and an optional (C, N) waveform."""
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w", format=fmt) as out:
        vs = out.add_stream(codec, rate=round(1 / (time_base * (pts[1] - pts[0]))))
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.time_base = time_base
        vs.codec_context.time_base = time_base  # keep the timestamps as given (no rounding to 1/rate)
        opts = {"g": str(gop), "bf": "0" if codec == "libx264" else "2"}
        if codec == "libx265":
            opts["x265-params"] = f"log-level=error:keyint={gop}:min-keyint={gop}"
            vs.codec_tag = "hvc1"
        else:
            opts["crf"] = "16"
        vs.options = opts
        astream = None
        if audio is not None:
            astream = out.add_stream("aac", rate=audio_rate)
            astream.layout = "stereo" if audio.shape[0] == 2 else "mono"
        for k, (img, p) in enumerate(zip(frames, pts, strict=True)):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24").reformat(format="yuv420p")
            frame.pts = p
            frame.time_base = time_base
            nxt = pts[k + 1] if k + 1 < len(pts) else p + (last_duration or (pts[-1] - pts[-2]))
            frame.duration = nxt - p
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        if astream is not None:
            size = 1024
            data = np.ascontiguousarray(audio, dtype=np.float32)
            for s in range(0, data.shape[1], size):
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(data[:, s:s + size]), format="fltp",
                                                layout=astream.layout.name)
                af.sample_rate, af.pts, af.time_base = audio_rate, s, Fraction(1, audio_rate)
                out.mux(astream.encode(af))
            out.mux(astream.encode(None))


def _wave(seconds: float, rate: int, channels: int) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return np.repeat(chirp(t)[None].astype(np.float32), channels, axis=0)


def make_phone_vfr(out: str | Path, *, width: int = 320, height: int = 240, seg_seconds: tuple[float, float] = (2.0, 2.0),
                   rotation: int = 90) -> Footage:
    """HEVC .mov, 1/600 time base, 30 fps for ``seg_seconds[0]`` then 24 fps, display rotation, 48 kHz stereo.

    ``width`` x ``height`` is the display size (portrait when ``rotation`` is 90 and width < height is wanted).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    total = sum(seg_seconds)
    upright = _render(out.with_name(f".{out.stem}.src.mp4"), total, 30.0, width, height)
    n30, n24 = round(seg_seconds[0] * 30), round(seg_seconds[1] * 24)
    pts = [20 * i for i in range(n30)] + [20 * n30 + 25 * i for i in range(n24)]
    times = np.array(pts) / 600.0
    picks = np.clip(np.round(times * 30).astype(int), 0, len(upright) - 1)
    k = (rotation // 90) % 4
    coded = [np.ascontiguousarray(np.rot90(upright[i], k=-k)) for i in picks]  # the player turns it back
    tmp = out.with_name(f".{out.stem}.tmp.mov")
    _encode(tmp, coded, pts, Fraction(1, 600), codec="libx265", fmt="mov", audio=_wave(total, 48000, 2))
    cmd = ["-display_rotation", str(rotation)] if rotation else []
    cmd += ["-i", str(tmp), "-map", "0", "-c", "copy", "-video_track_timescale", "600", "-tag:v", "hvc1", str(out)]
    _ffmpeg(cmd, out)
    tmp.unlink()
    return Footage(out, times, float(times[-1] + 1 / 24), total, width, height,
                   extra={"segments": [(0.0, seg_seconds[0], 30.0), (seg_seconds[0], total, 24.0)]})


def make_edit_list(out: str | Path, *, seconds: float = 4.0, cut_at: float = 0.12, fps: float = 25.0) -> Footage:
    """An MP4 stream-copied from ``cut_at`` s of a CFR source with 1 s GOPs: the packets between the key frame
    before ``cut_at`` and ``cut_at`` stay in the file but an edit list marks them discard."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frames = _render(out.with_name(f".{out.stem}.src.mp4"), seconds, fps, 320, 240)
    src = out.with_name(f".{out.stem}.full.mp4")
    _encode(src, list(frames), list(range(len(frames))), Fraction(1, int(fps)), audio=_wave(seconds, 48000, 1),
            gop=int(fps))
    _ffmpeg(["-ss", f"{cut_at}", "-i", str(src), "-c", "copy", str(out)], out)
    src.unlink()
    first = math.ceil(cut_at * fps - 1e-6)
    times = (np.arange(first, len(frames)) - first) / fps
    return Footage(out, times, float(times[-1] + 1 / fps), seconds - cut_at, 320, 240, chirp_offset=cut_at,
                   extra={"cut_at": cut_at, "discarded": first})


def make_short_audio(out: str | Path, *, seconds: float = 4.0, audio_seconds: float = 1.6, fps: float = 25.0,
                     width: int = 320, height: int = 256) -> Footage:
    """H.264 + AAC MP4 whose audio stops after ``audio_seconds`` while the video goes on."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frames = _render(out.with_name(f".{out.stem}.src.mp4"), seconds, fps, width, height)
    _encode(out, list(frames), list(range(len(frames))), Fraction(1, int(fps)), audio=_wave(audio_seconds, 48000, 1))
    times = np.arange(len(frames)) / fps
    return Footage(out, times, len(frames) / fps, audio_seconds, width, height)


def _shift_frames(frames: np.ndarray, dx: np.ndarray) -> np.ndarray:
    import cv2

    h, w = frames.shape[1:3]
    out = []
    for img, d in zip(frames, dx, strict=True):
        m = np.array([[1, 0, d], [0, 1, 0]], np.float32)
        out.append(cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return np.stack(out)


def make_face_exit(out: str | Path, *, seconds: float = 4.0, fps: float = 25.0, width: int = 320, height: int = 256,
                   leave: tuple[float, float] = (1.2, 1.8), back: tuple[float, float] = (2.8, 3.4)) -> Footage:
    """The face slides off the right edge during ``leave``, the frame shows background until ``back`` brings it
    back. ``face_visible`` marks the frames whose face box lies fully inside the frame."""
    from faceexpr_cli.samples.talking_head import make_talking_head

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.src.mp4")
    truth = make_talking_head(tmp, seconds=seconds, fps=fps, width=width, height=height, audio=False, crf=12)
    from faceexpr_cli.media.reader import read_frames

    frames = read_frames(tmp)
    tmp.unlink()
    t = np.arange(len(frames)) / fps
    away = width * 1.0
    dx = np.interp(t, [0, leave[0], leave[1], back[0], back[1], seconds], [0, 0, away, away, 0, 0])
    # Outside the picture the shifted frame shows plain background, not a reflection of the face.
    import cv2

    shifted = []
    bg = np.full_like(frames[0], 96)
    for img, d in zip(frames, dx, strict=True):
        m = np.array([[1, 0, d], [0, 1, 0]], np.float32)
        moved = cv2.warpAffine(img, m, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=(96, 96, 96))
        mask = cv2.warpAffine(np.ones(img.shape[:2], np.uint8), m, (width, height), flags=cv2.INTER_NEAREST)
        shifted.append(np.where(mask[..., None] > 0, moved, bg))
    box = truth.actors[0].face_box.copy()
    box[:, [0, 2]] += dx[:, None]
    visible = (box[:, 0] >= 0) & (box[:, 2] <= width)
    _encode(out, shifted, list(range(len(frames))), Fraction(1, int(fps)), audio=_wave(seconds, 48000, 1))
    return Footage(out, t, len(frames) / fps, seconds, width, height, face_visible=visible,
                   extra={"face_box": box, "leave": leave, "back": back})


def make_wide_edge(out: str | Path, *, seconds: float = 3.0, fps: float = 25.0, width: int = 640, height: int = 360,
                   face_x: float = 0.14) -> Footage:
    """16:9 footage with the face centred at ``face_x`` of the width, so a square crop around it leaves the frame."""
    from faceexpr_cli.samples.talking_head import make_talking_head

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.src.mp4")
    truth = make_talking_head(tmp, seconds=seconds, fps=fps, width=width, height=height, audio=False, crf=12,
                              face_fraction=0.45)
    from faceexpr_cli.media.reader import read_frames

    frames = read_frames(tmp)
    tmp.unlink()
    d = face_x * width - width / 2
    shifted = _shift_frames(frames, np.full(len(frames), d))
    box = truth.actors[0].face_box.copy()
    box[:, [0, 2]] += d
    t = np.arange(len(frames)) / fps
    _encode(out, list(shifted), list(range(len(frames))), Fraction(1, int(fps)), audio=_wave(seconds, 48000, 1))
    return Footage(out, t, len(frames) / fps, seconds, width, height, face_visible=np.ones(len(frames), bool),
                   extra={"face_box": box})
