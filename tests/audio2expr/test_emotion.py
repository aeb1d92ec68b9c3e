"""Emotion adding: training on paired takes learns the added expression; alpha = 0 is the input, ortho is
orthogonal, and both models (linear, transformer) train through `fx train emotion-adding`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from faceexpr_cli.cli.app import main

DIM = 8


def _takes(folder, seed: int, shift: np.ndarray | None, stretch: float = 1.0):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(4):
        rng = np.random.default_rng(100 + i)
        n = 60
        t = np.linspace(0, 1, n)[:, None]
        base = np.sin(2 * np.pi * (t * (i + 1) + rng.uniform(0, 1, DIM))) + 0.5
        if shift is not None:  # the emotional take: a constant added expression, recorded a bit slower
            m = int(round(n * stretch))
            src = np.linspace(0, 1, n)
            base = np.stack([np.interp(np.linspace(0, 1, m), src, base[:, k]) for k in range(DIM)], 1) + shift
        np.savez(folder / f"sentence_{i}.npz", expression=base.astype(np.float32))


@pytest.fixture(scope="module")
def emotion_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("emotion")
    shift = np.linspace(-0.6, 0.6, DIM).astype(np.float32)
    _takes(root / "neutral", 0, None)
    _takes(root / "happy", 0, shift, stretch=1.15)
    runs = {}
    for model, steps in (("linear", 300), ("transformer", 60)):
        out = root / model
        code = main(["train", "emotion-adding", "--model", model, "--source-betas", str(root / "neutral"),
                     "--target-betas", str(root / "happy"), "--out", str(out), f"max_steps={steps}",
                     "data.frames=20", "--json"])
        assert code == 0
        runs[model] = out
    return {"root": root, "shift": shift, **runs}


def test_linear_model_learns_the_added_expression(emotion_runs):
    from faceexpr_cli.audio2expr.emotion import EmotionModel, read_betas

    model = EmotionModel.load(emotion_runs["linear"])
    x = read_betas(emotion_runs["root"] / "neutral")["sentence_1"]
    full = model.apply(x, 1.0, False)
    added = (full - x).mean(0)
    assert np.abs(added - emotion_runs["shift"]).max() < 0.15
    half = model.apply(x, 0.5, False)
    np.testing.assert_allclose(half - x, 0.5 * (full - x), atol=1e-5)


@pytest.mark.parametrize("kind", ["linear", "transformer"])
def test_alpha_zero_returns_the_input_and_ortho_is_orthogonal(emotion_runs, kind):
    from faceexpr_cli.audio2expr.emotion import EmotionModel

    model = EmotionModel.load(emotion_runs[kind])
    x = np.random.default_rng(3).standard_normal((40, DIM)).astype(np.float32)
    assert np.array_equal(model.apply(x, 0.0, False), x)
    assert np.array_equal(model.apply(x, 0.0, True), x)
    added = model.apply(x, 1.0, True) - x
    assert np.abs(added).max() > 1e-3  # the trained model does add something
    cos = (added * x).sum(1) / (np.linalg.norm(added, axis=1) * np.linalg.norm(x, axis=1))
    assert np.abs(cos).max() < 1e-4


def test_blend_formula():
    from faceexpr_cli.nn.emotion_adding import blend

    x = torch.tensor([[[1.0, 0.0]]])
    e = torch.tensor([[[2.0, 1.0]]])
    assert blend(x, e, 0.5, False).tolist() == [[[1.5, 0.5]]]
    assert blend(x, e, 1.0, True).tolist() == [[[1.0, 1.0]]]  # the part along x is dropped


def test_emotion_run_is_not_an_audio_model(emotion_runs, capsys):
    from faceexpr_cli.audio2expr.predict import Audio2ExprModel
    from faceexpr_cli.errors import CheckpointError

    with pytest.raises(CheckpointError, match="no audio2expr model"):
        Audio2ExprModel.load(emotion_runs["linear"])
    meta = json.loads((emotion_runs["linear"] / "checkpoints" / "step_000300" / "meta.json").read_text())
    assert meta["kind"] == "train-emotion-adding"


def test_unpaired_folders_are_one_line(tmp_path, capsys):
    _takes(tmp_path / "a", 0, None)
    (tmp_path / "b").mkdir()
    np.savez(tmp_path / "b" / "other.npz", expression=np.zeros((30, DIM), np.float32))
    code = main(["train", "emotion-adding", "--source-betas", str(tmp_path / "a"), "--target-betas",
                 str(tmp_path / "b"), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code != 0 and "share no file name" in err and "Traceback" not in err


def test_betas_train_an_emotion_model_that_the_speech_path_applies(trained, speaking, speech_wav, tmp_path):
    """`fx audio2expr betas` (predicted and measured) -> `fx train emotion-adding` -> the speech path with
    --emotion: alpha 0 is the audio model's own expression, alpha 1 moves it towards the measured takes."""
    from faceexpr_cli.audio2expr.predict import read_audio
    from faceexpr_cli.audio2expr.speech import SpeechOptions, expressions

    pred_dir, meas_dir = tmp_path / "predicted", tmp_path / "measured"
    assert main(["audio2expr", "betas", str(speaking["train"]), "--run", str(trained["run"]), "--out",
                 str(pred_dir), "--predicted"]) == 0
    assert main(["audio2expr", "betas", str(speaking["train"]), "--run", str(trained["run"]), "--out",
                 str(meas_dir)]) == 0
    names = sorted(p.name for p in pred_dir.glob("*.npz"))
    assert names == sorted(p.name for p in meas_dir.glob("*.npz")) == ["astronaut_0.npz", "astronaut_1.npz"]
    with np.load(pred_dir / names[0]) as a, np.load(meas_dir / names[0]) as b:
        assert a["expression"].shape == b["expression"].shape == (100, DIM)
        assert not np.allclose(a["expression"], b["expression"])
    out = tmp_path / "emo"
    assert main(["train", "emotion-adding", "--source-betas", str(pred_dir), "--target-betas", str(meas_dir),
                 "--out", str(out), "max_steps=40", "data.frames=20"]) == 0
    wave = read_audio(speech_wav[0])
    _, plain = expressions(SpeechOptions(trained["run"]), wave, 50)
    _, zero = expressions(SpeechOptions(trained["run"], emotion=out, alpha=0.0), wave, 50)
    _, full = expressions(SpeechOptions(trained["run"], emotion=out, alpha=1.0, ortho=True), wave, 50)
    np.testing.assert_array_equal(zero.expression, plain.expression)
    np.testing.assert_allclose(zero.offsets, plain.offsets, atol=1e-6)
    added = full.expression - plain.expression
    assert np.abs(added).max() > 1e-4
    cos = (added * plain.expression).sum(1) / (np.linalg.norm(added, axis=1) * np.linalg.norm(plain.expression, axis=1))
    assert np.abs(cos).max() < 1e-4
