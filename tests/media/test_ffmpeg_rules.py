"""Finding ffmpeg (FX_FFMPEG, PATH, imageio-ffmpeg, none), the exact command line run_ffmpeg runs (seen by a
stand-in ffmpeg script), its failure and timeout messages, ffmpeg_info's parsing, and last_error_line."""

from __future__ import annotations

import shutil
import stat
import sys

import pytest

from faceexpr_cli.errors import DependencyError, MediaError
from faceexpr_cli.media.ffmpeg import INSTALL_HINT, ffmpeg_info, find_ffmpeg, last_error_line, run_ffmpeg


def fake_exe(path, body: str):
    path.write_text(f"#!{sys.executable}\nimport sys\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_fx_ffmpeg_wins_and_must_exist(tmp_path, monkeypatch):
    exe = fake_exe(tmp_path / "my-ffmpeg", "")
    monkeypatch.setenv("FX_FFMPEG", str(exe))
    assert find_ffmpeg() == str(exe)
    monkeypatch.setenv("FX_FFMPEG", str(tmp_path / "gone"))
    with pytest.raises(DependencyError) as err:
        find_ffmpeg()
    assert err.value.message == f"FX_FFMPEG points to {tmp_path / 'gone'}, which does not exist"
    assert err.value.hint == INSTALL_HINT
    monkeypatch.setenv("FX_FFMPEG", str(tmp_path))  # a folder is not a binary
    with pytest.raises(DependencyError, match="which does not exist"):
        find_ffmpeg()


def test_path_then_imageio_then_none(tmp_path, monkeypatch):
    import imageio_ffmpeg

    monkeypatch.delenv("FX_FFMPEG", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: "/opt/bin/ffmpeg" if name == "ffmpeg" else None)
    assert find_ffmpeg() == "/opt/bin/ffmpeg"
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", lambda: "/bundled/ffmpeg")
    assert find_ffmpeg() == "/bundled/ffmpeg"
    monkeypatch.setenv("FX_FFMPEG", "")  # empty: not set

    def missing():
        raise RuntimeError("no binary")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", missing)
    with pytest.raises(DependencyError) as err:
        find_ffmpeg()
    assert err.value.message == "ffmpeg not found" and err.value.hint == INSTALL_HINT


def test_run_ffmpeg_runs_quietly_with_the_arguments_and_input(tmp_path, monkeypatch):
    log = tmp_path / "args.txt"
    exe = fake_exe(tmp_path / "ff", f"open({str(log)!r}, 'w').write(repr(sys.argv[1:]) + '|' + sys.stdin.read())")
    monkeypatch.setenv("FX_FFMPEG", str(exe))
    proc = run_ffmpeg(["-i", "in.mp4", "out.wav"], "in.mp4", input_bytes=b"data")
    assert proc.returncode == 0
    args, stdin = log.read_text().split("|")
    assert args == repr(["-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", "in.mp4", "out.wav"])
    assert stdin == "data"


def test_a_failure_names_the_file_and_ffmpegs_last_line(tmp_path, monkeypatch):
    exe = fake_exe(tmp_path / "ff", "sys.stderr.write('first\\n  the real reason  \\n\\n'); sys.exit(1)")
    monkeypatch.setenv("FX_FFMPEG", str(exe))
    with pytest.raises(MediaError) as err:
        run_ffmpeg([], tmp_path / "video.mp4")
    assert err.value.path == str(tmp_path / "video.mp4") and err.value.problem == "ffmpeg failed: the real reason"


def test_a_timeout_is_one_error(tmp_path, monkeypatch):
    exe = fake_exe(tmp_path / "ff", "import time; time.sleep(5)")
    monkeypatch.setenv("FX_FFMPEG", str(exe))
    with pytest.raises(MediaError) as err:
        run_ffmpeg([], "slow.mp4", timeout=0.3)
    assert err.value.path == "slow.mp4" and err.value.problem == "ffmpeg timed out after 0.3 s"


def test_last_error_line():
    assert last_error_line(b"a\n b \n\n") == "b"
    assert last_error_line("one\r\ntwo\r\n") == "two"
    assert last_error_line(b"\xff bad bytes") == "\ufffd bad bytes"
    assert last_error_line("") == "no message" and last_error_line(b"\n \n") == "no message"


def test_ffmpeg_info_parses_version_and_encoders(tmp_path):
    exe = fake_exe(tmp_path / "ff-info", """
if "-version" in sys.argv:
    print("ffmpeg version 9.9-test Copyright (c) the authors")
else:
    print("Encoders:")
    print(" V..... = Video")  # the legend: not an encoder
    print(" ------")
    print(" V....D libx264              H.264")
    print(" A....D aac                  AAC")
    print(" V..... libx265x             not quite hevc")
""")
    info = ffmpeg_info(str(exe))
    assert info["path"] == str(exe) and info["version"] == "9.9-test"
    assert info["encoders"] == {"h264": True, "aac": True, "hevc": False}


def test_ffmpeg_info_without_a_version_line(tmp_path):
    exe = fake_exe(tmp_path / "ff-none", "print('something else'); print(' V....D libx265 HEVC')")
    info = ffmpeg_info(str(exe))
    assert info["version"] == "unknown" and info["encoders"] == {"h264": False, "aac": False, "hevc": True}
