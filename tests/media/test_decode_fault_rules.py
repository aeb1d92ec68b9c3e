"""What the reader does when the decoder fails part-way or a stream's first shown frame comes after the stream's
start (leading frames the decoder cannot show, as in a stream-copied cut of open-GOP footage), and what a writer's
abort does to the audio it reads. The decoder's output is altered through a thin wrapper around the real
container; everything else is the real file."""

from __future__ import annotations

import av
import numpy as np
import pytest

from faceexpr_cli.errors import MediaError
from faceexpr_cli.media import iter_frames, reader
from faceexpr_cli.media.audio import AudioCursor
from faceexpr_cli.media.writer import VideoWriter, temp_path
from faceexpr_cli.samples.talking_head import write_wav


def level(img: np.ndarray) -> int:
    return int(round(float(img.mean()) / 20))


@pytest.fixture(scope="module")
def ten(tmp_path_factory):
    """10 frames at 10 fps, frame k grey 20 k."""
    path = tmp_path_factory.mktemp("faults") / "ten.mp4"
    w = VideoWriter(path, 10)
    for k in range(10):
        w.write(np.full((32, 48, 3), 20 * k, np.uint8), time=k / 10)
    w.close(end=1.0)
    return path


class _Altered:
    """The real container, with its decoder failing before frame ``fail_at`` or its frames shown ``late`` s later."""

    def __init__(self, container, *, fail_at: int | None = None, late: float = 0.0):
        self.container, self.fail_at, self.late = container, fail_at, late

    def __getattr__(self, name):
        return getattr(self.container, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.container.close()
        return False

    def decode(self, vs):
        shift = int(round(self.late / vs.time_base))
        for k, frame in enumerate(self.container.decode(vs)):
            if k == self.fail_at:
                raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")
            frame.pts += shift
            yield frame


def _alter(monkeypatch, **kw):
    real = reader.open_container
    monkeypatch.setattr(reader, "open_container", lambda path: _Altered(real(path), **kw))


@pytest.mark.parametrize("fps", [None, 20])
def test_a_decoder_failing_mid_stream_names_the_frame_it_stopped_at(ten, monkeypatch, fps):
    _alter(monkeypatch, fail_at=4)
    got = []
    with pytest.raises(MediaError) as err:
        for f in iter_frames(ten, fps=fps):
            got.append(level(f.image))
    # at 20 fps frame 3 is still held (its slots come when frame 4 arrives): 3 source frames, 6 output frames
    want = [0, 1, 2, 3] if fps is None else [0, 0, 1, 1, 2, 2]
    assert got == want
    assert err.value.message == (f"{ten}: decoding stopped at frame {len(want)} "
                                 "(Invalid data found when processing input)")
    assert err.value.hint == "is it truncated?"


@pytest.mark.timeout(30)
def test_resampling_shows_the_first_frame_before_a_late_first_frame(ten, monkeypatch):
    _alter(monkeypatch, late=0.2)  # frames shown at 0.2, 0.3, ... 1.1 s on a stream that starts at 0
    frames = list(iter_frames(ten, fps=20, max_frames=12))
    assert [f.time for f in frames] == pytest.approx([k / 20 for k in range(12)])
    # 0 .. 0.25 s: the first frame (shown from 0.2 s, nothing before it); then each frame for two slots
    assert [level(f.image) for f in frames] == [0] * 6 + [1, 1, 2, 2, 3, 3]
    assert [f.index for f in frames] == list(range(12))


@pytest.mark.parametrize(("fail_at", "want"), [(4, [0, 1, 2, 3]), (0, None)])
def test_a_clip_whose_decoder_fails_gives_the_frames_before_or_names_the_clip(ten, monkeypatch, fail_at, want):
    from faceexpr_cli.media import clip_decode

    real = clip_decode._open
    monkeypatch.setattr(clip_decode, "_open", lambda source, what: _Altered(real(source, what), fail_at=fail_at))
    if want is None:
        with pytest.raises(MediaError) as err:
            clip_decode.decode_clip(ten, name="k1")
        assert err.value.message.startswith("k1: cannot decode (") and "Invalid data found" in err.value.message
        return
    got = clip_decode.decode_clip(ten, audio=False)  # a truncated clip gives what it has; the caller pads
    assert [level(f) for f in got.frames] == want


# -- a writer's abort and its audio -------------------------------------------------------------------------
def _wav(tmp_path):
    t = np.arange(16000) / 16000
    return write_wav(tmp_path / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)


def test_an_abort_closes_the_audio_it_opened_and_leaves_a_callers_cursor_open(tmp_path):
    wav = _wav(tmp_path)
    own = VideoWriter(tmp_path / "own.mp4", 10, audio=wav)
    for i in range(12):
        own.write(np.full((32, 32, 3), 20 * (i % 10), np.uint8))
    cursor = own._cursor
    own.abort()  # no error, no file, and the file the writer opened itself is closed
    assert not (tmp_path / "own.mp4").exists() and not temp_path(tmp_path / "own.mp4").exists()
    with pytest.raises(AssertionError, match="Container is not open"):  # PyAV refuses a closed container
        next(iter(cursor._container.decode(cursor.stream)))

    shared = AudioCursor(wav)
    try:
        w = VideoWriter(tmp_path / "shared.mp4", 10, audio=shared)
        for i in range(12):
            w.write(np.full((32, 32, 3), 20 * (i % 10), np.uint8))
        w.abort()
        wave = shared.read(0.5, 0.1)  # the caller's cursor still reads the source: 1600 samples of the tone
        t = 0.5 + np.arange(1600) / 16000
        assert np.abs(wave[0, :1600] - 0.3 * np.sin(2 * np.pi * 440 * t)).max() < 0.01
    finally:
        shared.close()
