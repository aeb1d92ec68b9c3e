"""One run per output folder, --out checks, the --max-pixels limit, numeric options and plain keys."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from faceexpr_cli.cli.app import main
from faceexpr_cli.clip.synthetic import read_code
from faceexpr_cli.dataset import ClipDataset

KEY = re.compile(r"[A-Za-z0-9_-]+")


def _run(capsys, *args):
    code = main(["clip", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _fx(*args, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "faceexpr_cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _check_clips(out, expected: int) -> None:
    """Every clip in the folder decodes to consecutive source frames of the asked length (0.2 s = 5 frames)."""
    samples = list(ClipDataset(out, audio=False))
    assert len(samples) == expected
    for s in samples:
        codes = [read_code(f.numpy()) for f in s["frames"]]
        assert len(codes) == 5 and codes == list(range(codes[0], codes[0] + 5))
    rows = pq.read_table(out / "index.parquet").to_pylist()
    assert sorted(r["key"] for r in rows if r["status"] == "ok") == sorted(s["key"] for s in samples)
    assert not list(out.glob(".*.part")) and not (out / ".fx-lock").exists()


def test_a_second_run_on_the_same_out_refuses_and_the_first_finishes(long_talk, tmp_path, capsys):
    out = tmp_path / "out"
    first = _fx("-q", "clip", long_talk.path, "--random", "40", "--post", "0.2", "--shard-count", "4", "-o", out)
    deadline = time.time() + 60
    started = (out / ".fx-lock", out / "run.json")  # the lock, or (without one) the dataset writer's first file
    while not any(p.exists() for p in started) and first.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert first.poll() is None, "the first run ended before the second could start"
    code, stdout, err = _run(capsys, long_talk.path, "--random", "40", "--post", "0.2", "-o", out)
    stdout_1, err_1 = first.communicate(timeout=120)
    assert code == 1 and "Traceback" not in err
    [line] = _lines(err)
    assert f"pid {first.pid}" in line and "fx clip" in line and "in use" in line
    assert first.returncode == 0, err_1
    assert "Traceback" not in err_1 and "40 clips" in stdout_1
    _check_clips(out, 40)


def test_a_held_folder_is_refused_before_any_work(talk, tmp_path, capsys):
    from faceexpr_cli.runlock import output_lock

    out = tmp_path / "out"
    with output_lock(out, "fx clip"):
        code, _, err = _run(capsys, talk.path, "--random", "2", "--post", "0.2", "-o", out)
        assert code == 1 and len(_lines(err)) == 1 and "in use" in err
        assert sorted(p.name for p in out.iterdir()) == [".fx-lock"]  # the refused run wrote nothing
    code, _, _ = _run(capsys, talk.path, "--random", "2", "--post", "0.2", "-o", out)
    assert code == 0 and len(list(ClipDataset(out, audio=False))) == 2


@pytest.mark.parametrize("under", [False, True])
def test_out_that_is_a_file_is_a_usage_error(talk, tmp_path, capsys, under):
    target = tmp_path / "taken"
    target.write_text("not a folder")
    out = target / "clips" if under else target
    code, _, err = _run(capsys, talk.path, "--random", "1", "-o", out)
    assert code == 2 and "Traceback" not in err
    [line] = _lines(err)
    assert str(target) in line and "file" in line
    assert target.read_text() == "not a folder"


def test_max_pixels_is_a_failed_row_checked_before_decoding(talk, tmp_path, capsys, monkeypatch):
    import faceexpr_cli.media.clipping as clipping

    big = tmp_path / "big.mp4"  # 192x96 = 18432 pixels
    shutil.copy(talk.path, big)
    out = tmp_path / "out"

    def no_decoding(*a, **k):
        raise AssertionError("frames were decoded for a video over --max-pixels")

    with monkeypatch.context() as m:
        m.setattr(clipping, "iter_span_frames", no_decoding)
        code, stdout, err = _run(capsys, big, "--random", "1", "--post", "0.2", "--max-pixels", "18431", "-o", out)
    assert code == 1 and "1 of 1 items failed" in err and "Traceback" not in err
    [row] = pq.read_table(out / "index.parquet").to_pylist()
    assert row["status"] == "failed" and row["source"] == str(big)
    assert "resolution 192x96 is above the limit (18431 pixels)" in row["error"]
    assert "--max-pixels" in row["error"] and not list(out.glob("clips-*.tar"))
    # at the limit it is clipped, and a re-run retries the failed input
    code, stdout, _ = _run(capsys, big, "--random", "1", "--post", "0.2", "--max-pixels", "18432", "-o", out)
    assert code == 0 and "1 clips" in stdout
    [s] = list(ClipDataset(out, audio=False))
    assert len(s["frames"]) == 5 and s["frames"].shape[1:3] == (96, 192)


@pytest.mark.parametrize(("flag", "value"), [
    ("--pre", "nan"), ("--post", "inf"), ("--post", "nan"), ("--offset", "nan"), ("--offset", "-inf"),
    ("--min-duration", "nan"), ("--max-duration", "0"), ("--max-duration", "inf"), ("--end-margin", "nan"),
    ("--min-gap", "nan"), ("--min-gap", "-1"), ("--shard-mb", "nan"), ("--shard-mb", "inf"), ("--shard-mb", "0"),
    ("--crf", "99"), ("--face-size", "0"), ("--max-pixels", "0"), ("--fps", "inf"),
])
def test_bad_numbers_are_usage_errors_before_any_work(talk, tmp_path, capsys, flag, value):
    out = tmp_path / "out"
    code, _, err = _run(capsys, talk.path, "--random", "1", flag, value, "-o", out)
    assert code == 2 and flag in err and "Traceback" not in err
    assert not out.exists()


def test_keys_from_odd_file_names_are_plain(talk, tmp_path, capsys):
    odd = tmp_path / "my talk (take 2).final..mp4"
    shutil.copy(talk.path, odd)
    out = tmp_path / "out"
    code, _, _ = _run(capsys, odd, "--random", "2", "--post", "0.2", "-o", out)
    assert code == 0
    keys = [s["key"] for s in ClipDataset(out, audio=False)]
    assert len(keys) == 2 and all(KEY.fullmatch(k) for k in keys), keys
    for shard in out.glob("clips-*.tar"):
        import tarfile

        with tarfile.open(shard) as tar:
            assert all(KEY.fullmatch(n.rsplit(".", 1)[0]) and os.sep not in n for n in tar.getnames())


def test_a_missing_input_is_one_line_and_leaves_no_out_folder(talk, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for args in (["missing.mp4", "-k", "smile"], [str(talk.path), "missing.mp4", "--random", "2"]):
        assert main(["clip", *args, "-o", "X"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.splitlines() == ["error: input not found: missing.mp4 (check the path)"]
        assert not (tmp_path / "X").exists()
