"""`fx animate --driving speech.wav --audio-model RUN`, `fx audio2expr eval` and `export`, through the CLI."""

from __future__ import annotations

import json

import numpy as np

from faceexpr_cli.audio2expr import shapes as S
from faceexpr_cli.cli.app import main


def _run(capsys, *args):
    code = main(list(map(str, args)))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _rms(wave, rate, fps, n):
    edges = (np.arange(n + 1) * rate / fps).astype(int)
    return np.array([np.sqrt(np.mean(wave[a:b] ** 2)) for a, b in zip(edges[:-1], edges[1:], strict=True)])


def _mouth(frames):
    from faceexpr_cli.animate.landmarks import follow_landmarks
    from faceexpr_cli.face import get_backend

    return S.mouth_opening(S.normalise(follow_landmarks(get_backend("dlib"), frames, "out").points))


def test_speech_drives_another_face_and_the_video_carries_the_speech(trained, speech_wav, speaking, tmp_path,
                                                                       capsys):
    from faceexpr_cli.audio2expr.sample import portrait_crop
    from faceexpr_cli.media import read_frames, write_image
    from tests.mediacheck import decode_audio, decode_video_times

    wav, sample = speech_wav
    portrait = write_image(tmp_path / "grace.png", portrait_crop("grace_hopper", 160))  # not the training face
    out = tmp_path / "talk.mp4"
    code, stdout, err = _run(capsys, "animate", "-s", portrait, "-d", wav, "--audio-model", trained["run"], "-o", out,
                             "--max-frames", 50, "--json")
    assert code == 0, err
    info = json.loads(stdout)
    assert info["frames"] == 50 and info["head_motion"] == "none"
    frames, duration = decode_video_times(out)
    assert frames == 50 and abs(duration - 2.0) < 0.05
    # the audio is the speech: same loudness curve as the wav over the video's span
    got, rate = decode_audio(out)
    assert got is not None and abs(len(got) / rate - 2.0) < 0.1
    from faceexpr_cli.audio2expr.predict import read_audio

    want = read_audio(wav)
    r_audio = np.corrcoef(_rms(got, rate, 25, 48), _rms(want, 16000, 25, 48))[0, 1]
    assert r_audio > 0.95
    # the mouth moves with the voice: measured on the written frames, against the curve the voice was made from
    mouth = _mouth(read_frames(out))
    assert np.ptp(mouth) > 0.08
    r = np.corrcoef(mouth, sample.mouth_open[:50])[0, 1]
    # the baseline: the same output against other voices' curves (other syllable patterns, the same face)
    r_other = max(np.corrcoef(mouth, speaking["samples"][s].mouth_open[:50])[0, 1] for s in (0, 1))
    assert r > 0.45 and r > r_other + 0.3, (r, r_other)  # 0.555 and 0.115 measured


def test_not_audio_and_wrong_runs_are_one_line(trained, speech_wav, tmp_path, capsys):
    from faceexpr_cli.audio2expr.sample import portrait_crop
    from faceexpr_cli.media import write_image

    portrait = write_image(tmp_path / "p.png", portrait_crop("astronaut", 160))
    fake = tmp_path / "speech.wav"
    fake.write_text("not audio at all")
    out = tmp_path / "o.mp4"
    code, _, err = _run(capsys, "animate", "-s", portrait, "-d", fake, "--audio-model", trained["run"], "-o", out)
    assert code != 0 and "not a readable audio file" in err and "Traceback" not in err
    assert not out.exists()
    code, _, err = _run(capsys, "animate", "-s", portrait, "-d", speech_wav[0], "-o", out)
    assert code == 2 and "--audio-model" in err
    code, _, err = _run(capsys, "animate", "-s", portrait, "-d", speech_wav[0], "--audio-model", trained["run"],
                        "--engine", "fomm", "-o", out)
    assert code == 2 and "landmarks engine" in err and not out.exists()
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    code, _, err = _run(capsys, "animate", "-s", portrait, "-d", speech_wav[0], "--audio-model", empty, "-o", out)
    assert code != 0 and "no checkpoint" in err and "Traceback" not in err and not out.exists()


