"""Fixtures for training tests: a small folder of face clips (two subjects) and a helper to load the tiny recipe."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture(scope="session")
def clip_folder(tmp_path_factory):
    """astronaut/ and grace_hopper/, two 1.2 s 56x56 clips each (30 frames), with audio."""
    from faceexpr_cli.train.data import make_sample_clips

    return make_sample_clips(tmp_path_factory.mktemp("clips"), seconds=1.2, size=56)


@pytest.fixture
def tiny_recipe(clip_folder):
    from faceexpr_cli.config.recipes import load_recipe

    def make(*overrides: str, name: str = "joint-tiny"):
        base = [f"data.path={clip_folder}", "data.workers=0", "trainer.tensorboard=false", "trainer.log_every=1"]
        return load_recipe(name, [*base, *overrides])

    return make


@pytest.fixture
def fx_log():
    """The fx logger's messages, one string per record (rich wraps stderr, so read the records)."""
    from faceexpr_cli.console import log

    records: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: records.append(record.getMessage())
    old_level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)

    def take() -> str:
        text = "\n".join(records)
        records.clear()
        return text

    yield take
    log.removeHandler(handler)
    log.setLevel(old_level)


@pytest.fixture
def run_tokenizer():
    """The tokenizer a run used, rebuilt from its own saved file (random-init recipes save it at the top)."""

    def load(run_dir):
        from faceexpr_cli.builders import build_model
        from faceexpr_cli.train import checkpoint as C

        state, card, _ = C.read_model_file(run_dir / "tokenizer.safetensors")
        tok = build_model(card)
        tok.load_state_dict(state, strict=True)
        return tok.eval()

    return load
