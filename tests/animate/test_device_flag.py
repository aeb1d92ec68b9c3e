"""`fx animate --backend onnx --device cuda` without a usable CUDA provider: one line, before any export work.

The refusal is tested everywhere by faking ONNX Runtime's provider list (a GPU machine hides its CUDA provider);
the unfaked run is only meaningful, and only runs, where there is no CUDA.
"""

from __future__ import annotations

import pytest

from faceexpr_cli.cli.app import main
from faceexpr_cli.media import write_image
from faceexpr_cli.samples import load_portrait


def _cuda_present() -> bool:
    import torch

    from faceexpr_cli.onnx.session import CUDA, available_providers

    return CUDA in available_providers() or torch.cuda.device_count() > 0


def _animate(tmp_path, sample_video, *extra):
    src = write_image(tmp_path / "src.png", load_portrait("grace_hopper")[0])
    out = tmp_path / "out.mp4"
    code = main(["animate", "-s", str(src), "-d", str(sample_video.path), "-o", str(out), "--backend", "onnx",
                 "--device", "cuda", "--max-frames", "2", *extra])
    return code, out


def _check_refusal(code, out, capsys) -> None:
    from faceexpr_cli.onnx.cache import cache_root

    err = capsys.readouterr().err.strip()
    assert code == 1, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert "although 'cuda' was asked for" in err and "--allow-cpu-fallback" in err
    assert not out.exists()
    assert not cache_root().exists() or not any(cache_root().rglob("*.onnx"))  # refused before exporting a graph


@pytest.mark.skipif(_cuda_present(), reason="CUDA is here: the refusal is tested with CUDA faked away below")
def test_cuda_without_a_gpu_fails_fast_and_names_the_flag(tmp_path, sample_video, capsys):
    _check_refusal(*_animate(tmp_path, sample_video), capsys)


@pytest.mark.parametrize("engine", ["landmarks", "fomm"])
def test_refusal_with_cuda_faked_away(engine, monkeypatch, tmp_path, sample_video, capsys, tiny_fomm_args):
    import faceexpr_cli.onnx.session as session

    monkeypatch.setattr(session, "available_providers", lambda: [session.CPU])  # a CPU-only onnxruntime build
    extra = tiny_fomm_args if engine == "fomm" else []
    _check_refusal(*_animate(tmp_path, sample_video, *extra), capsys)
