"""`fx train animator`: the tiny recipe lowers its loss, writes original-layout checkpoints with our card, resumes."""

from __future__ import annotations

import json

import pytest
import torch

from faceexpr_cli.cli.app import main

FAST = ["train.max_steps=6", "train.batch_size=2", "train.scales=[1]", "train.log_every=3",
        "data.num_repeats=20", "train.loss_weights.generator_gan=1", "train.tensorboard=false"]


def test_recipes_validate():
    from faceexpr_cli.config.recipes import load_recipe, recipe_launch_line, resolve_recipe_path

    vox = load_recipe("fomm-vox256", kind="train-animator")
    assert vox.train.batch_size == 40 and vox.train.scales == [1, 0.5, 0.25, 0.125]
    assert vox.train.loss_weights.perceptual == [10] * 5 and vox.train.epoch_milestones == [60, 90]
    assert "fx train animator" in recipe_launch_line(resolve_recipe_path("fomm-tiny"))
    with pytest.raises(Exception, match="perceptual"):
        load_recipe("fomm-tiny", ["train.loss_weights.perceptual=[1,2]"])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    code = main(["train", "animator", "--recipe", "fomm-tiny", "--out", str(run), "--json", *FAST])
    assert code == 0
    return run


def test_tiny_run_lowers_loss_and_writes_original_layout(tiny_run):
    import csv

    rows = list(csv.DictReader((tiny_run / "scalars.csv").open()))
    assert [float(r["step"]) for r in rows] == [3.0, 6.0]
    first, last = float(rows[0]["loss_total"]), float(rows[-1]["loss_total"])
    assert last < first, (first, last)
    ckpts = sorted(tiny_run.glob("*-checkpoint.pth.tar"))
    assert [c.name for c in ckpts] == ["00000000-checkpoint.pth.tar"]
    data = torch.load(ckpts[0], weights_only=True)
    assert {"kp_detector", "generator", "discriminator", "optimizer_generator", "optimizer_discriminator",
            "optimizer_kp_detector", "epoch"} <= set(data)
    assert data["card"]["preset"]["kp_detector_params"]["block_expansion"] == 8  # the tiny model it trained
    assert (tiny_run / "card.yaml").is_file() and (tiny_run / "recipe.yaml").is_file()


def test_trained_checkpoint_animates_and_resume_continues(tiny_run, tmp_path, capsys, sample_video, portrait_png):
    ckpt = sorted(tiny_run.glob("*-checkpoint.pth.tar"))[-1]
    code = main(["animate", "-s", str(portrait_png), "-d", str(sample_video.path), "-o", str(tmp_path / "r.mp4"),
                 "--engine", "fomm", "--checkpoint", str(ckpt), "--max-frames", "3", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    assert json.loads(out)["frames"] == 3

    code = main(["train", "animator", "--recipe", "fomm-tiny", "--out", str(tiny_run), "--resume", "--json",
                 *FAST[1:], "train.max_steps=7"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["steps"] == 7 and summary["checkpoint"].endswith("00000001-checkpoint.pth.tar")
