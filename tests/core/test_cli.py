from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from faceexpr_cli import __version__
from faceexpr_cli.cli.app import main


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"fx {__version__}"


def test_help_lists_working_groups(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for group in ("demo", "doctor", "models", "recipes"):
        assert group in out


def test_help_is_fast_and_imports_nothing_heavy():
    code = (
        "import sys, time; t = time.perf_counter(); from faceexpr_cli.cli.app import main;"
        "heavy = [m for m in ('torch', 'onnxruntime', 'cv2', 'dlib', 'av', 'pandas', 'insightface') if m in sys.modules];"
        "print(heavy, time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    heavy, seconds = out.rsplit(" ", 1)
    assert heavy == "[]", f"heavy modules imported at startup: {heavy}"
    assert float(seconds) < 1.0
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "faceexpr_cli", "--help"], capture_output=True, check=True)
    assert time.perf_counter() - t < 3.0  # includes interpreter start; well under a second on an idle machine


def test_doctor_json_reports_ffmpeg_h264_and_torch(capsys):
    code, out, _ = run(capsys, "doctor", "--json")
    data = json.loads(out)
    checks = {c["name"]: c for c in data["checks"]}
    assert checks["ffmpeg"]["ok"] and checks["ffmpeg"]["data"]["encoders"]["h264"]
    assert checks["torch"]["ok"] and checks["torch"]["data"]["version"].startswith("2.")
    assert "CPUExecutionProvider" in checks["onnxruntime"]["data"]["session_providers"]
    assert code == (0 if data["ok"] else 1)


def test_doctor_fails_with_a_fix_when_ffmpeg_is_missing(capsys, monkeypatch, tmp_path):
    from faceexpr_cli.media import ffmpeg

    ffmpeg.ffmpeg_info.cache_clear()
    monkeypatch.setenv("FX_FFMPEG", str(tmp_path / "no-ffmpeg"))
    code, out, err = run(capsys, "doctor")
    ffmpeg.ffmpeg_info.cache_clear()
    assert code == 1
    assert "ffmpeg" in err and "Fix:" in err and "FX_FFMPEG" in err


def test_recipes_list_and_show_with_override(capsys):
    code, out, _ = run(capsys, "recipes", "list", "--json")
    assert code == 0 and "demo" in {r["name"] for r in json.loads(out)}
    code, out, _ = run(capsys, "recipes", "show", "demo", "video.seconds=2.5", "--json")
    assert code == 0 and json.loads(out)["video"]["seconds"] == 2.5


@pytest.mark.parametrize(
    ("args", "needle", "code"),
    [
        (("recipes", "show", "no-such-recipe"), "unknown recipe 'no-such-recipe'", 2),
        (("recipes", "show", "demo", "video.secondz=2"), "unknown key 'video.secondz'", 2),
        (("recipes", "show", "demo", "video.seconds=-1"), "'video.seconds'", 2),
        (("recipes", "show", "demo", "novalue"), "not key=value", 2),
        (("models", "show", "no-such-model"), "unknown model card 'no-such-model'", 2),
        (("demo", "--recipe", "/nonexistent/r.yaml"), "unknown recipe", 2),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(capsys, args, needle, code):
    got, out, err = run(capsys, *args)
    assert got == code
    assert needle in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bad_yaml_names_file_and_key(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("# fx demo\nkind: demo\nvideo:\n  sekonds: 3\n")
    code, _, err = run(capsys, "recipes", "show", str(bad))
    assert code == 2 and str(bad) in err and "unknown key 'video.sekonds'" in err
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: demo\nvideo: [1, 2\n")
    code, _, err = run(capsys, "recipes", "show", str(broken))
    assert code == 2 and "not valid YAML" in err and "line" in err


def test_fx_debug_shows_the_traceback(monkeypatch):
    from faceexpr_cli.errors import UnknownNameError

    monkeypatch.setenv("FX_DEBUG", "1")
    with pytest.raises(UnknownNameError):
        main(["recipes", "show", "no-such-recipe"])


def test_unknown_command_is_a_usage_error(capsys):
    code, _, err = run(capsys, "no-such-command")
    assert code == 2 and "No such command" in err


def test_ctrl_c_in_any_command_is_one_line_and_exit_130(capsys, monkeypatch):
    """Typer turns an unhandled KeyboardInterrupt into a silent Exit(130); fx still says what happened."""
    import faceexpr_cli.doctor as doctor

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(doctor, "run_checks", interrupted)
    assert main(["doctor"]) == 130
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines()[-1] == "interrupted"
    assert "Traceback" not in captured.err
