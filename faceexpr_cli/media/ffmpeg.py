"""Finding and running ffmpeg: ``FX_FFMPEG``, then PATH, then the static binary that imageio-ffmpeg ships."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from faceexpr_cli.errors import DependencyError, MediaError

INSTALL_HINT = "pip install imageio-ffmpeg, install ffmpeg on PATH, or set FX_FFMPEG to an ffmpeg binary"


def find_ffmpeg() -> str:
    env = os.environ.get("FX_FFMPEG")
    if env:
        if not Path(env).is_file():
            raise DependencyError(f"FX_FFMPEG points to {env}, which does not exist", INSTALL_HINT)
        return env
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # imageio-ffmpeg raises RuntimeError when its binary is missing
        raise DependencyError("ffmpeg not found", INSTALL_HINT) from exc


@lru_cache(maxsize=4)
def ffmpeg_info(exe: str | None = None) -> dict:
    """Version and the encoders fx relies on (h264 via libx264, aac, hevc via libx265)."""
    exe = exe or find_ffmpeg()
    version_out = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True, text=True).stdout
    m = re.search(r"ffmpeg version (\S+)", version_out)
    enc_out = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    names = set()
    for line in enc_out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 6:
            names.add(parts[1])
    return {
        "path": exe,
        "version": m.group(1) if m else "unknown",
        "encoders": {
            "h264": "libx264" in names,
            "aac": "aac" in names,
            "hevc": "libx265" in names,
        },
    }


def run_ffmpeg(args: list[str], what: str | Path, *, input_bytes: bytes | None = None, timeout: float | None = None):
    """Run ffmpeg quietly; a failure becomes a MediaError naming the file and ffmpeg's last error line."""
    cmd = [find_ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    try:
        proc = subprocess.run(cmd, input=input_bytes, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise MediaError(what, f"ffmpeg timed out after {timeout} s") from exc
    if proc.returncode != 0:
        raise MediaError(what, f"ffmpeg failed: {last_error_line(proc.stderr)}")
    return proc


def last_error_line(stderr: bytes | str) -> str:
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"
