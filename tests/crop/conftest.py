from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def bad_inputs(sample_video, tmp_path_factory):
    """A directory with every kind of bad input next to one good video; returns (dir, expected status by name)."""
    from faceexpr_cli.media import extract_audio, read_frames, run_ffmpeg, write_video

    d = tmp_path_factory.mktemp("bad_inputs")
    data = sample_video.path.read_bytes()
    (d / "good.mp4").write_bytes(data)
    (d / "truncated.mp4").write_bytes(data[: len(data) * 2 // 3])
    (d / "corrupt.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    (d / "notes.txt").write_text("not a video\n")
    wav = extract_audio(sample_video.path, d.parent / "voice.wav")
    run_ffmpeg(["-i", str(wav), "-c:a", "aac", str(d / "audio_only.mp4")], "audio-only fixture")
    first = read_frames(sample_video.path, max_frames=1)
    write_video(d / "one_frame.mp4", first, fps=25)
    rng = np.random.default_rng(1)
    noise = [np.full((64, 96, 3), 90 + i, np.uint8) + rng.integers(0, 20, (64, 96, 3), dtype=np.uint8)
             for i in range(30)]
    write_video(d / "no_face.mp4", noise, fps=25)
    write_video(d / "huge.mp4", [np.full((4352, 4352, 3), 128, np.uint8)], fps=25, preset="ultrafast")
    expected = {"good.mp4": "ok", "truncated.mp4": "error", "corrupt.mp4": "error", "notes.txt": "skipped",
                "audio_only.mp4": "error", "one_frame.mp4": "no_clip", "no_face.mp4": "no_face", "huge.mp4": "error"}
    return d, expected


@pytest.fixture(scope="module")
def small_videos(tmp_path_factory):
    """Four 2 s, 240x192 talking heads (one face each) in one directory."""
    from faceexpr_cli.samples import make_talking_head

    d = tmp_path_factory.mktemp("small_videos")
    for i in range(4):
        make_talking_head(d / f"v{i}.mp4", seconds=2.0, seed=i, width=240, height=192)
    return d
