"""What every fx command must keep, checked independently of fx: exit codes, no traceback, whole files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FX = [sys.executable, "-m", "faceexpr_cli"]
MEDIA = {".mp4", ".mov", ".mkv", ".m4v", ".webm", ".wav", ".m4a"}
IMAGES = {".png", ".jpg", ".jpeg"}


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def run_fx(args: list[str], *, env: dict | None = None, timeout: float = 240, cwd: Path | None = None) -> Result:
    """``fx ARGS`` in a fresh process (a traceback can only show up in its stderr)."""
    full_env = {**os.environ, "COLUMNS": "200", "FX_NO_PROGRESS": "1", **(env or {})}
    full_env.pop("FX_DEBUG", None)
    proc = subprocess.run([*FX, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=full_env,
                          cwd=cwd)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def decodes(path: Path) -> str | None:
    """None if the file under a final name is whole, else why not (decoded independently of fx)."""
    suffix = path.suffix.lower()
    try:
        if suffix in MEDIA:
            import av

            with av.open(str(path)) as box:
                n = 0
                for stream in box.streams.video[:1] or box.streams.audio[:1]:
                    for _ in box.decode(stream):
                        n += 1
                if n == 0:
                    return "no frames"
        elif suffix in IMAGES:
            from PIL import Image

            with Image.open(path) as im:
                im.load()
        elif suffix == ".parquet":
            import pyarrow.parquet as pq

            pq.read_table(path)
        elif suffix in (".json",):
            json.loads(path.read_text())
        elif suffix == ".jsonl":
            for line in path.read_text().splitlines():
                if line.strip():
                    json.loads(line)
        elif suffix == ".onnx":
            import onnx

            onnx.checker.check_model(onnx.load(str(path)))
        elif suffix == ".npz":
            with np.load(path) as z:
                for k in z.files:
                    z[k]
        elif suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), "pt") as f:
                for k in f.keys():  # noqa: SIM118 - safe_open is not iterable
                    f.get_tensor(k)
        elif suffix == ".pt":
            import torch

            torch.load(path, map_location="cpu", weights_only=False)
        elif suffix == ".tar":
            import tarfile

            with tarfile.open(path) as t:
                for m in t.getmembers():
                    if m.isfile():
                        t.extractfile(m).read()
    except Exception as exc:  # any failure to read is the finding
        return f"{type(exc).__name__}: {exc}"
    return None


def broken_outputs(root: Path) -> list[str]:
    """Files under final names that do not decode, and temporary files left behind."""
    found = []
    if not root.exists():
        return found
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        if p.name.endswith(".part") or ".part." in p.name or p.name.endswith((".tmp", ".partial")):
            found.append(f"{p.relative_to(root)}: temporary file left behind")
            continue
        why = decodes(p)
        if why:
            found.append(f"{p.relative_to(root)}: {why}")
    return found


def assert_clean_failure(res: Result, codes=(1, 2)) -> None:
    assert res.code in codes, f"exit {res.code}, wanted {codes}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, res.stderr
    assert "error" in res.stderr.lower() or "interrupted" in res.stderr.lower() or "fail" in (
        res.stdout + res.stderr).lower(), f"no message on stderr:\n{res.stderr}"


