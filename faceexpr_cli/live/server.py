"""The local web page of `fx live --serve`: the live view, a token trajectory plot, emotion bars and the numbers.

Plain ``http.server`` on a thread, bound to 127.0.0.1 unless the user says otherwise. Endpoints:
``/`` the page; ``/frame.jpg`` the newest shown frame; ``/stream.mjpg`` the same as an MJPEG stream (for OBS's
media source, VLC or an ``<img>``); ``/status`` JSON (frames, fps, latency_ms, dropped, ...); ``/series`` JSON of
the recent per-frame values the page plots.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from faceexpr_cli.errors import UsageError

SERIES = 300  # points the page's plot keeps


class LiveState:
    """What the loop publishes and the page reads; every field is swapped whole under one lock."""

    def __init__(self, status: Callable[[], dict[str, Any]]):
        self._lock = threading.Condition()
        self._jpeg: bytes | None = None
        self.version = 0
        self.series: deque[dict[str, Any]] = deque(maxlen=SERIES)
        self.status = status
        self.closed = False

    def publish(self, jpeg: bytes, point: dict[str, Any]) -> None:
        with self._lock:
            self._jpeg = jpeg
            self.version += 1
            self.series.append(point)
            self._lock.notify_all()

    def frame(self) -> tuple[int, bytes | None]:
        with self._lock:
            return self.version, self._jpeg

    def wait_newer(self, version: int, timeout: float = 1.0) -> tuple[int, bytes | None]:
        with self._lock:
            self._lock.wait_for(lambda: self.version != version or self.closed, timeout)
            return self.version, self._jpeg

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self._lock.notify_all()


def _handler(state: LiveState) -> type[BaseHTTPRequestHandler]:
    page = resources.files("faceexpr_cli.live").joinpath("page.html").read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # requests are not logs of the run
            return

        def _send(self, body: bytes, ctype: str, code: int = 200) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path = self.path.split("?", 1)[0]
            if path in ("/", "/index.html"):
                self._send(page, "text/html; charset=utf-8")
            elif path == "/status":
                self._send(json.dumps(state.status()).encode(), "application/json")
            elif path == "/series":
                self._send(json.dumps(list(state.series)).encode(), "application/json")
            elif path == "/frame.jpg":
                _, jpeg = state.frame()
                if jpeg is None:
                    self._send(b"no frame yet", "text/plain", 503)
                else:
                    self._send(jpeg, "image/jpeg")
            elif path == "/stream.mjpg":
                self._mjpeg()
            else:
                self._send(b"not found", "text/plain", 404)

        def _mjpeg(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=fxframe")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            version = -1
            try:
                while not state.closed:
                    version, jpeg = state.wait_newer(version)
                    if jpeg is None:
                        continue
                    self.wfile.write(b"--fxframe\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                     + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                return

    return Handler


def parse_address(text: str, host: str | None = None) -> tuple[str, int]:
    """``127.0.0.1:8765``, ``:8765`` or ``8765`` -> (host, port); ``--host`` overrides the host part."""
    text = str(text).strip()
    name, _, port = text.rpartition(":") if ":" in text else ("", "", text)
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--serve {text!r}: expected HOST:PORT or PORT, e.g. 127.0.0.1:8765 (0: any free port)")
    return (host or name or "127.0.0.1"), int(port)


class LiveServer:
    def __init__(self, state: LiveState, host: str, port: int):
        try:
            self.httpd = ThreadingHTTPServer((host, port), _handler(state))
        except OSError as exc:
            raise UsageError(f"--serve {host}:{port}: {exc.strerror or exc}", "pick another port, or 0") from exc
        self.httpd.daemon_threads = True
        self.state = state
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="fx-live-http", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> LiveServer:
        self._thread.start()
        return self

    def linger(self, seconds: float) -> None:
        """Keep serving the last frame a while after the loop ends (``--linger``)."""
        if seconds > 0:
            time.sleep(seconds)

    def stop(self) -> None:
        self.state.close()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=2.0)
