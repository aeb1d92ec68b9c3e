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
