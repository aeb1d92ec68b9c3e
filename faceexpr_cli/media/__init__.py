"""Media I/O: the only place that runs ffmpeg. Probe and read with PyAV, write and cut with ffmpeg."""

from faceexpr_cli.media.cut import CutResult, cut, extract_audio, keyframe_times
from faceexpr_cli.media.ffmpeg import ffmpeg_info, find_ffmpeg, run_ffmpeg
from faceexpr_cli.media.images import read_image, write_image
from faceexpr_cli.media.probe import AudioInfo, VideoInfo, probe
from faceexpr_cli.media.reader import Frame, iter_frames, read_frames
from faceexpr_cli.media.writer import VideoWriter, write_video

__all__ = [
    "AudioInfo",
    "CutResult",
    "Frame",
    "VideoInfo",
    "VideoWriter",
    "cut",
    "extract_audio",
    "ffmpeg_info",
    "find_ffmpeg",
    "iter_frames",
    "keyframe_times",
    "probe",
    "read_frames",
    "read_image",
    "run_ffmpeg",
    "write_image",
    "write_video",
]
