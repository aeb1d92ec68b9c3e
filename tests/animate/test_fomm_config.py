"""`fx animate --config` with an original FOMM YAML: the model runs at its dataset_params.frame_shape, --size wins."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
import yaml

from faceexpr_cli.cli.app import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fomm"
DRIVER_FRAMES = 7


def _config(tmp_path: Path, frame_shape) -> Path:
    """The tiny fixture's model_params with a dataset_params section as the original vox-256.yaml writes it."""
    data = yaml.safe_load((FIXTURES / "tiny_config.yaml").read_text())
    data["dataset_params"] = {"root_dir": "data/vox-png", "frame_shape": frame_shape, "id_sampling": True}
    path = tmp_path / "vox-tiny.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def driver(tmp_path_factory) -> Path:
    """A short talking head (a face fx's face layer finds) of DRIVER_FRAMES frames; counted again by PyAV below."""
    from faceexpr_cli.samples import make_talking_head

    path = tmp_path_factory.mktemp("drv") / "drive.mp4"
    make_talking_head(path, seconds=DRIVER_FRAMES / 25.0, fps=25.0, width=160, height=128, face_fraction=0.6)
    return path


@pytest.fixture
def generator_inputs(monkeypatch) -> list[tuple[int, ...]]:
    """The (B, C, H, W) of every source image the FOMM generator network really receives."""
    from faceexpr_cli.nn.fomm.generator import OcclusionAwareGenerator

    seen: list[tuple[int, ...]] = []
    real = OcclusionAwareGenerator.forward

    def forward(self, source, *args, **kwargs):
        seen.append(tuple(source.shape))
        return real(self, source, *args, **kwargs)

    monkeypatch.setattr(OcclusionAwareGenerator, "forward", forward)
    return seen


def _decoded(path: Path) -> tuple[int, int, int]:
    with av.open(str(path)) as box:
        frames = [f for f in box.decode(video=0)]
    return len(frames), frames[0].width, frames[0].height


@pytest.mark.parametrize(("extra", "size"), [([], 128), (["--size", "160"], 160)], ids=["frame_shape", "size-wins"])
def test_original_yaml_runs_at_its_frame_shape_or_size(extra, size, tmp_path, driver, portrait_png,
                                                       generator_inputs):
    config = _config(tmp_path, [128, 128, 3])
    out = tmp_path / "r.mp4"
    code = main(["animate", "-s", str(portrait_png), "-d", str(driver), "-o", str(out), "--engine", "fomm",
                 "--config", str(config), "--checkpoint", "random", "--smooth", "0", *extra])
    assert code == 0
    assert generator_inputs and {s[2:] for s in generator_inputs} == {(size, size)}
    frames, width, height = _decoded(out)
    assert frames == _decoded(driver)[0] == DRIVER_FRAMES
    assert (width, height) == (size, size)


def test_bad_frame_shape_and_size_are_one_line_usage_errors(tmp_path, driver, portrait_png, capsys):
    base = ["animate", "-s", str(portrait_png), "-d", str(driver), "-o", str(tmp_path / "r.mp4")]
    config = _config(tmp_path, [128, 96, 3])
    assert main([*base, "--engine", "fomm", "--config", str(config), "--checkpoint", "random"]) == 2
    assert "frame_shape [128, 96, 3] is not square" in capsys.readouterr().err
    assert main([*base, "--size", "128"]) == 2  # the landmarks engine works at the image's own size
    assert "--size applies to" in capsys.readouterr().err
    assert main([*base, "--engine", "fomm", "--checkpoint", "random", "--size", "8"]) == 2
    assert "--size" in capsys.readouterr().err
    assert not (tmp_path / "r.mp4").exists()
