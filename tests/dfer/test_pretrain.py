"""VideoMAE pretraining: tube masks, the appearance and motion targets against a NumPy computation, a short
`fx train videomae` run that lowers its loss, and fine-tuning that starts from its encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faceexpr_cli.cli.app import main
from faceexpr_cli.nn.videomae_mae import mae_targets, tube_mask


def test_tube_mask_hides_the_same_patches_in_every_time_step():
    m = tube_mask(3, (4, 5, 6), 0.9, torch.Generator().manual_seed(0))
    assert m.shape == (3, 120)
    grid = m.reshape(3, 4, 30)
    assert torch.equal(grid, grid[:, :1].expand_as(grid))  # a tube: one spatial pattern for all t
    assert grid[:, 0].sum(1).tolist() == [27, 27, 27]  # round(0.9 * 30)
    assert not torch.equal(grid[0, 0], grid[1, 0])  # each clip its own pattern
    with pytest.raises(ValueError):
        tube_mask(1, (2, 2, 2), 0.99)


def test_appearance_and_motion_targets_match_numpy():
    rng = np.random.default_rng(0)
    video = rng.random((1, 4, 3, 32, 32)).astype(np.float32)
    app, mot = mae_targets(torch.from_numpy(video), tubelet=2, patch=16)
    assert app.shape == (1, 8, 2 * 16 * 16 * 3) and mot.shape == (1, 8, 16 * 16 * 3)
    mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 1, 3, 1, 1)
    std = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 1, 3, 1, 1)
    x = (video - mean) / std
    # token 5 = time step 1 (frames 2, 3), row 0, column 1
    tube = x[0, 2:4, :, 0:16, 16:32].transpose(0, 2, 3, 1)  # (t, p, p, c)
    for t in range(2):
        v = tube[t].reshape(-1)
        want = (v - v.mean()) / np.sqrt(v.var(ddof=1) + 1e-6)
        np.testing.assert_allclose(app[0, 5].numpy().reshape(2, -1)[t], want, atol=1e-4)
    d = (tube[1] - tube[0]).reshape(-1)
    np.testing.assert_allclose(mot[0, 5].numpy(), (d - d.mean()) / np.sqrt(d.var(ddof=1) + 1e-6), atol=1e-4)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from faceexpr_cli.dfer.synthetic import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("vmae") / "sample", train_per_class=2, test_per_class=1)


def test_pretraining_lowers_its_loss_and_seeds_fine_tuning(clips, tmp_path):
    from safetensors.torch import load_file

    run = tmp_path / "vmae"
    assert main(["-q", "train", "videomae", "--recipe", "videomae-tiny", f"data.path={clips.root / 'clips'}",
                 "--out", str(run), "trainer.max_steps=30", "trainer.log_every=1", "trainer.tensorboard=false"]) == 0
    import csv

    rows = list(csv.DictReader((run / "scalars.csv").open()))
    first = np.mean([float(r["loss"]) for r in rows[:3]])
    last = np.mean([float(r["loss"]) for r in rows[-3:]])
    assert {"loss_appearance", "loss_motion"} <= set(rows[0]) and last < 0.9 * first, (first, last)
    pre = load_file(run / "checkpoints" / "step_000030" / "pretrainer.safetensors")
    assert any(k.startswith("decoder_blocks.") for k in pre) and "encoder.blocks.0.attn.qkv.weight" in pre

    ft = tmp_path / "ft"
    assert main(["-q", "finetune-dfer", "train", "--recipe", "dfer-tiny", "--train", str(clips.train), "--test",
                 str(clips.test), "--out", str(ft), f"model.init={run}", "trainer.max_steps=1",
                 "optim.lr=0", "optim.min_lr=0", "trainer.tensorboard=false", "optim.weight_decay=0"]) == 0
    got = load_file(ft / "checkpoints" / "step_000001" / "classifier.safetensors")
    assert torch.equal(got["blocks.0.attn.qkv.weight"], pre["encoder.blocks.0.attn.qkv.weight"])
    assert torch.equal(got["patch_embed.proj.weight"], pre["encoder.patch_embed.proj.weight"])
    assert got["head.weight"].shape == (4, 64)


def test_an_fx_clip_dataset_of_shards_is_valid_pretraining_input(clips, tmp_path):
    import numpy as np

    from faceexpr_cli.dataset import DatasetWriter
    from faceexpr_cli.dfer.clips import ClipReader
    from faceexpr_cli.dfer.pretrain import unlabelled_clips
    from faceexpr_cli.media.reader import read_frames

    mp4s = sorted((clips.root / "clips").glob("*.mp4"))[:3]
    root = tmp_path / "dataset"
    with DatasetWriter(root, max_count=2) as w:  # two shards
        for i, p in enumerate(mp4s):
            w.add_sample(f"clip_{i}", p.read_bytes(), {"source": p.name}, {"source": str(p), "frames": 24})
    ann = unlabelled_clips(root)
    assert [e.path.name.split("#")[1] for e in ann.entries] == ["clip_0", "clip_1", "clip_2"]
    got = ClipReader(64).frames(ann.entries[2].path)
    want = read_frames(mp4s[2])  # the same mp4 decoded straight from its file
    assert got.shape == want.shape and np.array_equal(got, want)
