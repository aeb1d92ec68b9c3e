"""`fx live --serve`: /status while the loop runs, the page in a real headless browser, MJPEG, network sources,
and sources that end or break."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


@pytest.fixture(scope="module")
def served(live_video, joint_run):
    """The loop at the file's own pace in a thread, serving on a free loopback port; joined at the end."""
    from faceexpr_cli.live.loop import LiveOptions, run_live
    from faceexpr_cli.live.process import LiveModels

    port = _free_port()
    out: dict = {}
    opts = LiveOptions(source=str(live_video.path), serve=f"127.0.0.1:{port}", linger=6.0,
                       models=LiveModels(model=str(joint_run / "run"), emotion="off"))
    thread = threading.Thread(target=lambda: out.setdefault("result", run_live(opts)), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}/"
    for _ in range(200):
        try:
            if json.loads(_get(url + "status"))["frames"] >= 3:
                break
        except OSError:
            pass
        time.sleep(0.05)
    yield url, out
    thread.join(30)


def test_status_counts_frames_while_running(served):
    url, _ = served
    a = json.loads(_get(url + "status"))
    time.sleep(0.5)
    b = json.loads(_get(url + "status"))
    assert {"frames", "fps", "latency_ms", "dropped"} <= set(a)
    assert b["frames"] > a["frames"] >= 3 and b["fps"] and b["fps"] > 2 and b["latency_ms"] is not None


def test_frame_and_mjpeg_are_the_live_picture(served, live_video):
    import cv2

    url, _ = served
    jpeg = np.frombuffer(_get(url + "frame.jpg"), np.uint8)
    image = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    assert image.shape == (live_video.height, live_video.width, 3) and image.std() > 10
    with urllib.request.urlopen(url + "stream.mjpg", timeout=5) as r:
        assert r.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        data = b""
        while data.count(b"--fxframe") < 3:
            data += r.read1(65536)
    assert data.count(b"\xff\xd8") >= 2  # at least two whole JPEGs went by
    series = json.loads(_get(url + "series"))
    assert series and len(series[-1]["token"]) == 3


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install -y chromium)")
def test_page_in_headless_chromium_shows_the_live_image_and_the_plot(served, tmp_path):
    """Layout (page.html): the view at (0,0) 640x360, the plot at (0,370) 640x200, token lines in pure-ish
    red/green/blue. Set FX_LIVE_SCREENSHOT=docs/live.png to keep the picture for the docs."""
    import cv2

    url, _ = served
    shot = tmp_path / "page.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=980,600", "--virtual-time-budget=2500", f"--screenshot={shot}", url],
                   check=True, capture_output=True, timeout=60)
    img = cv2.cvtColor(cv2.imread(str(shot)), cv2.COLOR_BGR2RGB).astype(int)
    view, plot = img[:360, :640], img[370:570, :640]
    assert view.std() > 15  # a picture, not the black placeholder
    red = (plot[..., 0] > 200) & (plot[..., 1] < 110) & (plot[..., 2] < 110)
    green = (plot[..., 1] > 180) & (plot[..., 0] < 110) & (plot[..., 2] < 110)
    blue = (plot[..., 2] > 200) & (plot[..., 0] < 110)
    assert red.sum() > 50 and green.sum() > 50 and blue.sum() > 50, (red.sum(), green.sum(), blue.sum())
    if os.environ.get("FX_LIVE_SCREENSHOT"):
        shutil.copy(shot, os.environ["FX_LIVE_SCREENSHOT"])


def test_the_served_run_ends_with_the_file(served, live_video):
    _, out = served
    deadline = time.monotonic() + 30
    while "result" not in out and time.monotonic() < deadline:
        time.sleep(0.2)
    res = out["result"]
    assert res.stop == "source-ended" and res.frames + res.dropped == live_video.n_frames
    assert 0.9 * live_video.duration < res.seconds < live_video.duration + 2


class _Truncating(SimpleHTTPRequestHandler):
    """Serves files; ``cut.ts`` stops after a third of its bytes while promising all of them (a dropped link)."""

    def log_message(self, *args):
        return

    def do_GET(self):
        if not self.path.startswith("/cut.ts"):
            return super().do_GET()
        data = (Path(self.directory) / "cut.ts").read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 3])
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)


