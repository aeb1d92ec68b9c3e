"""The second decode of crop/process.py (write_clips, _finish, the sidecar) with a fake decoder and writer.

The fake decoder yields frames whose pixels say their index, at known times; the fake writer records every
frame, time and argument, and writes a file of known size on close; the clip check (verify_clip) is replaced
so only the code under test decides. Expected spans, frame lists and embeddings are computed here.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import faceexpr_cli.media.verify  # noqa: F401  (loaded, so its verify_clip can be replaced)
from faceexpr_cli.crop import process as pr
from faceexpr_cli.crop.inputs import Item
from faceexpr_cli.crop.options import CropOptions
from faceexpr_cli.errors import MediaError
from faceexpr_cli.face.track import Track, Tracks
from faceexpr_cli.media.reader import Frame
from faceexpr_cli.media.timeline import FrameTimes

FPS = 25.0
W, H = 64, 48
ITEM = Item("/v/talk.mp4")


class _Info:
    fps = FPS
    width, height = W, H
    has_audio = True


def _image(i):
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 0] = i  # red says the frame index
    img[..., 1] = np.arange(W)[None, :]  # green the column
    img[..., 2] = np.arange(H)[:, None]  # blue the row
    return img


class _Writer:
    made: list[_Writer] = []

    def __init__(self, path, fps, crf=None, preset=None, audio=None, audio_start=None, audio_duration=None,
                 constant_fps=None):
        self.path, self.fps, self.crf, self.preset = path, fps, crf, preset
        self.audio, self.audio_start, self.audio_duration, self.constant_fps = audio, audio_start, audio_duration, \
            constant_fps
        self.images, self.times, self.closed, self.aborted = [], [], None, False
        _Writer.made.append(self)

    def write(self, image, time):
        self.images.append(image)
        self.times.append(time)

    def close(self, end=None):
        self.closed = end
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_bytes(b"x" * (100 + len(self.images)))

    def abort(self):
        self.aborted = True

    @property
    def frames(self):
        return len(self.images)

    @property
    def duration(self):
        return self.frames / (self.constant_fps or FPS)

    @property
    def has_audio(self):
        return self.audio is not None

    audio_coverage = 0.75


class _Backend:
    embedding_dim = 2

    def __init__(self):
        self.calls = []

    def embed(self, image, faces):
        idx = int(image[0, 0, 0])
        self.calls.append((idx, faces[0].bbox.tolist(), faces[0].score))
        faces[0].embedding = np.array([float(idx), 1.0])


def _track(track_id, first, n, box):
    frames = np.arange(first, first + n, dtype=np.int64)
    boxes = np.repeat(np.array([box], np.float32), n, 0)
    return Track(track_id=track_id, frames=frames, times=frames / FPS, boxes=boxes, raw_boxes=boxes + 0.5,
                 scores=np.linspace(0.5, 0.9, n).astype(np.float32), detected=np.ones(n, bool),
                 kps5=np.full((n, 5, 2), np.nan, np.float32), frame_period=1 / FPS)


@pytest.fixture
def fake_media(monkeypatch, tmp_path):
    """Returns a dict: set ``n`` (frames the stream really has) and read ``calls`` (the decoder's arguments)."""
    import faceexpr_cli.media as media

    state = {"n": 20, "calls": [], "extra_times": [0.02]}

    def iter_frames(source, start=None, end=None, **kw):
        state["calls"].append({"source": source, "start": start, "end": end, **kw})
        times = sorted([i / FPS for i in range(state["n"])] + state["extra_times"])
        for t in times:
            if (start is not None and t < start - 1e-9) or (end is not None and t >= end - 1e-9):
                continue
            i = round(t * FPS) if abs(t * FPS - round(t * FPS)) < 1e-6 else 255
            yield Frame(i, t, _image(i))

    monkeypatch.setattr(media, "iter_frames", iter_frames)
    monkeypatch.setattr(pr, "frame_times", lambda source: FrameTimes(np.arange(40) / FPS, np.full(40, 1 / FPS)))
    monkeypatch.setattr(pr, "VideoWriter", _Writer)
    monkeypatch.setattr(sys.modules["faceexpr_cli.media.verify"], "verify_clip", lambda *a, **k: None)
    _Writer.made = []
    return state


def _plans(*tracks_and_boxes):
    return [pr.ClipPlan(t, 0, np.repeat(np.array([crop], np.float32), len(t), 0), None)
            for t, crop in tracks_and_boxes]


def _tracks(plans, n=40):
    return Tracks([p.track for p in plans], np.arange(n), np.arange(n) / FPS, FPS)


def _opts(**kw):
    return CropOptions(backend="dlib", size=20, fill="black", **kw)


def test_every_clip_gets_its_frames_times_audio_and_file(fake_media, tmp_path):
    a = _track(0, 0, 10, (10, 10, 30, 30))
    b = _track(1, 5, 15, (0, 20, 20, 40))
    plans = _plans((a, (10, 10, 30, 30)), (b, (-5, 20, 15, 40)))  # b's square is 5 px left of the frame
    plans.append(pr.ClipPlan(_track(2, 2, 5, (0, 0, 10, 10)), 0, np.zeros((5, 4), np.float32), None,
                             status="dropped"))
    backend = _Backend()
    pr.write_clips(ITEM, _Info(), plans, _tracks(plans), tmp_path, _opts(crf=23, preset="fast"), backend)
    assert fake_media["calls"] == [{"source": ITEM.source, "start": None, "end": pytest.approx(0.8)}]
    wa, wb = _Writer.made  # the dropped plan gets no writer
    assert wa.path == tmp_path / pr.clip_name(ITEM, plans[0]) and (wa.fps, wa.crf, wa.preset) == (FPS, 23, "fast")
    assert wa.audio == ITEM.source and wa.constant_fps is None
    assert wa.audio_start == 0.0 and wa.audio_duration == pytest.approx(10 / FPS)
    assert wb.audio_start == pytest.approx(5 / FPS) and wb.audio_duration == pytest.approx(15 / FPS)
    # clip times start at 0 on each clip's own clock; the frame at 0.02 s is no frame of the tracks
    np.testing.assert_allclose(wa.times, np.arange(10) / FPS, atol=1e-12)
    np.testing.assert_allclose(wb.times, np.arange(15) / FPS, atol=1e-12)
    assert [int(im[0, 0, 0]) for im in wa.images] == list(range(10))
    assert [int(im[0, 0, 0]) for im in wb.images] == list(range(5, 20))
    # pixels: the recorded box (b shifted inside the frame) at scale 1 is the frame's own square
    np.testing.assert_array_equal(wa.images[3], _image(3)[10:30, 10:30])
    np.testing.assert_array_equal(wb.images[0], _image(5)[20:40, 0:20])
    np.testing.assert_array_equal(plans[1].crops, np.repeat([[0, 20, 20, 40]], 15, 0))
    assert wa.closed == pytest.approx(0.4) and wb.closed == pytest.approx(0.6) and not wa.aborted
    # written: what the file holds
    assert plans[0].written == pr.Written(10, 0.4, True, 0.75, "source", pytest.approx(25.0), 110)
    assert plans[1].written.frames == 15 and plans[1].written.bytes == 115
    assert plans[2].written is None and plans[2].status == "dropped"
    # identity: three spread detection frames (0, 4, 9 of a; 5, 12, 19 of b), raw boxes and scores, mean, unit
    assert [c[0] for c in backend.calls] == [0, 4, 5, 9, 12, 19]
    assert backend.calls[0][1] == [10.5, 10.5, 30.5, 30.5] and backend.calls[0][2] == pytest.approx(0.5)
    want = np.array([(0 + 4 + 9) / 3, 1.0])
    np.testing.assert_allclose(plans[0].embedding, want / np.linalg.norm(want))
    assert plans[0].status == plans[1].status == "ok"


def test_sidecar_records_the_clip(fake_media, tmp_path):
    a = _track(3, 5, 10, (10, 10, 30, 30))
    plans = _plans((a, (10, 10, 30, 30)))
    pr.write_clips(ITEM, _Info(), plans, _tracks(plans), tmp_path, _opts(), _Backend())
    assert fake_media["calls"][0]["start"] == pytest.approx(5 / FPS)  # one seek to the first clip's start
    doc = json.loads((tmp_path / pr.clip_name(ITEM, plans[0])).with_suffix(".json").read_text())
    assert doc == {"source": ITEM.source, "source_id": ITEM.source_id, "subject": ITEM.source, "track_id": 3,
                   "segment": 0, "start_time": 0.2, "end_time": 0.6, "start_frame": 5, "end_frame": 14,
                   "frames": 10, "duration": 0.4, "fps_mode": "source", "fps": 25.0, "has_audio": True,
                   "audio_coverage": 0.75, "bytes": 110}
    assert not list(tmp_path.rglob(".*.part"))


def test_no_audio_no_embedding_and_a_constant_rate(fake_media, tmp_path):
    plans = _plans((_track(0, 0, 10, (10, 10, 30, 30)), (10, 10, 30, 30)))
    backend = _Backend()
    pr.write_clips(ITEM, _Info(), plans, _tracks(plans), tmp_path, _opts(audio=False, embed=False, fps=50.0),
                   backend)
    [w] = _Writer.made
    assert w.audio is None and w.constant_fps == 50.0 and backend.calls == [] and plans[0].embedding is None
    # at 50 fps the 0.4 s span is round(0.4 * 50) = 20 frames; the writer got 10, fewer than 20 - 1
    assert plans[0].status == "error"
    assert plans[0].error == "/v/talk.mp4: the video ended 10 frames before the clip's end"
    assert not w.path.exists() and plans[0].written is None

    class _NoEmbed(_Backend):
        embedding_dim = None

    info = _Info()
    info.has_audio = False
    _Writer.made = []
    plans = _plans((_track(0, 0, 10, (10, 10, 30, 30)), (10, 10, 30, 30)))
    pr.write_clips(ITEM, info, plans, _tracks(plans), tmp_path, _opts(), _NoEmbed())
    assert _Writer.made[0].audio is None and plans[0].embedding is None and plans[0].status == "ok"
    assert plans[0].written.fps_mode == "source" and plans[0].written.has_audio is False


def test_one_frame_short_is_accepted_two_are_not(fake_media, tmp_path):
    fake_media["n"] = 9  # the stream ends one frame before the clip's tenth frame
    plans = _plans((_track(0, 0, 10, (10, 10, 30, 30)), (10, 10, 30, 30)))
    pr.write_clips(ITEM, _Info(), plans, _tracks(plans), tmp_path, _opts(), _Backend())
    assert plans[0].status == "ok" and plans[0].written.frames == 9  # the check allows one frame
    assert _Writer.made[0].closed == pytest.approx(0.4)  # closed at the span's end all the same
    fake_media["n"] = 8
    _Writer.made = []
    plans = _plans((_track(0, 0, 10, (10, 10, 30, 30)), (10, 10, 30, 30)))
    pr.write_clips(ITEM, _Info(), plans, _tracks(plans), tmp_path, _opts(), _Backend())
    assert (plans[0].status, plans[0].error) == ("error", "/v/talk.mp4: the video ended 2 frames before the "
                                                          "clip's end")
    assert not (tmp_path / pr.clip_name(ITEM, plans[0])).exists()


def test_a_frame_after_the_last_tracked_one_is_passed_over(fake_media, tmp_path):
    fake_media["extra_times"] = [0.38]  # between the last tracked frame (0.36) and the span's end (0.4)
    plans = _plans((_track(0, 0, 10, (10, 10, 30, 30)), (10, 10, 30, 30)))
    pr.write_clips(ITEM, _Info(), plans, _tracks(plans, n=10), tmp_path, _opts(), _Backend())
    assert plans[0].status == "ok" and _Writer.made[0].frames == 10


def test_a_clip_past_the_end_of_the_stream_is_an_error_row(fake_media, tmp_path):
    plans = _plans((_track(0, 0, 5, (10, 10, 30, 30)), (10, 10, 30, 30)),
                   (_track(1, 30, 5, (10, 10, 30, 30)), (10, 10, 30, 30)))  # frames 30..34: the stream has 20
    pr.write_clips(ITEM, _Info(), plans, _tracks(plans), tmp_path, _opts(), _Backend())
    assert plans[0].status == "ok"
    assert (plans[1].status, plans[1].error) == ("error", "no frame of the clip was decoded")
    assert len(_Writer.made) == 1


def test_a_failed_check_removes_the_clip_and_says_why(fake_media, tmp_path, monkeypatch):
    def refuse(path, **kw):
        assert kw == {"frames": 10, "duration": pytest.approx(0.4), "audio": True}
        raise MediaError(path, "audio is 0.2 s short", "re-encode")

    monkeypatch.setattr(sys.modules["faceexpr_cli.media.verify"], "verify_clip", refuse)
    plans = _plans((_track(0, 0, 10, (10, 10, 30, 30)), (10, 10, 30, 30)))
    pr.write_clips(ITEM, _Info(), plans, _tracks(plans), tmp_path, _opts(), _Backend())
    path = tmp_path / pr.clip_name(ITEM, plans[0])
    assert plans[0].status == "error" and plans[0].error == f"{path}: audio is 0.2 s short (re-encode)"
    assert not path.exists() and not path.with_suffix(".json").exists()


def test_a_stop_abandons_the_open_writers(fake_media, tmp_path, monkeypatch):
    from faceexpr_cli.crop import stop

    class _After:
        n = 0

        def is_set(self):
            self.n += 1
            return self.n > 3

    monkeypatch.setattr(stop, "_event", _After())
    plans = _plans((_track(0, 0, 10, (10, 10, 30, 30)), (10, 10, 30, 30)))
    with pytest.raises(stop.Stopped):
        pr.write_clips(ITEM, _Info(), plans, _tracks(plans), tmp_path, _opts(), _Backend())
    [w] = _Writer.made
    assert w.aborted and w.closed is None


def test_nothing_to_write_decodes_nothing(fake_media, tmp_path):
    plans = [pr.ClipPlan(_track(0, 0, 5, (0, 0, 10, 10)), 0, np.zeros((5, 4), np.float32), None, status="dropped")]
    pr.write_clips(ITEM, _Info(), plans, _tracks(plans), tmp_path, _opts(), _Backend())
    assert fake_media["calls"] == [] and _Writer.made == []
