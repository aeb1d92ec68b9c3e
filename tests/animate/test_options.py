"""`fx animate` refuses bad numbers, devices, oversized inputs and bad --out paths with one line, before any work.

Device tests fake the CUDA device count, so they mean the same with and without a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest

from faceexpr_cli.cli.app import main


def _run(capsys, *args):
    code = main(list(map(str, args)))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _one_line(err: str) -> str:
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


@pytest.fixture
def cuda_count(monkeypatch):
    import torch

    def set_count(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)

    return set_count


@pytest.fixture
def decoded(monkeypatch):
    """Paths that ``read_image`` decoded during the test."""
    import faceexpr_cli.media as media

    seen: list[str] = []
    real = media.read_image

    def recording(path):
        seen.append(str(path))
        return real(path)

    monkeypatch.setattr(media, "read_image", recording)
    return seen


@pytest.mark.parametrize("flag, value, want", [
    ("--smooth", "nan", "--smooth must be a finite number >= 0, got nan"),
    ("--smooth", "inf", "--smooth must be a finite number >= 0, got inf"),
    ("--smooth", "-1", "--smooth must be a finite number >= 0, got -1.0"),
    ("--crop-increase", "nan", "--crop-increase must be a finite number >= 0 and <= 10, got nan"),
    ("--crop-increase", "-0.5", "--crop-increase must be a finite number >= 0 and <= 10, got -0.5"),
    ("--max-pixels", "0", "--max-pixels must be a finite number >= 1, got 0"),
    ("--device", "banana", "--device 'banana': unknown device (one of: cpu, cuda, cuda:N, auto)"),
    ("--backend", "banana", "unknown backend 'banana' (known: onnx, torch)"),
])
def test_bad_options_are_usage_errors_before_any_work(flag, value, want, tmp_path, capsys):
    # neither input exists: the option is checked first, so its error is the one shown
    code, out, err = _run(capsys, "animate", "-s", tmp_path / "no.png", "-d", tmp_path / "no.mp4", "-o",
                          tmp_path / "o.mp4", flag, value)
    assert code == 2 and out == ""
    assert _one_line(err) == f"error: {want}"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("count", [0, 1])
@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_fomm_cuda_index_beyond_the_machine(count, backend, cuda_count, tmp_path, capsys, portrait_png,
                                            sample_video, tiny_fomm_args):
    cuda_count(count)
    code, _, err = _run(capsys, "animate", "-s", portrait_png, "-d", sample_video.path, "-o", tmp_path / "o.mp4",
                        *tiny_fomm_args, "--backend", backend, "--device", "cuda:99")
    assert code == 2
    assert "--device cuda:99: no such CUDA device (this machine has " in _one_line(err)
    assert list(tmp_path.iterdir()) == []


def test_fomm_torch_cuda_without_a_gpu(cuda_count, tmp_path, capsys, portrait_png, sample_video, tiny_fomm_args):
    cuda_count(0)
    code, _, err = _run(capsys, "animate", "-s", portrait_png, "-d", sample_video.path, "-o", tmp_path / "o.mp4",
                        *tiny_fomm_args, "--device", "cuda")
    assert code == 1 and "--device cuda: PyTorch sees no CUDA device" in _one_line(err)


def test_landmarks_torch_ignores_the_gpu_it_does_not_use(cuda_count, tmp_path, capsys, portrait_png):
    """The landmarks engine's torch warp runs on the CPU: --device cuda is no reason to refuse it."""
    cuda_count(0)
    code, _, err = _run(capsys, "animate", "-s", portrait_png, "-d", portrait_png, "-o", tmp_path / "o.png",
                        "--device", "cuda")
    assert code == 0, err


@pytest.fixture(scope="module")
def big_png(tmp_path_factory):
    """4200 x 4100 = 17.2 MP: just over the default --max-pixels (4096 x 4096); black, so it compresses to little."""
    import cv2

    path = tmp_path_factory.mktemp("big") / "big.png"
    cv2.imwrite(str(path), np.zeros((4100, 4200, 3), np.uint8))
    return path


@pytest.mark.parametrize("role", ["source", "driving"])
def test_oversized_image_is_refused_from_its_header(role, big_png, portrait_png, sample_video, tmp_path, capsys,
                                                    decoded):
    src, drv, out = (big_png, sample_video.path, "o.mp4") if role == "source" else (portrait_png, big_png, "o.png")
    code, _, err = _run(capsys, "animate", "-s", src, "-d", drv, "-o", tmp_path / out)
    assert code == 1  # as `fx crop` refuses an oversized video (a MediaError)
    assert _one_line(err) == (f"error: {big_png}: resolution 4200x4100 is above the limit ({4096 * 4096} pixels) "
                              "(raise --max-pixels or downscale it)")
    assert str(big_png) not in decoded  # measured from the header: its pixels were never decoded
    assert not (tmp_path / out).exists()


def test_oversized_video_and_reference_are_refused(portrait_png, sample_video, big_png, tmp_path, capsys,
                                                   decoded):
    code, _, err = _run(capsys, "animate", "-s", portrait_png, "-d", sample_video.path, "-o", tmp_path / "o.mp4",
                        "--max-pixels", 320 * 256 - 1)
    assert code == 1 and f"resolution 320x256 is above the limit ({320 * 256 - 1} pixels)" in _one_line(err)
    code, _, err = _run(capsys, "animate", "-s", portrait_png, "-d", portrait_png, "-o", tmp_path / "o.png",
                        "--max-pixels", 512 * 512)
    assert code == 0, err  # the 512 x 512 portrait passes at exactly the limit ...
    code, _, err = _run(capsys, "animate", "-s", portrait_png, "-d", portrait_png, "-o", tmp_path / "r.png",
                        "--reference", big_png)
    assert code == 1 and f"{big_png}: resolution 4200x4100 is above the limit" in _one_line(err)  # ... not more
    assert str(big_png) not in decoded and not (tmp_path / "r.png").exists()


@pytest.mark.parametrize("case", ["dir", "under_file"])
def test_out_that_is_a_directory_or_under_a_file(case, portrait_png, sample_video, tmp_path, capsys):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    (tmp_path / "result.mp4").mkdir()
    out = tmp_path / "result.mp4" if case == "dir" else blocker / "result.mp4"
    code, _, err = _run(capsys, "animate", "-s", portrait_png, "-d", sample_video.path, "-o", out)
    assert code == 2
    want = f"--out {out} is a directory" if case == "dir" else f"--out {out} lies under the file {blocker}"
    assert want in _one_line(err)
    assert blocker.read_text() == "x" and list((tmp_path / "result.mp4").iterdir()) == []
