"""safety.py and runlock.py: plain names, URL redaction, number checks, one run per output folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from faceexpr_cli.errors import CheckpointError, UsageError
from faceexpr_cli.runlock import LOCK_NAME, OutputLockedError, ensure_out_dir, output_lock
from faceexpr_cli.safety import check_number, plain_name, redact, redact_url


@pytest.mark.parametrize("name", ["../../x", "/abs/x.onnx", ".hidden", "a/b", "a\\b", "", "..", "x\0y", 7, None])
def test_unplain_names_are_refused(name):
    with pytest.raises(CheckpointError, match="not a plain file name"):
        plain_name(name, "ONNX part name", source="run/model.safetensors")


@pytest.mark.parametrize("name", ["expression", "kp_detector.v2", "a-b_c.onnx", "0"])
def test_plain_names_pass(name):
    assert plain_name(name, "part") == name


def test_url_passwords_and_signatures_are_redacted():
    assert redact_url("http://user:pa55@host:8080/v.mp4") == "http://user:***@host:8080/v.mp4"
    assert redact_url("https://host/v.mp4") == "https://host/v.mp4"
    signed = redact_url("https://b.s3.amazonaws.com/k?X-Amz-Credential=AK&X-Amz-Signature=deadbeef&x-id=GetObject")
    assert "deadbeef" not in signed and "AK" not in signed and "x-id=GetObject" in signed
    for key in ("X-Goog-Signature", "sig", "token", "key"):
        assert "s3cr3t" not in redact_url(f"https://h/p?{key}=s3cr3t&keep=1")
    text = redact("GET https://u:hunter2@h/a.mp4 failed; retry http://h/b?sig=zzz")
    assert "hunter2" not in text and "zzz" not in text and "https://u:***@h/a.mp4" in text


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), -0.5, "x"])
def test_check_number_refuses(value):
    with pytest.raises(UsageError, match="--margin"):
        check_number(value, "--margin", minimum=0)


def test_check_number_bounds():
    assert check_number(0.0, "--m", minimum=0) == 0.0
    assert check_number(None, "--m", minimum=0) is None
    with pytest.raises(UsageError):
        check_number(0.0, "--lr", above=0)
    with pytest.raises(UsageError):
        check_number(2, "--p", maximum=1)


def test_out_that_is_a_file(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        ensure_out_dir(f)
    with pytest.raises(UsageError, match="lies under the file"):
        ensure_out_dir(f / "sub")


def test_second_run_is_refused_and_released(tmp_path):
    out = tmp_path / "out"
    with output_lock(out, "fx crop"):
        info = json.loads((out / LOCK_NAME).read_text())
        assert info["pid"] == os.getpid() and info["command"] == "fx crop"
        # a second process on the same folder is refused, naming the holder
        code = textwrap.dedent(f"""
            from faceexpr_cli.runlock import output_lock, OutputLockedError
            try:
                with output_lock({str(out)!r}, "fx clip"):
                    print("GOT")
            except OutputLockedError as e:
                print("REFUSED", e.one_line())
        """)
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert res.stdout.startswith("REFUSED") and f"pid {os.getpid()}" in res.stdout
        # also within one process (another open file description)
        with pytest.raises(OutputLockedError), output_lock(out, "fx crop"):
            pass
    assert not (out / LOCK_NAME).exists()
    with output_lock(out, "fx crop"):  # released: can be taken again
        pass


def test_lock_of_a_dead_run_is_taken_over(tmp_path, caplog):
    out = tmp_path / "out"
    code = f"""
import os
from faceexpr_cli.runlock import output_lock
with output_lock({str(out)!r}, "fx download"):
    os._exit(0)  # dies holding the lock, without cleaning up
"""
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (out / LOCK_NAME).exists()
    import logging

    logging.getLogger("fx").propagate = True
    try:
        with caplog.at_level(logging.WARNING, logger="fx"), output_lock(out, "fx crop"):
            pass
    finally:
        logging.getLogger("fx").propagate = False
    assert "taking over" in caplog.text and "fx download" in caplog.text
