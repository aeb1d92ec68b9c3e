"""Generated videos with the awkward properties real footage has: VFR, rotation, HEVC, no audio, truncation."""

from __future__ import annotations

import numpy as np
import pytest

from faceexpr_cli.media import run_ffmpeg, write_video


def index_frames(n: int, w: int = 96, h: int = 64) -> list[np.ndarray]:
    """Frames that carry their own index: the grey level of the bottom half is 5 * index; a red top-left block
    marks the picture's orientation."""
    frames = []
    for i in range(n):
        f = np.zeros((h, w, 3), np.uint8)
        f[: h // 3, : w // 4, 0] = 255
        f[h // 2 :, :, :] = 5 * i
        frames.append(f)
    return frames


def frame_index(img: np.ndarray) -> int:
    h = img.shape[0]
    return int(round(float(img[h // 2 + 4 :, :, :].mean()) / 5))


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("core_media")
    run_ffmpeg(["-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-ac", "1", str(d / "tone.wav")], "tone")
    write_video(d / "cfr.mp4", index_frames(50), 25, audio=d / "tone.wav")
    write_video(d / "silent.mp4", index_frames(25), 25)
    return d


@pytest.fixture(scope="session")
def vfr_video(media_dir):
    """Frames 0-9 at 10 fps, then 10-29 at 40 fps (timestamps passed through unchanged)."""
    src = media_dir / "cfr.mp4"
    out = media_dir / "vfr.mp4"
    expr = "if(lt(N,10),N*0.1,1.0+(N-10)*0.025)/TB"
    run_ffmpeg(["-i", str(src), "-vf", f"select=lt(n\\,30),settb=1/1000,setpts='{expr}'", "-fps_mode", "passthrough", "-enc_time_base:v", "1:1000",
                "-an", "-c:v", "libx264", "-preset", "ultrafast", str(out)], out)
    return out


@pytest.fixture(scope="session")
def rotated_video(media_dir):
    out = media_dir / "rotated.mp4"
    run_ffmpeg(["-display_rotation", "90", "-i", str(media_dir / "cfr.mp4"), "-c", "copy", str(out)], out)
    return out


@pytest.fixture(scope="session")
def hevc_video(media_dir):
    out = media_dir / "hevc.mp4"
    run_ffmpeg(["-i", str(media_dir / "cfr.mp4"), "-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
                "log-level=error", "-tag:v", "hvc1", "-c:a", "copy", str(out)], out)
    return out


@pytest.fixture(scope="session")
def truncated_video(media_dir):
    whole = media_dir / "moov_at_end.mp4"
    run_ffmpeg(["-i", str(media_dir / "cfr.mp4"), "-c", "copy", str(whole)], whole)  # no faststart
    out = media_dir / "truncated.mp4"
    data = whole.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    return out


@pytest.fixture(scope="session")
def truncated_faststart(media_dir, sample_video):
    """moov at the front, half the media data gone: it opens, then decoding runs out."""
    out = media_dir / "truncated_faststart.mp4"
    data = sample_video.path.read_bytes()
    out.write_bytes(data[: int(len(data) * 0.6)])
    return out
