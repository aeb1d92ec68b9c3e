"""Speaking portraits (the jaw and lips move with a voice whose loudness is the mouth opening) and one tiny
audio2expr run on them, built once per session: two training clips (seeds 0 and 1) and a held-out one (seed 11)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def speaking(tmp_path_factory):
    from faceexpr_cli.audio2expr.sample import make_speaking_portrait

    root = tmp_path_factory.mktemp("speaking")
    train, held = root / "train", root / "held"
    train.mkdir()
    held.mkdir()
    samples = {s: make_speaking_portrait(train / f"astronaut_{s}.mp4", seed=s, seconds=4.0) for s in (0, 1)}
    samples[11] = make_speaking_portrait(held / "astronaut_11.mp4", seed=11, seconds=3.0)
    return {"train": train, "held": held, "samples": samples, "root": root}


@pytest.fixture(scope="session")
def trained(speaking):
    from faceexpr_cli.audio2expr.training import run
    from faceexpr_cli.config.recipes import load_recipe

    out = Path(speaking["root"]) / "run"
    recipe = load_recipe("audio2expr-tiny", [f"data.path={speaking['train']}", "trainer.max_steps=120"])
    result = run(recipe, out)
    return {"run": out, "result": result}


@pytest.fixture(scope="session")
def speech_wav(speaking):
    """The held-out clip's voice as a 16 kHz wav, and the mouth curve it was made from."""
    from faceexpr_cli.audio2expr.predict import read_audio
    from faceexpr_cli.samples.talking_head import write_wav

    sample = speaking["samples"][11]
    path = write_wav(Path(speaking["root"]) / "speech.wav", read_audio(sample.path), 16000)
    return path, sample
