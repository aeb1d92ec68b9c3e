"""The training runner end to end on the tiny recipe (CPU): learning, exact resume, checkpoints, clear errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from faceexpr_cli.errors import CheckpointError, ConfigError, DataError, UsageError
from faceexpr_cli.train import checkpoint as C
from faceexpr_cli.train.runner import TrainingDivergedError, run


def curve(run_dir) -> list[dict[str, str]]:
    with (run_dir / "scalars.csv").open() as f:
        return [{k: v for k, v in r.items() if k != "frames_per_s"} for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, clip_folder):
    from faceexpr_cli.config.recipes import load_recipe

    recipe = load_recipe("joint-tiny", [f"data.path={clip_folder}", "data.workers=0", "trainer.tensorboard=false",
                                        "trainer.max_steps=2"])
    out = tmp_path_factory.mktemp("short") / "run"
    run(recipe, out)
    return out


FROZEN = ["schedule.lr.initial=0", "schedule.lr.warmup=0", "schedule.lr.final=0", "schedule.min_lr=0"]


def test_tiny_recipe_halves_reconstruction_loss(tiny_recipe, tmp_path):
    """Against a no-update run on the same batches (batches depend only on seed and step), not a constant."""
    res = run(tiny_recipe("trainer.max_steps=90", "trainer.log_every=5", "trainer.tensorboard=true"), tmp_path / "r")
    frozen = run(tiny_recipe("trainer.max_steps=90", "trainer.log_every=5", *FROZEN), tmp_path / "frozen")
    rec = [r["loss_reconstruction"] for r in res.rows]
    base = [r["loss_reconstruction"] for r in frozen.rows]
    assert [r["step"] for r in res.rows] == [r["step"] for r in frozen.rows] and rec[0] == base[0]  # same start
    assert np.mean(rec[-3:]) <= 0.5 * np.mean(base[-3:]), (rec, base)
    ev = res.evals[-1]
    from faceexpr_cli.media import probe

    info = probe(ev["video"])
    assert (info.width, info.height) == (112, 56) and info.has_audio  # original | reconstruction, with audio
    assert ev["plot"].stat().st_size > 1000
    assert ev["mse"] <= 0.5 * frozen.evals[-1]["mse"], (ev["mse"], frozen.evals[-1]["mse"])  # same eval clip
    assert any((tmp_path / "r" / "tb").iterdir())
    files = {p.name for p in res.checkpoint.iterdir()}
    assert {"expression.safetensors", "reconstruction.safetensors", "expression.card.yaml", "trainer.pt",
            "recipe.yaml", "subjects.json", "meta.json"} <= files
    assert json.loads((tmp_path / "r" / "subjects.json").read_text())["subjects"] == ["astronaut", "grace_hopper"]


def test_resume_reproduces_the_loss_curve(tiny_recipe, tmp_path):
    run(tiny_recipe("trainer.max_steps=8", "trainer.save_every=4"), tmp_path / "straight")
    run(tiny_recipe("trainer.max_steps=4", "trainer.save_every=4"), tmp_path / "split")
    res = run(tiny_recipe("trainer.max_steps=8", "trainer.save_every=4"), tmp_path / "split", resume=True)
    assert res.steps == 8
    straight = curve(tmp_path / "straight")
    assert [r["step"] for r in straight] == [f"{k}.0" for k in range(1, 9)]  # a curve to compare, every step
    assert curve(tmp_path / "split") == straight


def test_checkpoint_round_trip_and_card_mismatch(short_run):
    from faceexpr_cli.builders import build_model

    ckpt = C.latest_checkpoint(short_run)
    state, card, role = C.read_model_file(ckpt / "expression.safetensors")
    assert role == "expression" and card.name == "expression-transformer"
    model = build_model(card)
    C.load_model(ckpt / "expression.safetensors", model, card, "expression")
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k])
    with pytest.raises(CheckpointError) as info:
        C.load_model(ckpt / "reconstruction.safetensors", model, card, "expression")
    msg = info.value.one_line()
    assert "card 'reconstruction'" in msg and "card 'expression-transformer'" in msg
    other = card.model_copy(update={"preset": card.preset | {"layers": 3}})
    with pytest.raises(CheckpointError, match="layers 1 vs 3"):
        C.load_model(ckpt / "expression.safetensors", build_model(other), other, "expression")


def test_nan_loss_stops_with_step_and_last_good_checkpoint(tiny_recipe, tmp_path, monkeypatch):
    from faceexpr_cli.train import losses

    real, calls = losses.reconstruction_loss, []

    def flaky(pred, target):
        calls.append(1)
        return real(pred, target) * (float("nan") if len(calls) == 4 else 1.0)

    monkeypatch.setattr(losses, "reconstruction_loss", flaky)
    with pytest.raises(TrainingDivergedError) as info:
        run(tiny_recipe("trainer.max_steps=6", "trainer.save_every=2"), tmp_path / "r")
    msg = info.value.one_line()
    assert "step 4" in msg and "step_000002" in msg


def test_clear_errors(tiny_recipe, tmp_path, short_run):
    from faceexpr_cli.config.recipes import load_recipe

    with pytest.raises(ConfigError, match="unknown key 'trainer.max_stepz'"):
        load_recipe("joint-tiny", ["trainer.max_stepz=3"])
    with pytest.raises(ConfigError, match="unknown key 'expression.argz'"):
        load_recipe("joint-tiny", ["expression.argz.dim=3"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no clips"):
        run(tiny_recipe(f"data.path={tmp_path / 'empty'}"), tmp_path / "r0")
    with pytest.raises(UsageError, match="already holds a run"):
        run(tiny_recipe(), short_run)
    with pytest.raises(CheckpointError, match="nothing to resume"):
        run(tiny_recipe(), tmp_path / "new", resume=True)
    table = tmp_path / "subjects.json"
    table.write_text(json.dumps({"subjects": ["astronaut"]}))
    with pytest.raises(DataError, match="subject 'grace_hopper' is not in the subject table"):
        run(tiny_recipe(f"data.subjects={table}", "trainer.max_steps=1"), tmp_path / "r1")


def test_token_cache_serves_later_runs(tiny_recipe, tmp_path):
    cache = tmp_path / "cache"
    first = run(tiny_recipe("trainer.max_steps=3"), tmp_path / "a", cache_tokens=cache)
    second = run(tiny_recipe("trainer.max_steps=3"), tmp_path / "b", cache_tokens=cache)
    assert first.cache["misses"] > 0 and second.cache["misses"] == 0
    files = list(cache.glob("*/*.npy"))
    assert len(files) == 4
    arr = np.load(files[0])
    assert arr.dtype == np.float16 and arr.shape[1:] == (16, 64)  # 4x4 patches of the tiny tokenizer
    # both runs read the same fp16 tokens: the same curve; a run without the cache (fp32 tokens) is close to it
    assert curve(tmp_path / "a") == curve(tmp_path / "b") and len(curve(tmp_path / "a")) == 3
    run(tiny_recipe("trainer.max_steps=3"), tmp_path / "plain")
    parts = ("loss_reconstruction", "loss_temporal", "loss_diversity")
    cached = np.array([[float(r[k]) for k in parts] for r in curve(tmp_path / "a")])
    plain = np.array([[float(r[k]) for k in parts] for r in curve(tmp_path / "plain")])
    # fp16 storage moves these by < 1e-6 (measured); tokens of a window shifted by a few frames move them by 1e-5..1e-3
    assert np.allclose(cached, plain, rtol=1e-5, atol=0), (cached, plain)


def test_train_expression_from_a_joint_run(tiny_recipe, tmp_path, short_run):
    res = run(tiny_recipe(f"expression.init={short_run}", "trainer.max_steps=3", name="expression-tiny"),
              tmp_path / "pred")
    assert {"expression.safetensors", "predictor.safetensors"} <= {p.name for p in res.checkpoint.iterdir()}
    assert "prediction_cosine" in res.evals[-1]
    _, card, _ = C.read_model_file(res.checkpoint / "predictor.safetensors")
    assert card.name == "expression-predictor"
    ref, _, _ = C.read_model_file(C.latest_checkpoint(short_run) / "expression.safetensors")
    got, _, _ = C.read_model_file(res.checkpoint / "expression.safetensors")
    assert ref and ref.keys() == got.keys()
    assert all(torch.equal(ref[k], got[k]) for k in ref)  # frozen: the joint run's transformer, unchanged
