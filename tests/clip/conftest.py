"""A frame-coded video with a beeping tone and a YouTube-style word-timed VTT beside it."""

from __future__ import annotations

import pytest

# Words with times off the 25 fps frame grid; "smile" twice, "look surprised" once, "smiled" once.
WORDS = [
    ("okay", 0.12, 0.40), ("now", 0.45, 0.70), ("please", 0.75, 1.05), ("smile", 1.13, 1.50),
    ("for", 1.55, 1.70), ("me", 1.72, 1.95), ("and", 2.30, 2.45), ("then", 2.50, 2.70),
    ("look", 2.87, 3.10), ("surprised", 3.15, 3.62), ("great", 3.90, 4.20), ("you", 4.25, 4.40),
    ("smiled", 4.45, 4.80), ("nicely", 4.85, 5.10), ("smile", 5.37, 5.60), ("again", 5.65, 5.90),
]


@pytest.fixture(scope="session")
def talk(tmp_path_factory):
    """talk.mp4 (6 s, 25 fps, 192x96, frame codes + beeps) with talk.en.vtt beside it."""
    from faceexpr_cli.clip.synthetic import make_coded_video
    from faceexpr_cli.transcripts.vtt_writer import write_youtube_vtt

    folder = tmp_path_factory.mktemp("talk")
    video = make_coded_video(folder / "talk.mp4", seconds=6.0, fps=25.0)
    write_youtube_vtt(folder / "talk.en.vtt", WORDS, words_per_line=4)
    return video


@pytest.fixture(scope="session")
def face_talks(sample_video, two_face_video, tmp_path_factory):
    """The shared one-face and two-face talking heads, each with a word-timed VTT saying "smile" at 1.0 s."""
    import shutil

    from faceexpr_cli.transcripts.vtt_writer import write_youtube_vtt

    folder = tmp_path_factory.mktemp("faces")
    words = [("please", 0.2, 0.6), ("smile", 1.0, 1.3), ("now", 1.4, 1.6), ("smile", 2.0, 2.3)]
    out = []
    for name, th in (("one", sample_video), ("two", two_face_video)):
        video = folder / f"{name}.mp4"
        shutil.copy(th.path, video)
        write_youtube_vtt(folder / f"{name}.en.vtt", words)
        out.append(video)
    return out


@pytest.fixture(scope="session")
def long_talk(tmp_path_factory):
    """12 s of frame-coded video (no transcript): enough work to interrupt a run, or to start a second one."""
    from faceexpr_cli.clip.synthetic import make_coded_video

    return make_coded_video(tmp_path_factory.mktemp("long") / "long.mp4", seconds=12.0, fps=25.0)
