"""`fx animate --backend onnx --device cuda` on a machine without CUDA: one line, before any export work."""

from __future__ import annotations

from faceexpr_cli.cli.app import main
from faceexpr_cli.media import write_image
from faceexpr_cli.samples import load_portrait


def test_cuda_without_a_gpu_fails_fast_and_names_the_flag(tmp_path, sample_video, capsys):
    src = write_image(tmp_path / "src.png", load_portrait("grace_hopper")[0])
    out = tmp_path / "out.mp4"
    code = main(["animate", "-s", str(src), "-d", str(sample_video.path), "-o", str(out),
                 "--backend", "onnx", "--device", "cuda", "--max-frames", "2"])
    err = capsys.readouterr().err
    assert code == 1
    assert "--allow-cpu-fallback" in err and "Traceback" not in err
    assert not out.exists()
