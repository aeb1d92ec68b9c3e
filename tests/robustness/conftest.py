"""Bad inputs of every class, built once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # outcheck.py


@pytest.fixture(scope="session")
def bad(tmp_path_factory, sample_video) -> dict[str, Path]:
    """One file per bad-input class, plus a good talking-head video and a portrait."""
    import av

    from faceexpr_cli.media.writer import write_video

    d = tmp_path_factory.mktemp("bad_inputs")
    good = Path(sample_video.path)
    out = {"good": good}
    (d / "zero_byte.mp4").write_bytes(b"")
    out["zero_byte"] = d / "zero_byte.mp4"
    data = good.read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) * 2 // 5])
    out["truncated"] = d / "truncated.mp4"
    (d / "not_a_video.mp4").write_text("this is a text file, not a video\n" * 20)
    out["not_a_video"] = d / "not_a_video.mp4"
    # audio only: an AAC track in an .mp4, no video stream
    path = d / "audio_only.mp4"
    with av.open(str(path), "w") as box:
        stream = box.add_stream("aac", rate=16000, layout="mono")
        t = np.arange(16000 * 2) / 16000
        samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
        for i in range(0, samples.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(samples[:, i:i + 1024], format="fltp", layout="mono")
            frame.sample_rate = 16000
            frame.pts = i
            for packet in stream.encode(frame):
                box.mux(packet)
        for packet in stream.encode(None):
            box.mux(packet)
    out["audio_only"] = path
    # face-less: 2 s of smooth grey noise at 25 fps, with the good video's audio track
    rng = np.random.default_rng(0)
    frames = [np.clip(110 + rng.normal(0, 12, (256, 320, 3)), 0, 255).astype(np.uint8) for _ in range(50)]
    write_video(d / "face_less.mp4", frames, fps=25, audio=str(good))
    out["face_less"] = d / "face_less.mp4"
    # a portrait for animate
    from PIL import Image

    from faceexpr_cli.samples import load_portrait

    Image.fromarray(load_portrait("astronaut")[0]).save(d / "portrait.png")
    out["portrait"] = d / "portrait.png"
    (d / "a_file.txt").write_text("I am a file, not a folder\n")
    out["a_file"] = d / "a_file.txt"
    return out


@pytest.fixture(scope="session")
def joint_run(tmp_path_factory) -> Path:
    """A one-step joint-tiny run folder (the model extract-feats needs)."""
    from faceexpr_cli.config.recipes import load_recipe
    from faceexpr_cli.train.data import make_sample_clips
    from faceexpr_cli.train.runner import run

    base = tmp_path_factory.mktemp("joint")
    clips = make_sample_clips(base / "clips", seconds=0.4, size=56, clips_per_subject=1)
    recipe = load_recipe("joint-tiny", [f"data.path={clips}", "trainer.max_steps=1", "trainer.save_every=1",
                                        "trainer.eval_every=0", "trainer.tensorboard=false", "data.workers=0"])
    run(recipe, base / "run")
    return base / "run"


@pytest.fixture(scope="session")
def many_good(tmp_path_factory, sample_video) -> Path:
    """A folder of six copies of the good video: enough work to interrupt or to collide with."""
    import shutil

    d = tmp_path_factory.mktemp("many")
    for i in range(6):
        shutil.copy(sample_video.path, d / f"talk_{i}.mp4")
    return d
