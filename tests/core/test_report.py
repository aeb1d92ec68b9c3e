"""The demo report reads without playing anything: every video has a poster (a real frame) and a strip of evenly
spaced frames, every src/poster is relative and resolves inside a copy of the folder, and Chromium shows it."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote, urlparse

import numpy as np
import pytest

from faceexpr_cli.demo import framework
from faceexpr_cli.demo.framework import DemoStep, run_demo
from faceexpr_cli.demo.report import STRIP_FRAMES, STRIP_HEIGHT, write_report
from faceexpr_cli.media import read_image, write_video

from .conftest import frame_index, index_frames

N = 30
W, H = 160, 120
CHROMIUM = Path("/usr/bin/chromium")


class _Refs(HTMLParser):
    """Every (tag, attribute, value) that loads a file."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.refs += [(tag, k, v) for k, v in attrs if k in ("src", "poster", "href") and v is not None]


def refs(report: Path) -> list[tuple[str, str, str]]:
    parser = _Refs()
    parser.feed(report.read_text(encoding="utf-8"))
    return parser.refs


def _decoded(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as box:
        return [f.to_ndarray(format="rgb24") for f in box.decode(video=0)]


@pytest.fixture
def fake_demo(tmp_path, monkeypatch):
    """run_demo with one fake step: a video inside the folder (a name that needs quoting), one outside it."""
    outside = write_video(tmp_path / "elsewhere" / "outside.mp4", index_frames(N, W, H), 25)

    def step(ctx):
        ctx.video(write_video(ctx.path("media/clip one#1.mp4"), index_frames(N, W, H), 25), "inside")
        ctx.video(outside, "outside")
        ctx.text("done")

    monkeypatch.setattr(framework, "ordered_steps", lambda: [DemoStep("fake", "Fake step", 1, step)])
    out = tmp_path / "demo"
    results = run_demo(out, SimpleNamespace(skip=[]))
    assert [r.status for r in results] == ["ok"], results
    return out, write_report(results, out), outside


def test_every_video_has_a_poster_and_a_strip_of_its_own_frames(fake_demo):
    out, report, _ = fake_demo
    by_tag: dict[str, list[str]] = {}
    for _tag, attr, value in (r for r in refs(report) if r[0] == "video"):
        by_tag.setdefault(attr, []).append(value)
    assert len(by_tag["src"]) == len(by_tag["poster"]) == 2
    strips = [v for t, a, v in refs(report) if t == "img"]
    assert len(strips) == 2
    want = np.round(np.linspace(0, N - 1, STRIP_FRAMES)).astype(int)
    for src, poster, strip in zip(by_tag["src"], by_tag["poster"], strips, strict=True):
        frames = _decoded(out / unquote(src))  # counted and indexed by PyAV here, not by fx
        assert len(frames) == N
        img = read_image(out / unquote(poster))
        assert img.shape == (H, W, 3)
        assert frame_index(img) == len(frames) // 2  # a real frame: the middle one
        assert np.abs(img.astype(int) - frames[len(frames) // 2]).mean() < 3
        tiles = read_image(out / unquote(strip))
        tile_w = round(W * STRIP_HEIGHT / H)
        assert tiles.shape[0] == STRIP_HEIGHT
        assert tiles.shape[1] == STRIP_FRAMES * tile_w + (STRIP_FRAMES - 1) * 2
        got = [frame_index(tiles[:, i * (tile_w + 2): i * (tile_w + 2) + tile_w]) for i in range(STRIP_FRAMES)]
        assert got == list(want)  # evenly spaced, first to last


def test_the_report_opens_from_a_copied_folder(fake_demo, tmp_path):
    out, report, outside = fake_demo
    copy = tmp_path / "copied" / "demo folder"
    shutil.copytree(out, copy)
    shutil.rmtree(out)
    outside.unlink()  # what a step wrote outside the folder was copied in, not linked to
    found = refs(copy / "report.html")
    assert len(found) == 6  # 2 videos, 2 posters, 2 strips
    root = copy.resolve()
    for tag, attr, value in found:
        url = urlparse(value)
        assert not url.scheme and not url.netloc and not value.startswith("/"), value
        path = (copy / unquote(url.path)).resolve()
        assert path.is_relative_to(root) and path.is_file() and path.stat().st_size > 0, (tag, attr, value)


def test_a_video_that_does_not_decode_still_gets_its_report(tmp_path, monkeypatch):
    def step(ctx):
        bad = ctx.path("bad.mp4")
        bad.write_bytes(b"not a video")
        ctx.video(bad, "broken")

    monkeypatch.setattr(framework, "ordered_steps", lambda: [DemoStep("fake", "Fake step", 1, step)])
    out = tmp_path / "demo"
    report = write_report(run_demo(out, SimpleNamespace(skip=[])), out)
    assert refs(report) == [("video", "src", "bad.mp4")]
    assert not list(out.glob("*.png"))


def test_the_real_media_steps_get_posters_and_strips(tmp_path, capsys):
    from faceexpr_cli.cli.app import main

    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--only", "sample", "video.seconds=1", "--json"]) == 0
    json.loads(capsys.readouterr().out)
    found = refs(out / "report.html")
    videos = [v for t, a, v in found if t == "video" and a == "src"]
    posters = [v for t, a, v in found if t == "video" and a == "poster"]
    assert videos == ["sample/talking_head.mp4"] and len(posters) == 1
    frames = _decoded(out / videos[0])
    poster = read_image(out / posters[0])
    assert np.abs(poster.astype(int) - frames[len(frames) // 2]).mean() < 3


def _red(img: np.ndarray) -> int:
    """Pixels of the index frames' pure red marker block."""
    r, g, b = (img[..., i].astype(int) for i in range(3))
    return int(((r > 200) & (g < 60) & (b < 60)).sum())


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install -y chromium)")
def test_chromium_shows_posters_and_strips(fake_demo, tmp_path):
    out, report, _ = fake_demo
    shot = tmp_path / "shot.png"
    subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,3000",
                    report.resolve().as_uri()], capture_output=True, timeout=120, check=False)
    img = read_image(shot)
    assert img.shape[:2] == (3000, 1200)
    assert img.std() > 20  # not a blank page
    # Every tile of both strips and both posters show the red marker; a missing image shows none of it.
    tile_red = _red(read_image(next(out.glob("media/*.frames.png"))))
    assert tile_red > 0
    assert _red(img) >= 2 * tile_red + 2 * 0.5 * _red(index_frames(1, W, H)[0])
