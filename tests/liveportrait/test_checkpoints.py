"""The released checkpoint layout: the release-size model loads a state dict of its shapes strictly, folders in
the release's and in a flat layout are found, and a wrong file is one line naming it and the keys."""

from __future__ import annotations

import shutil

import pytest
import torch

from faceexpr_cli.animate.liveportrait_weights import load_liveportrait, release_files
from faceexpr_cli.builders import build_model
from faceexpr_cli.errors import CheckpointError, MissingFileError
from tests.liveportrait.conftest import FIXTURE

# float32 megabytes of each released base model as the model repository lists the files (rounded): the release
# preset must give the same parameter counts
RELEASE_MB = {"appearance_feature_extractor": 3.37, "motion_extractor": 113, "warping_module": 182,
              "spade_generator": 222}


def test_release_preset_builds_and_loads_a_state_dict_of_its_shapes_strictly():
    with torch.device("meta"):
        model = build_model("liveportrait")
    for part, mb in RELEASE_MB.items():
        module = getattr(model, part)
        state = module.state_dict()
        assert abs(sum(v.numel() for v in state.values()) * 4 / 1e6 - mb) / mb < 0.01, part
        copy = {k: torch.empty_like(v, device="meta") for k, v in state.items()}
        module.load_state_dict(copy, strict=True, assign=True)
    keys = model.motion_extractor.state_dict()
    assert all(k.startswith("detector.") for k in keys)
    assert "G_middle_0.conv_0.weight_orig" in model.spade_generator.state_dict()
    assert len(model.motion_extractor.detector.stages[2]) == 9


def test_release_layout_and_flat_folder_both_load(tmp_path, tiny_model):
    release = tmp_path / "liveportrait"
    (release / "base_models").mkdir(parents=True)
    (release / "retargeting_models").mkdir()
    for f in FIXTURE.glob("checkpoints/*.pth"):
        sub = "retargeting_models" if f.name.startswith("stitching") else "base_models"
        shutil.copy(f, release / sub / f.name)
    for folder in (release, tmp_path, FIXTURE / "checkpoints"):
        files = release_files(folder)
        assert len(files) == 5, folder


def test_ddp_prefix_is_stripped_and_a_wrong_file_is_named(tmp_path, tiny_model):
    for f in FIXTURE.glob("checkpoints/*.pth"):
        shutil.copy(f, tmp_path / f.name)
    state = torch.load(tmp_path / "warping_module.pth", weights_only=True)
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "warping_module.pth")
    load_liveportrait(tiny_model, tmp_path)  # the original loader strips module. too
    state.pop("third.conv.weight")
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "warping_module.pth")
    with pytest.raises(CheckpointError) as err:
        load_liveportrait(tiny_model, tmp_path)
    line = err.value.one_line()
    assert "warping_module.pth" in line and "third.conv.weight" in line and "extra.weight" in line
    assert "\n" not in line


def test_release_weights_into_a_tiny_model_name_the_shapes(tmp_path):
    with torch.device("meta"):
        big = build_model("liveportrait")
    torch.save({k: torch.zeros(v.shape) for k, v in big.appearance_feature_extractor.state_dict().items()},
               tmp_path / "appearance_feature_extractor.pth")
    for name in ("motion_extractor", "warping_module", "spade_generator"):
        shutil.copy(FIXTURE / "checkpoints" / f"{name}.pth", tmp_path)
    model = build_model("liveportrait", tiny=True)
    with pytest.raises(CheckpointError, match=r"appearance_feature_extractor.pth .*shape: first.conv.weight"):
        load_liveportrait(model, tmp_path)


def test_missing_files_are_listed(tmp_path):
    shutil.copy(FIXTURE / "checkpoints" / "motion_extractor.pth", tmp_path)
    with pytest.raises(MissingFileError) as err:
        release_files(tmp_path)
    assert "lacks appearance_feature_extractor.pth, warping_module.pth, spade_generator.pth" in err.value.one_line()
    with pytest.raises(MissingFileError):
        release_files(tmp_path / "nowhere")


def test_spectral_norm_matches_torch_in_eval_and_train():
    """SNConv2d against torch.nn.utils.spectral_norm with the same stored weight, u and v."""
    from faceexpr_cli.nn.liveportrait.spectral import SNConv2d

    torch.manual_seed(3)
    ref = torch.nn.utils.spectral_norm(torch.nn.Conv2d(4, 6, 3, padding=1))
    ours = SNConv2d(4, 6, 3, padding=1)
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 4, 8, 8)
    ref.eval()
    ours.eval()
    torch.testing.assert_close(ours(x), ref(x), atol=1e-6, rtol=0)
    u_before = ours.weight_u.clone()
    ref.train()
    ours.train()
    torch.testing.assert_close(ours(x), ref(x), atol=1e-6, rtol=0)
    torch.testing.assert_close(ours.weight_u, ref.weight_u, atol=1e-6, rtol=0)
    assert not torch.equal(u_before, ours.weight_u)
