"""Probing media with PyAV: duration, frame rate, frame count, display size, rotation, audio streams."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

from faceexpr_cli.errors import MediaError, MissingFileError


@dataclass
class AudioInfo:
    index: int
    codec: str
    sample_rate: int
    channels: int
    duration: float | None


@dataclass
class VideoInfo:
    """What a video holds. ``width``/``height`` are the display size, after rotation."""

    path: str
    container: str
    codec: str
    width: int
    height: int
    coded_width: int
    coded_height: int
    rotation: int
    fps: float
    duration: float
    frame_count: int
    is_vfr: bool
    pix_fmt: str | None
    bit_rate: int | None
    start_time: float
    audio: list[AudioInfo] = field(default_factory=list)

    @property
    def has_audio(self) -> bool:
        return bool(self.audio)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["has_audio"] = self.has_audio
        return d


def check_readable(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise MissingFileError(path, "video")
    if path.is_dir():
        raise MediaError(path, "is a directory, not a media file")
    if path.stat().st_size == 0:
        raise MediaError(path, "is an empty file (0 bytes)", "re-download or re-export it")
    return path


def open_container(path: str | Path):
    import av

    path = check_readable(path)
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise MediaError(path, f"not a readable media file ({_reason(exc)})", "is it truncated or not a video?") from exc


def _reason(exc: Exception) -> str:
    strerror = getattr(exc, "strerror", None)  # PyAV's message without "[Errno N]" and the file name it ends with
    if strerror:
        return str(strerror)
    text = str(exc)
    return text.split(":", 2)[-1].strip().strip("'") if "]" in text else text


def probe(path: str | Path, count_frames: bool = True) -> VideoInfo:
    """Probe a video. Decodes only the first frame (for rotation and to prove the file decodes).

    ``count_frames`` demuxes the video packets (no decoding) when the container does not state a frame count,
    and to tell variable from constant frame rate.
    """
    import av

    with open_container(path) as container:
        vstreams = container.streams.video
        if not vstreams:
            kinds = sorted({s.type for s in container.streams}) or ["nothing"]
            raise MediaError(path, f"has no video stream (it holds {', '.join(kinds)})", "pass a video file")
        vs = vstreams[0]
        cc = vs.codec_context
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        fps = float(rate) if rate else 0.0
        audio = [
            AudioInfo(
                index=a.index,
                codec=a.codec_context.name,
                sample_rate=a.codec_context.sample_rate or 0,
                channels=a.codec_context.channels if hasattr(a.codec_context, "channels") else a.layout.nb_channels,
                duration=float(a.duration * a.time_base) if a.duration and a.time_base else None,
            )
            for a in container.streams.audio
        ]
        rotation = 0
        try:
            vs.thread_type = "AUTO"
            for frame in container.decode(vs):
                rotation = int(getattr(frame, "rotation", 0) or 0) % 360
                break
            else:
                raise MediaError(path, "has a video stream but no decodable frames", "is it truncated?")
        except av.error.FFmpegError as exc:
            raise MediaError(path, f"cannot decode the first frame ({_reason(exc)})", "is it truncated?") from exc

        start = float(vs.start_time * vs.time_base) if vs.start_time is not None and vs.time_base else 0.0
        duration = 0.0
        if vs.duration and vs.time_base:
            duration = float(vs.duration * vs.time_base)
        elif container.duration:
            duration = container.duration / 1_000_000
        frame_count = int(vs.frames or 0)
        is_vfr = False
        if count_frames:
            from faceexpr_cli.media.timeline import frame_times

            ft = frame_times(path)
            # Truncated means the demuxed stream ends early; packets an edit list discards are present, not frames.
            if ft.declared and ft.demuxed < ft.declared - 1:
                raise MediaError(path, f"is truncated: {ft.demuxed} of {ft.declared} frames are present",
                                 "re-download or re-export it")
            frame_count, is_vfr = len(ft), ft.is_vfr
            if ft.end > 0:
                duration = ft.end
            if is_vfr:  # no single rate describes the file: report the average, time everything by timestamps
                fps = ft.average_fps
        if frame_count == 0 and fps > 0:
            frame_count = round(duration * fps)
        if rotation in (90, 270):
            width, height = cc.height, cc.width
        else:
            width, height = cc.width, cc.height
        return VideoInfo(
            path=str(path),
            container=container.format.name,
            codec=cc.name,
            width=width,
            height=height,
            coded_width=cc.width,
            coded_height=cc.height,
            rotation=rotation,
            fps=fps,
            duration=duration,
            frame_count=frame_count,
            is_vfr=is_vfr,
            pix_fmt=cc.pix_fmt,
            bit_rate=cc.bit_rate or container.bit_rate or None,
            start_time=start,
            audio=audio,
        )


def probe_for_processing(path: str | Path, max_pixels: int | None = None, hint: str = "downscale it first") -> VideoInfo:
    """``probe`` plus what a frame pipeline needs: a frame rate, and at most ``max_pixels`` per frame."""
    info = probe(path)
    if max_pixels is not None and info.width * info.height > max_pixels:
        raise MediaError(path, f"resolution {info.width}x{info.height} is above the limit ({max_pixels} pixels)", hint)
    if not info.fps:
        raise MediaError(path, "has no frame rate", "re-encode it")
    return info


def as_fraction(value: float) -> Fraction:
    return Fraction(value).limit_denominator(1001)