@pytest.fixture(scope="module")
def http_source(live_video, tmp_path_factory):
    import av

    root = tmp_path_factory.mktemp("www")
    shutil.copy(live_video.path, root / "talk.mp4")
    with av.open(str(live_video.path)) as src, av.open(str(root / "cut.ts"), "w", format="mpegts") as dst:
        vs = src.streams.video[0]
        ov = dst.add_stream_from_template(vs)
        for packet in src.demux(vs):
            if packet.dts is not None:
                packet.stream = ov
                dst.mux(packet)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Truncating, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def test_network_stream_source_reads_to_the_end(http_source, live_video):
    from faceexpr_cli.live.loop import LiveOptions, run_live
    from faceexpr_cli.live.process import LiveModels

    res = run_live(LiveOptions(source=http_source + "talk.mp4", models=LiveModels(emotion="off")))
    assert res.stop == "source-ended" and res.captured == live_video.n_frames
    assert res.frames + res.dropped == res.captured and res.faces >= 1


def _fx(capsys, *args: str) -> tuple[int, str, list[str]]:
    from faceexpr_cli.cli.app import main

    capsys.readouterr()
    code = main(["live", *args])
    cap = capsys.readouterr()
    return code, cap.out, [x for x in cap.err.splitlines() if x.strip() and "INFO" not in x]


def test_a_stream_that_breaks_ends_the_loop_with_one_line(http_source, live_video, tmp_path, capsys):
    rec = tmp_path / "r.mp4"
    code, _, lines = _fx(capsys, "--source", http_source + "cut.ts", "--emotion", "off", "--record", str(rec))
    assert code == 1 and len(lines) == 1 and "the source broke after" in lines[0], lines
    from mediacheck import decode_video_times

    n, _ = decode_video_times(rec)  # what was shown before the cut is a playable file
    assert n >= 1


@pytest.mark.parametrize(("args", "needle"), [
    (["--source", "/nope/missing.mp4"], "not found"),
    (["--source", "{video}", "--size", "640by480"], "--size"),
    (["--source", "{video}", "--serve", "127.0.0.1:99999"], "--serve"),
    (["--source", "{video}", "--max-seconds", "nan"], "--max-seconds"),
    (["--source", "{video}", "--record", "/nope/dir/r.mp4"], "--record"),
    (["--source", "{video}", "--emotion", "maybe"], "maybe"),
    (["--source", "0", "--as-fast-as-possible"], "file sources"),
])
def test_bad_options_are_one_line_before_any_work(args, needle, live_video, capsys):
    code, _, lines = _fx(capsys, *[a.replace("{video}", str(live_video.path)) for a in args])
    assert code == 2 and len(lines) == 1 and needle in lines[0], lines


def test_window_without_a_display_is_one_line(live_video, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    code, _, lines = _fx(capsys, "--source", str(live_video.path), "--window")
    assert code == 2 and len(lines) == 1 and "no display" in lines[0], lines


def test_cli_json_result(live_video, capsys):
    code, out, _ = _fx(capsys, "--source", str(live_video.path), "--as-fast-as-possible", "--emotion", "off",
                       "--json")
    res = json.loads(out)
    assert code == 0 and res["frames"] == live_video.n_frames and res["dropped"] == 0
    assert res["stop"] == "source-ended" and res["latency_ms"] > 0


def test_ctrl_c_stops_cleanly_with_the_recording_finalised(live_video, tmp_path):
    """A real SIGINT to `fx live` at the file's pace: exit 0, the summary on stdout, a playable record."""
    import signal
    import sys

    from mediacheck import decode_video_times

    rec = tmp_path / "r.mp4"
    env = {**os.environ, "FX_NO_PROGRESS": "1", "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "faceexpr_cli", "live", "--source", str(live_video.path),
                             "--emotion", "off", "--record", str(rec), "--tokens", str(tmp_path / "t.jsonl"),
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = tmp_path / "t.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not lines.exists() or lines.read_text().count("\n") < 5):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    res = json.loads(out)
    assert res["stop"] == "interrupted" and 5 <= res["frames"] < live_video.n_frames
    n, duration = decode_video_times(rec)
    assert n == res["frames"] == len(lines.read_text().splitlines())
    assert not list(tmp_path.glob("*.tmp*")) and not list(tmp_path.glob(".*r.mp4*"))
