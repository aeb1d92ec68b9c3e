"""`fx live` on file sources: every frame at full speed, the file's pace with drops instead of lag, the records.

Checks decode what fx wrote with plain PyAV (tests/mediacheck.py) and compare it with the source decoded the same
way, and recompute tokens from the source frames with the model itself.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from mediacheck import decode_audio, decode_video_times


def _source_frames(path):
    import av

    with av.open(str(path)) as c:
        return [(float(f.time), f.to_ndarray(format="rgb24")) for f in c.decode(c.streams.video[0])]


def _run(**kw):
    from faceexpr_cli.live.loop import LiveOptions, run_live
    from faceexpr_cli.live.process import LiveModels

    models = LiveModels(**kw.pop("models", {}), emotion="off")
    return run_live(LiveOptions(models=models, **kw))


@pytest.fixture(scope="module")
def full_speed(live_video, joint_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("live-out")
    res = _run(source=str(live_video.path), as_fast_as_possible=True, record=str(out / "rec.mp4"),
               tokens=str(out / "tokens.jsonl"),
               models={"model": str(joint_run / "run"), "predictor": str(joint_run / "pred")})
    lines = [json.loads(x) for x in (out / "tokens.jsonl").read_text().splitlines()]
    return res, lines, out


def test_full_speed_processes_every_frame_once_in_order(full_speed, live_video):
    res, lines, _ = full_speed
    frames = _source_frames(live_video.path)
    assert res.frames == len(frames) == len(lines) and res.dropped == 0 and res.stop == "source-ended"
    assert [x["frame"] for x in lines] == list(range(len(frames)))
    assert np.allclose([x["time"] for x in lines], [t for t, _ in frames], atol=1e-3)
    assert res.faces == sum(x["box"] is not None for x in lines) >= len(frames) - 2


def test_tokens_are_the_models_tokens_of_that_frames_face(full_speed, live_video, joint_run):
    """Recomputed from the source frame and the logged box: a token from another frame or crop fails."""
    from faceexpr_cli.crop.geometry import crop_square, square_around
    from faceexpr_cli.extract.model import ExpressionModel

    _, lines, _ = full_speed
    frames = _source_frames(live_video.path)
    model = ExpressionModel.load(joint_run / "run")
    for i in (0, 17, len(lines) - 1):
        box = np.asarray(lines[i]["box"], np.float64)
        crop = crop_square(frames[i][1], square_around(box, 0.3), model.size)
        want = model.tokens(crop[None])[0]
        assert np.allclose(lines[i]["token"], want, atol=2e-4), i
    # neighbours differ (the face moves), so the check above can tell frames apart
    assert not np.allclose(lines[5]["token"], lines[30]["token"], atol=1e-3)


def test_prediction_error_is_one_minus_cosine_of_the_previous_prediction(full_speed, joint_run):
    from faceexpr_cli.onnx.predictor import load_chain

    _, lines, _ = full_speed
    assert lines[0]["prediction_error"] is None
    part = load_chain("torch", joint_run / "pred", outputs=["next_expression"]).predictors[-1]
    k = 12  # buffer of frames 0..k-1 predicts frame k
    seq = np.asarray([x["token"] for x in lines[:k]], np.float32)[None]
    pred = part.run({"expression": seq})["next_expression"][0, -1]
    tok = np.asarray(lines[k]["token"])
    want = 1 - pred @ tok / (np.linalg.norm(pred) * np.linalg.norm(tok))
    assert lines[k]["prediction_error"] == pytest.approx(want, abs=1e-3)


def test_record_has_every_frame_the_source_duration_and_its_audio(full_speed, live_video):
    _, _, out = full_speed
    n, duration = decode_video_times(out / "rec.mp4")
    src_n, src_duration = decode_video_times(live_video.path)
    assert n == src_n and abs(duration - src_duration) <= 1 / 25 + 1e-6
    wave, rate = decode_audio(out / "rec.mp4")
    src_wave, src_rate = decode_audio(live_video.path)
    assert wave is not None and rate == src_rate and abs(len(wave) / rate - src_duration) < 0.05
    m = min(len(wave), len(src_wave))
    assert np.corrcoef(wave[:m], src_wave[:m])[0, 1] > 0.9  # the source's own audio, in step
    # the recorded pictures are the source's (a box drawn on top): compare away from the face
    import av

    with av.open(str(out / "rec.mp4")) as c:
        rec = [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]
    src = _source_frames(live_video.path)
    for i in (3, 40):
        diff = np.abs(rec[i][:60].astype(int) - src[i][1][:60].astype(int)).mean()
        other = np.abs(rec[i][:60].astype(int) - src[i + 5][1][:60].astype(int)).mean()
        assert diff < 4 and diff < other, (i, diff, other)


def test_real_pace_drops_frames_instead_of_lagging(live_video, monkeypatch):
    """A loop at 10 fps on a 25 fps file: the run takes the file's time, frames are dropped, latency stays low.
    A FIFO hand-over would process every frame (no drops), run ~2.5x longer and lag by seconds."""
    from faceexpr_cli.live import process

    real = process.FrameProcessor.process

    def slow(self, image, t=0.0):
        time.sleep(0.1)
        return real(self, image, t)

    monkeypatch.setattr(process.FrameProcessor, "process", slow)
    t0 = time.monotonic()
    res = _run(source=str(live_video.path))
    wall = time.monotonic() - t0
    total = len(_source_frames(live_video.path))
    assert res.captured == total and res.frames + res.dropped == total
    assert res.dropped >= total // 3
    assert 0.9 * live_video.duration < res.seconds < live_video.duration + 1.5, (res.seconds, wall)
    assert res.latency_ms < 200


def test_frame_slot_keeps_the_newest_or_blocks():
    import threading

    from faceexpr_cli.live.source import Captured, FrameSlot

    def frame(i):
        return Captured(i, i / 25, time.monotonic(), np.zeros((2, 2, 3), np.uint8))

    slot = FrameSlot(blocking=False)
    for i in range(5):
        slot.put(frame(i))
    assert slot.get().index == 4 and slot.dropped == 4 and slot.get(timeout=0.05) is None
    slot.end()
    assert slot.get() is None and slot.ended

    slot = FrameSlot(blocking=True)
    got = []

    def consume():
        while True:
            f = slot.get(timeout=1.0)
            if f is None:
                return
            got.append(f.index)
            time.sleep(0.005)

    t = threading.Thread(target=consume)
    t.start()
    for i in range(20):
        slot.put(frame(i))
    slot.end()
    t.join(5)
    assert got == list(range(20)) and slot.dropped == 0


def test_max_seconds_stops_and_finalises_the_record(live_video, tmp_path):
    res = _run(source=str(live_video.path), max_seconds=0.8, record=str(tmp_path / "r.mp4"))
    assert res.stop == "max-seconds" and 0.6 < res.seconds < 1.6
    n, duration = decode_video_times(tmp_path / "r.mp4")
    assert n == res.frames and duration == pytest.approx(n / 25, abs=0.08)


def test_animate_moves_the_portrait_with_the_drivers_landmark_motion(live_video, tmp_path):
    """As the landmarks engine's own test: the output's landmark displacements match the driver's carried onto
    the portrait (AKD well under the motion itself), frame by frame, so a frame out of step fails."""
    from faceexpr_cli.animate.landmarks import follow_landmarks, image_landmarks
    from faceexpr_cli.animate.retarget import landmark_targets
    from faceexpr_cli.face import get_backend
    from faceexpr_cli.media import read_frames, write_image
    from faceexpr_cli.samples.portraits import load_portrait

    portrait = tmp_path / "p.png"
    image, _ = load_portrait("grace_hopper")
    write_image(portrait, image)
    res = _run(source=str(live_video.path), as_fast_as_possible=True, record=str(tmp_path / "a.mp4"),
               models={"animate": str(portrait)})
    out = read_frames(tmp_path / "a.mp4")
    assert res.frames == len(out) and out.shape[1:3] == image.shape[:2]
    dlib = get_backend("dlib")
    got = follow_landmarks(dlib, iter(out), "result").points
    drv = follow_landmarks(dlib, iter(read_frames(live_video.path)), "driver").points
    want = landmark_targets(image_landmarks(dlib, image, "portrait").landmarks68, drv, drv[0])
    d_want, d_got = want - want[:1], got - got[:1]
    motion = float(np.linalg.norm(d_want, axis=-1).mean())
    akd = float(np.linalg.norm(d_got - d_want, axis=-1).mean())
    late = float(np.linalg.norm(d_got[5:] - d_want[:-5], axis=-1).mean())  # the same output, 5 frames late
    assert motion > 4.0 and akd < 0.3 * motion and akd < late, (akd, motion, late)


def test_swap_gives_the_followed_face_the_photos_identity(live_video, tmp_path):
    """dlib embeddings of recorded frames: closer to the photo's face than to the driver's own face."""
    from faceexpr_cli.face import get_backend
    from faceexpr_cli.media import read_frames, write_image
    from faceexpr_cli.samples.portraits import load_portrait

    photo = tmp_path / "gh.png"
    image, _ = load_portrait("grace_hopper")
    write_image(photo, image)
    res = _run(source=str(live_video.path), as_fast_as_possible=True, record=str(tmp_path / "s.mp4"),
               max_seconds=None, models={"swap": str(photo)})
    out = read_frames(tmp_path / "s.mp4")
    src = read_frames(live_video.path)
    assert res.frames == len(out) == len(src)
    dlib = get_backend("dlib")

    def embedding(img):
        face = max(dlib.analyze(img, landmarks=True, embed=True), key=lambda f: f.score)
        return face.embedding

    target = embedding(image)
    for i in (5, 25, 45):
        got, own = embedding(out[i]), embedding(src[i])
        assert np.linalg.norm(got - target) < np.linalg.norm(got - own), i
    assert np.abs(out[10][:40].astype(int) - src[10][:40].astype(int)).mean() < 4  # background untouched
