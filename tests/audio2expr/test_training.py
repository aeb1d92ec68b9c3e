"""`fx train audio2expr` learns speech -> mouth: on a held-out video (another seed) the predicted mouth opening
follows the ground truth the video was made from; the run folder, its basis, resume and bad runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from faceexpr_cli.audio2expr import shapes as S


def _neutral_of(path):
    """The held-out face's own neutral, measured here from its frames (dlib through the face layer)."""
    from faceexpr_cli.animate.landmarks import follow_landmarks
    from faceexpr_cli.face import get_backend
    from faceexpr_cli.media import read_frames

    track = follow_landmarks(get_backend("dlib"), read_frames(path), str(path))
    return S.neutral_face(S.normalise(track.points))


def test_predicted_mouth_follows_the_held_out_ground_truth(trained, speaking):
    from faceexpr_cli.audio2expr.predict import Audio2ExprModel, read_audio

    held = speaking["samples"][11]
    model = Audio2ExprModel.load(trained["run"])
    pred = model.predict(read_audio(held.path), held.fps, frames=len(held.mouth_open))
    mouth = S.mouth_opening(_neutral_of(held.path)[None] + pred.offsets)
    r = np.corrcoef(mouth, held.mouth_open)[0, 1]
    assert r > 0.8, f"predicted vs ground-truth mouth opening: r = {r:.3f}"
    # silence closes the mouth: the frames where the voice is quiet are the least open ones
    quiet, loud = held.mouth_open < 0.05, held.mouth_open > 0.7
    assert mouth[quiet].mean() + 0.05 < mouth[loud].mean()
    # the learning is from the audio: a silent track predicts no speech-like opening
    still = model.predict(np.zeros(16000 * 3, np.float32), held.fps)
    assert np.ptp(S.mouth_opening(_neutral_of(held.path)[None] + still.offsets)) < 0.5 * np.ptp(mouth)


def test_run_folder_basis_and_losses(trained):
    run, result = trained["run"], trained["result"]
    assert result.steps == 120 and result.clips == 2
    for name in ("recipe.yaml", "scalars.csv", "expression_basis.npz", "checkpoints/latest"):
        assert (run / name).exists(), name
    basis = S.ExpressionBasis.load(run / "expression_basis.npz")
    assert basis.components.shape == (8, 136)
    gram = basis.components @ basis.components.T
    rank = int((np.diag(gram) > 0.5).sum())
    np.testing.assert_allclose(gram[:rank, :rank], np.eye(rank), atol=1e-4)  # orthonormal rows of the PCA
    assert basis.variance[0] >= basis.variance[1:].max()
    meta = json.loads((run / "checkpoints" / "step_000120" / "meta.json").read_text())
    assert meta["kind"] == "train-audio2expr"
    rows = result.rows
    assert rows[-1]["loss"] < 0.6 * rows[0]["loss"]
    assert {"loss_expression", "loss_lip", "loss_velocity"} <= set(rows[-1])
    # the basis inside the weights is the run's (so a lone checkpoint file decodes expressions)
    from faceexpr_cli.audio2expr.predict import Audio2ExprModel

    model = Audio2ExprModel.load(run / "checkpoints" / "step_000120" / "audio2expr.safetensors")
    np.testing.assert_allclose(model.basis.components, basis.components, atol=1e-7)


def test_basis_round_trip_and_neutral():
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((200, 3))
    mix = rng.standard_normal((3, 136))
    offsets = (latent @ mix).astype(np.float32)
    basis = S.ExpressionBasis.fit(offsets, 8)
    back = basis.decode(basis.project(offsets)).reshape(200, -1)
    np.testing.assert_allclose(back, offsets, atol=1e-4)
    assert np.allclose(basis.components[3:], 0)  # past the data's rank


def test_resume_continues_from_the_checkpoint(trained, speaking, tmp_path):
    """Resume restores the weights and the step: a copy of the run resumed to step 130 starts at 121."""
    import shutil

    from faceexpr_cli.audio2expr.training import run
    from faceexpr_cli.config.recipes import load_recipe

    copy = tmp_path / "run"
    shutil.copytree(trained["run"], copy)
    recipe = load_recipe(copy / "recipe.yaml", ["trainer.max_steps=130"])
    result = run(recipe, copy, resume=True)
    assert result.steps == 130
    assert result.rows[-1]["step"] == 130
    steps = [r["step"] for r in result.rows]
    assert steps == sorted(steps) and 121 in steps
    assert (copy / "checkpoints" / "step_000130").is_dir()


def test_a_second_run_in_the_same_folder_is_refused(trained, speaking):
    from faceexpr_cli.audio2expr.training import run
    from faceexpr_cli.config.recipes import load_recipe
    from faceexpr_cli.errors import UsageError

    with pytest.raises(UsageError, match="already holds a run"):
        run(load_recipe("audio2expr-tiny", [f"data.path={speaking['train']}"]), trained["run"])


def test_clips_without_audio_are_an_error_with_a_hint(tmp_path):
    from faceexpr_cli.audio2expr.sample import make_speaking_portrait
    from faceexpr_cli.audio2expr.training import run
    from faceexpr_cli.config.recipes import load_recipe
    from faceexpr_cli.errors import DataError

    make_speaking_portrait(tmp_path / "clips" / "mute.mp4", seconds=1.5, audio=False)
    with pytest.raises(DataError, match="no clip with audio"):
        run(load_recipe("audio2expr-tiny", [f"data.path={tmp_path / 'clips'}"]), tmp_path / "run")


def test_targets_from_extract_feats_match_the_runs_own(trained, speaking, tmp_path):
    """`fx extract-feats --features landmarks --stride 1` output as data.features: the same mouth and audio."""
    from faceexpr_cli.audio2expr.clips import clips_from_features, load_clips
    from faceexpr_cli.audio2expr.training import run
    from faceexpr_cli.cli.app import main
    from faceexpr_cli.config.recipes import load_recipe

    feats = tmp_path / "feats"
    assert main(["extract-feats", str(speaking["train"]), "--features", "landmarks", "--face-backend", "dlib",
                 "--stride", "1", "-o", str(feats)]) == 0
    got = {c.key.split(".")[0]: c for c in clips_from_features(feats)}
    own = {c.key.split(".")[0]: c for c in load_clips(speaking["train"], trained["run"] / "targets")}
    assert set(got) == set(own) == {"astronaut_0", "astronaut_1"}
    for key, c in got.items():
        o = own[key]
        assert len(c) == len(o)
        assert np.corrcoef(S.mouth_opening(c.shapes), S.mouth_opening(o.shapes))[0, 1] > 0.97
        assert np.abs(c.mel[:, 5:] - o.mel[:, 5:]).mean() < 0.05  # the first frames hold the AAC start-up
    result = run(load_recipe("audio2expr-tiny", [f"data.features={feats}", "trainer.max_steps=5"]), tmp_path / "r")
    assert result.steps == 5 and result.clips == 2
