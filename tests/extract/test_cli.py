"""`fx extract-feats` on the command line: results on stdout, one-line errors with exit 2 for user mistakes."""

from __future__ import annotations

import json

import pytest

from faceexpr_cli.cli.app import main


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_table_output_names_the_video_and_its_status(sample_video, tiny_export, tmp_path, capsys):
    out = tmp_path / "feats"
    assert main(["-q", "extract-feats", str(sample_video.path), "-m", str(tiny_export), "-o", str(out),
                 "--stride", "10"]) == 0
    text = capsys.readouterr().out
    assert "talking_head.mp4" in text and " ok " in text and "(onnx)" in text, text
    assert "(10 tokens, 0 failed)" in " ".join(text.split())
    doc = json.loads(next((out / "features").glob("*.json")).read_text())
    assert [sorted(e) for e in doc["traj"][0]] == [["box", "frame_ind", "score", "time"]] * 10  # no floats
    assert (out / "features" / doc["npz"]).is_file()  # the tokens are in the .npz


@pytest.mark.parametrize("flag", ["--json-floats", "--json-feats"])  # the old name still works
def test_json_floats_put_the_tokens_in_the_json(flag, sample_video, tiny_export, tmp_path, capsys):
    import numpy as np

    from faceexpr_cli.extract import read_features

    out = tmp_path / "feats"
    assert main(["-q", "extract-feats", str(sample_video.path), "-m", str(tiny_export), "-o", str(out),
                 "--stride", "10", flag]) == 0
    doc = json.loads(next((out / "features").glob("*.json")).read_text())
    arrays = read_features(out / "features" / doc["npz"])
    feats = np.array([e["feats"] for traj in doc["traj"] for e in traj])
    assert feats.shape == arrays["tokens"].shape == (10, 64)
    np.testing.assert_allclose(feats, arrays["tokens"], atol=1e-6)  # rounded to 6 decimals


@pytest.mark.parametrize("model", ["export", "missing"])
def test_a_missing_input_is_one_line_before_the_model_and_leaves_no_out_folder(model, sample_video, tiny_export,
                                                                              tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    m = str(tiny_export) if model == "export" else "RUN"  # a missing input is named even when --model is wrong
    assert main(["extract-feats", str(sample_video.path), "missing.mp4", "-m", m, "-o", "X"]) == 2
    assert _one_line_error(capsys) == "error: input not found: missing.mp4 (check the path)"
    assert not (tmp_path / "X").exists()


@pytest.mark.parametrize("case, expected", [
    ("missing", "model directory not found: {m}"),
    ("plain", "{m} is neither a training run (no checkpoints/) nor an ONNX export (no report.json)"),
    ("file", "--model {m} is a file, not a run or export directory"),
    ("run-as-onnx", "{m} is a training run, not an ONNX export (use --backend torch, or export it first"),
    ("export-as-torch", "{m} is an ONNX export, not a training run (use --backend onnx"),
    ("subject", "unknown subject in {s} 'nobody' (known: astronaut, grace_hopper)"),
    ("device", "--device 'gpu': unknown device (one of: cpu, cuda, cuda:N, tensorrt, tensorrt:N, auto)"),
    ("device-torch", "--device 'tensorrt': unknown device (one of: cpu, cuda, cuda:N, auto)"),
])
def test_usage_errors_are_one_line_with_exit_2(case, expected, sample_video, tiny_run, tiny_export, tmp_path,
                                               capsys):
    (tmp_path / "plain").mkdir()
    (tmp_path / "weights.bin").write_bytes(b"x")
    model, extra = {
        "missing": (tmp_path / "nope", []), "plain": (tmp_path / "plain", []), "file": (tmp_path / "weights.bin", []),
        "run-as-onnx": (tiny_run, ["--backend", "onnx"]), "export-as-torch": (tiny_export, ["--backend", "torch"]),
        "subject": (tiny_run, ["--subject", "nobody"]), "device": (tiny_export, ["--device", "gpu"]),
        "device-torch": (tiny_run, ["--device", "tensorrt"]),
    }[case]
    out = tmp_path / "out"
    code = main(["extract-feats", str(sample_video.path), "--model", str(model), "--out", str(out), *extra])
    assert code == 2
    err = _one_line_error(capsys)
    assert expected.format(m=model, s=tiny_run / "subjects.json") in err
    assert not out.exists()  # nothing is written before the model loads


def test_missing_input_and_bad_option(tiny_export, tmp_path, capsys):
    code = main(["extract-feats", str(tmp_path / "gone.mp4"), "-m", str(tiny_export), "-o", str(tmp_path / "o")])
    assert code == 2 and "input not found" in _one_line_error(capsys)
    code = main(["extract-feats", str(tmp_path), "-m", str(tiny_export), "--smooth-hz", "0"])
    assert code == 2 and "--smooth-hz must be a finite number > 0, got 0.0" in _one_line_error(capsys)


def test_help_shows_examples(capsys):
    assert main(["extract-feats", "--help"]) == 0
    text = capsys.readouterr().out
    assert "fx extract-feats talk.mp4 --model runs/joint-tiny --out feats" in text and "--backend" in text
