"""One table over every batch command and every bad-input class.

Each cell runs the real ``fx`` in its own process and asserts what a user must always get: an exit code of 1 or 2
(130 after Ctrl-C), one message and no traceback on stderr, and no file under a final name that fails to decode
(nor a temporary file left behind). New commands join ``COMMANDS``; new input classes join ``VIDEO_CASES``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from outcheck import FX, assert_clean_failure, broken_outputs, run_fx

VIDEO_CASES = ("zero_byte", "truncated", "not_a_video", "audio_only", "face_less")


def _crop(inp, out, ctx):
    return ["crop", inp, "--out", out, "--no-embed"]


def _clip(inp, out, ctx):
    # --faces: a clip of a face-less video has nothing to show
    return ["clip", inp, "--random", "2", "--frames", "8", "--seed", "1", "--faces", "--out", out]


def _extract(inp, out, ctx):
    return ["extract-feats", inp, "--model", ctx["run"], "--out", out]


def _animate(inp, out, ctx):
    return ["animate", "--source", ctx["portrait"], "--driving", inp, "--out", Path(out) / "result.mp4"]


def _swap(inp, out, ctx):
    return ["swap", "--source", ctx["portrait"], "--driving", inp, "--out", Path(out) / "result.mp4"]


def _train(inp, out, ctx):
    data = Path(ctx["tmp"]) / "data"
    data.mkdir(exist_ok=True)
    link = data / Path(inp).name
    if not link.exists():
        link.symlink_to(inp)
    return ["train", "joint", "--recipe", "joint-tiny", f"data.path={data}", "--out", out, "trainer.max_steps=1",
            "trainer.tensorboard=false", "data.workers=0"]


# command -> (argv builder, a NaN option that must be refused before any work)
COMMANDS = {
    "crop": (_crop, ["--margin", "nan"]),
    "clip": (_clip, ["--pre", "nan"]),
    "extract-feats": (_extract, ["--smooth-hz", "nan"]),
    "animate": (_animate, ["--smooth", "nan"]),
    "swap": (_swap, ["--colour", "nan"]),
    "train-joint": (_train, ["schedule.lr.initial=nan"]),
}


@pytest.fixture
def ctx(bad, joint_run, tmp_path):
    return {"run": joint_run, "portrait": bad["portrait"], "tmp": tmp_path}


# training reads clips, it does not look for faces: a face-less clip is data, not a bad input;
# and a swap passes face-less frames through unchanged (counted, exit 0), as the issue asks
NOT_BAD = {("train-joint", "face_less"), ("swap", "face_less")}


@pytest.mark.parametrize("case", VIDEO_CASES)
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_bad_video(command, case, bad, ctx, tmp_path):
    if (command, case) in NOT_BAD:
        pytest.skip("not a bad input for this command")
    build, _ = COMMANDS[command]
    out = tmp_path / "out"
    res = run_fx(build(bad[case], out, ctx))
    assert_clean_failure(res)
    assert broken_outputs(out) == []


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_nan_option_is_a_usage_error_before_any_work(command, bad, ctx, tmp_path):
    build, nan = COMMANDS[command]
    out = tmp_path / "out"
    res = run_fx([*build(bad["good"], out, ctx), *nan])
    assert_clean_failure(res, codes=(2,))
    flag = nan[0].split("=")[0]
    assert flag.lstrip("-").split(".")[-1] in res.stderr, res.stderr  # the message names the option
    made = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    assert made == [], f"work was done before the option was refused: {made}"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_out_that_is_a_file(command, bad, ctx, tmp_path):
    build, _ = COMMANDS[command]
    a_file = tmp_path / "taken.txt"
    a_file.write_text("keep me\n")
    res = run_fx(build(bad["good"], a_file, ctx))  # animate's -o lands under the file
    assert_clean_failure(res, codes=(2,))
    assert a_file.read_text() == "keep me\n"


def _wait_for(predicate, timeout: float) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _start(args, **kw) -> subprocess.Popen:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("FX_DEBUG", None)
    return subprocess.Popen([*FX, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, **kw)


@pytest.mark.parametrize("command", ["crop", "clip", "extract-feats"])
def test_second_run_on_one_folder_is_refused(command, bad, many_good, ctx, tmp_path):
    build, _ = COMMANDS[command]
    out = tmp_path / "out"
    args = build(many_good, out, ctx)
    if command == "clip":
        args.remove("--faces")
    first = _start(args)
    try:
        assert _wait_for(lambda: (out / ".fx-lock").exists(), 60), "the first run never took the folder"
        second = run_fx(args)
        assert_clean_failure(second, codes=(1,))
        assert "in use" in second.stderr and str(first.pid) in second.stderr
        stdout, stderr = first.communicate(timeout=300)
    finally:
        first.kill()
    assert first.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert broken_outputs(out) == []


def test_ctrl_c_with_workers(many_good, tmp_path):
    """fx crop --workers 2: SIGINT stops the run within seconds, exit 130, and leaves only whole files."""
    out = tmp_path / "out"
    proc = _start(["crop", many_good, "--out", out, "--no-embed", "--workers", "2"], start_new_session=False)
    try:
        assert _wait_for(lambda: (out / ".fx-lock").exists(), 60)
        time.sleep(2.0)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert took < 10, f"took {took:.1f} s to stop"
    assert "Traceback" not in stderr and "interrupted" in stderr
    assert broken_outputs(out) == []
    # no worker outlives the run
    time.sleep(0.5)
    ps = subprocess.run(["pgrep", "-f", str(out)], capture_output=True, text=True)
    assert ps.stdout.strip() == "", f"left running: {ps.stdout}"


CHECKPOINT_CASES = ("zero_byte", "truncated", "not_a_checkpoint")


@pytest.fixture(scope="session")
def bad_checkpoints(joint_run, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad_ckpt")
    good = sorted(Path(joint_run).glob("*.safetensors"))[0]
    data = good.read_bytes()
    (d / "zero_byte.safetensors").write_bytes(b"")
    (d / "truncated.safetensors").write_bytes(data[: len(data) // 2])
    (d / "not_a_checkpoint.safetensors").write_text("{\"hello\": 1}\n" * 50)
    return {k: d / f"{k}.safetensors" for k in CHECKPOINT_CASES}


@pytest.mark.parametrize("case", CHECKPOINT_CASES)
def test_export_onnx_bad_checkpoint(case, bad_checkpoints, tmp_path):
    out = tmp_path / "out"
    res = run_fx(["export-onnx", bad_checkpoints[case], "--out", out])
    assert_clean_failure(res)
    assert broken_outputs(out) == []


def test_export_onnx_out_is_a_file(joint_run, tmp_path):
    a_file = tmp_path / "taken.txt"
    a_file.write_text("keep me\n")
    res = run_fx(["export-onnx", joint_run, "--out", a_file])
    assert_clean_failure(res, codes=(2,))
    assert a_file.read_text() == "keep me\n"


DOWNLOAD_CASES = ("zero_byte", "truncated", "not_a_manifest")


@pytest.mark.parametrize("case", DOWNLOAD_CASES)
def test_download_bad_manifest(case, sample_video, tmp_path):
    import pandas as pd

    good = tmp_path / "good.parquet"
    pd.DataFrame({"url": [str(sample_video.path)]}).to_parquet(good)
    manifest = tmp_path / f"{case}.parquet"
    if case == "zero_byte":
        manifest.write_bytes(b"")
    elif case == "truncated":
        manifest.write_bytes(good.read_bytes()[:40])
    else:
        manifest.write_bytes(bytes(range(256)) * 8)
    out = tmp_path / "out"
    res = run_fx(["download", manifest, "--out", out])
    assert_clean_failure(res)
    assert broken_outputs(out) == []


def test_download_out_is_a_file(sample_video, tmp_path):
    listing = tmp_path / "urls.txt"
    listing.write_text(f"{sample_video.path}\n")
    a_file = tmp_path / "taken.txt"
    a_file.write_text("keep me\n")
    res = run_fx(["download", listing, "--out", a_file])
    assert_clean_failure(res, codes=(2,))
    assert a_file.read_text() == "keep me\n"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_training_run_folder_is_one_run_and_ctrl_c_leaves_whole_files(tmp_path):
    """A second `fx train joint` on a running one's --out is refused; Ctrl-C then stops the first cleanly."""
    out = tmp_path / "run"
    args = ["train", "joint", "--recipe", "joint-tiny", "data.path=sample", "--out", out, "trainer.max_steps=100000",
            "trainer.save_every=5", "trainer.eval_every=0", "trainer.tensorboard=false", "data.workers=0"]
    first = _start(args)
    try:
        assert _wait_for(lambda: (out / ".fx-lock").exists(), 120), "the first run never took its folder"
        second = run_fx(args)
        assert_clean_failure(second, codes=(1,))
        assert "in use" in second.stderr and str(first.pid) in second.stderr
        assert _wait_for(lambda: any(out.rglob("*.safetensors")), 120), "no checkpoint was written"
        first.send_signal(signal.SIGINT)
        stdout, stderr = first.communicate(timeout=60)
    finally:
        first.kill()
    assert first.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    assert broken_outputs(out) == []