def test_eval_reports_lve_sync_and_a_plot(trained, speaking, tmp_path, capsys):
    from faceexpr_cli.animate.landmarks import follow_landmarks
    from faceexpr_cli.face import get_backend
    from faceexpr_cli.media import read_frames

    out = tmp_path / "eval"
    code, stdout, err = _run(capsys, "audio2expr", "eval", trained["run"], "--clips", speaking["held"], "--out", out,
                             "--json")
    assert code == 0, err
    m = json.loads(stdout)
    assert m["clips"] == 1 and (out / "metrics.json").is_file()
    assert m["mouth_correlation"] > 0.8
    assert m["measured_sync_correlation"] > 0.8 and abs(m["measured_sync_lag_frames"]) <= 1
    assert m["sync_correlation"] > 0.8 and abs(m["sync_lag_frames"]) <= 1
    # LVE beats a mouth frozen at the neutral face, measured here from the clip's own landmarks
    path = next(speaking["held"].glob("*.mp4"))
    shapes = S.normalise(follow_landmarks(get_backend("dlib"), read_frames(path), "held").points)
    frozen = np.linalg.norm(S.neutral_face(shapes)[None, S.MOUTH] - shapes[:, S.MOUTH], axis=-1).max(1).mean()
    assert 0 < m["lve"] < 0.7 * frozen
    from PIL import Image

    with Image.open(out / "mouth.png") as im:
        assert im.size[0] > 400 and im.size[1] > 200


def test_onnx_export_matches_torch(trained, speech_wav, tmp_path, capsys):
    import onnxruntime as ort

    from faceexpr_cli.audio2expr.mel import frame_windows, log_mel
    from faceexpr_cli.audio2expr.predict import Audio2ExprModel, read_audio

    out = tmp_path / "onnx"
    code, stdout, err = _run(capsys, "audio2expr", "export", trained["run"], "--out", out)
    assert code == 0, err
    torch_model = Audio2ExprModel.load(trained["run"])
    wave = read_audio(speech_wav[0])
    windows = frame_windows(log_mel(wave), 60, 25.0)[None]
    ref = torch_model.neutral_reference()[None]
    blink = np.linspace(0, 1, 60, dtype=np.float32)[None]
    want = torch_model.run(windows, ref, blink)
    sess = ort.InferenceSession(str(out / "audio2expr.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(["expression", "offsets"], {"mel": windows, "reference": ref, "blink": blink})
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-3)
    onnx_model = Audio2ExprModel.load(trained["run"], "onnx", onnx_dir=out)  # the graph the CLI wrote
    np.testing.assert_allclose(onnx_model.predict(wave).offsets, torch_model.predict(wave).offsets, atol=1e-4)


def test_driving_video_keeps_its_head_motion_and_the_speech_drives_the_mouth(trained, speech_wav, sample_video,
                                                                               tmp_path, capsys):
    from faceexpr_cli.animate.landmarks import follow_landmarks
    from faceexpr_cli.audio2expr.sample import portrait_crop
    from faceexpr_cli.face import get_backend
    from faceexpr_cli.media import read_frames, write_image
    from tests.mediacheck import decode_audio

    wav, sample = speech_wav
    portrait = write_image(tmp_path / "grace.png", portrait_crop("grace_hopper", 160))
    out = tmp_path / "head.mp4"
    code, stdout, err = _run(capsys, "animate", "-s", portrait, "-d", sample_video.path, "--audio", wav,
                             "--audio-model", trained["run"], "-o", out, "--max-frames", 50, "--json")
    assert code == 0, err
    assert json.loads(stdout)["head_motion"] == "driving video"
    points = follow_landmarks(get_backend("dlib"), read_frames(out), "out").points
    # the head turns as the driver's does (its face centre, from the video's ground truth)
    drv_x = sample_video.actors[0].mouth[:50, 0]
    r_head = np.corrcoef(points[:, 27:36, 0].mean(1), drv_x)[0, 1]
    assert r_head > 0.8, f"head motion vs the driver's: r = {r_head:.3f}"
    # the mouth follows the speech, not the driver's (another syllable pattern)
    mouth = S.mouth_opening(S.normalise(points))
    r_speech = np.corrcoef(mouth, sample.mouth_open[:50])[0, 1]
    r_driver = np.corrcoef(mouth, sample_video.mouth_open[:50])[0, 1]
    assert r_speech > 0.4 and r_speech > r_driver + 0.3, (r_speech, r_driver)  # 0.50 and -0.04 measured
    got, rate = decode_audio(out)  # the speech, not the driver's buzz
    from faceexpr_cli.audio2expr.predict import read_audio

    want = read_audio(wav)
    assert np.corrcoef(_rms(got, rate, 25, 48), _rms(want, 16000, 25, 48))[0, 1] > 0.95
