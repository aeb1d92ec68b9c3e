"""`fx extract-feats` refuses bad numbers, devices and output folders with one line, before any work.

Device tests are GPU-neutral: the CUDA device count is faked, so they mean the same on a laptop and on a GPU box.
"""

from __future__ import annotations

import os

import pytest

from faceexpr_cli.cli.app import main


def _one_line_error(capsys) -> str:
    """The error is one line (log lines of the model load before it, e.g. a random-weights warning, may precede it)."""
    cap = capsys.readouterr()
    err = cap.err.strip()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert "Traceback" not in err and len(errors) == 1 and err.splitlines()[-1] == errors[0], err
    assert cap.out.strip() == ""
    return errors[0]


@pytest.fixture
def cuda_count(monkeypatch):
    """``set(n)``: make torch report ``n`` CUDA devices for this test."""
    import torch

    def set_count(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)

    return set_count


@pytest.mark.parametrize("flag, value, want", [
    ("--smooth-hz", "nan", "--smooth-hz must be a finite number > 0, got nan"),  # once: all-NaN tokens marked ok
    ("--smooth-hz", "inf", "--smooth-hz must be a finite number > 0, got inf"),
    ("--smooth-hz", "-2", "--smooth-hz must be a finite number > 0, got -2.0"),
    ("--margin", "nan", "--margin must be a finite number >= 0 and <= 10, got nan"),
    ("--margin", "-0.1", "--margin must be a finite number >= 0 and <= 10, got -0.1"),
    ("--margin", "inf", "--margin must be a finite number >= 0 and <= 10, got inf"),
    ("--min-face", "nan", "--min-face must be a finite number >= 0, got nan"),
    ("--min-face", "-1", "--min-face must be a finite number >= 0, got -1.0"),
])
def test_bad_numbers_are_usage_errors_before_the_model_loads(flag, value, want, tmp_path, capsys):
    out = tmp_path / "out"
    # the model folder does not exist: the number is checked first, so its error is the one shown
    code = main(["extract-feats", str(tmp_path), "-m", str(tmp_path / "no-model"), "-o", str(out), "--smooth",
                 flag, value])
    assert code == 2
    assert _one_line_error(capsys) == f"error: {want}"
    assert not out.exists()


@pytest.mark.parametrize("count", [0, 1, 2])
@pytest.mark.parametrize("which", ["tiny_run", "tiny_export"])
def test_cuda_index_beyond_the_machine_is_a_usage_error(count, which, cuda_count, sample_video, tmp_path, capsys,
                                                        request):
    cuda_count(count)
    out = tmp_path / "out"
    code = main(["extract-feats", str(sample_video.path), "-m", str(request.getfixturevalue(which)), "-o", str(out),
                 "--device", "cuda:99"])
    assert code == 2
    err = _one_line_error(capsys)
    assert "--device cuda:99: no such CUDA device (this machine has " in err
    assert ("has none" in err) == (count == 0) and (f"cuda:0..cuda:{count - 1}" in err) == (count > 0)
    assert not out.exists()


@pytest.mark.parametrize("device", ["banana", "cuda:", "cuda:-1", "cpu:0", "cuda:one", ""])
def test_misspelt_devices_are_usage_errors(device, tiny_run, sample_video, tmp_path, capsys):
    code = main(["extract-feats", str(sample_video.path), "-m", str(tiny_run), "-o", str(tmp_path / "o"),
                 "--device", device])
    assert code == 2 and f"--device {device!r}: unknown device" in _one_line_error(capsys)


def test_torch_cuda_without_a_gpu_is_one_line(cuda_count, tiny_run, sample_video, tmp_path, capsys):
    cuda_count(0)
    code = main(["extract-feats", str(sample_video.path), "-m", str(tiny_run), "-o", str(tmp_path / "o"),
                 "--device", "cuda"])
    assert code == 1
    assert "--device cuda: PyTorch sees no CUDA device on this machine (use --device cpu" in _one_line_error(capsys)
    assert not (tmp_path / "o").exists()


def test_check_device_resolves_and_normalises(cuda_count):
    from faceexpr_cli.devices import check_device
    from faceexpr_cli.errors import UsageError

    cuda_count(0)
    assert check_device("auto") == "cpu" and check_device(" CPU ") == "cpu"
    assert check_device("cuda", backend="onnx") == "cuda"  # ONNX Runtime refuses or falls back itself
    assert check_device("auto", backend="onnx") == "auto"
    with pytest.raises(UsageError, match="no such CUDA device"):
        check_device("cuda:1", backend="onnx")
    cuda_count(2)
    assert check_device("auto") == "cuda" and check_device("CUDA:1") == "cuda:1"
    assert check_device("tensorrt:1", backend="onnx") == "tensorrt:1"
    for bad, backend in (("cuda:2", "torch"), ("tensorrt", "torch"), ("mps", "onnx"), ("tensorrt:2", "onnx")):
        with pytest.raises(UsageError):
            check_device(bad, backend=backend)


def test_a_second_run_on_the_same_out_is_refused(sample_video, tiny_export, tmp_path, capsys):
    from faceexpr_cli.runlock import output_lock

    out = tmp_path / "feats"
    with output_lock(out, "fx extract-feats"):  # another run holds the folder
        code = main(["extract-feats", str(sample_video.path), "-m", str(tiny_export), "-o", str(out),
                     "--stride", "25"])
        err = _one_line_error(capsys)
    assert code == 1
    assert f"{out} is in use by fx extract-feats (pid {os.getpid()} on " in err
    assert sorted(p.name for p in out.iterdir()) == []  # nothing written by the refused run; the lock is gone
    code = main(["-q", "extract-feats", str(sample_video.path), "-m", str(tiny_export), "-o", str(out),
                 "--stride", "25"])
    assert code == 0 and (out / "features.parquet").is_file() and not (out / ".fx-lock").exists()


@pytest.mark.parametrize("where", ["file", "under"])
def test_out_that_is_or_lies_under_a_file(where, sample_video, tiny_export, tmp_path, capsys):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    out = blocker if where == "file" else blocker / "feats"
    code = main(["extract-feats", str(sample_video.path), "-m", str(tiny_export), "-o", str(out)])
    assert code == 2
    err = _one_line_error(capsys)
    assert (f"--out {out} is a file" if where == "file" else f"--out {out} lies under the file {blocker}") in err
    assert blocker.read_text() == "x"
