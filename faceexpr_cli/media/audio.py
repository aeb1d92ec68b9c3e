"""A forward-only audio cursor over a file's first audio stream, shared by the writer and the clip cutter.

Clips of one source are cut in time order, so the cursor decodes the audio once, forwards, and seeks only when
a span lies far ahead (or behind). Spans outside the stream come back as silence, and ``last_real`` says how much
of each span was real audio, which is what ``audio_coverage`` reports.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class AudioCursor:
    """Reads spans of a file's first audio stream in increasing time order, seeking only when far ahead.

    Samples come back planar float32 (C, N) at the stream's own rate; times are seconds relative to ``t0`` (the
    video stream's start, so audio and video share one clock). Missing samples are zeros.
    """

    def __init__(self, path: str | Path, t0: float | None = None):
        import av

        self._container = av.open(str(path), metadata_errors="ignore")
        streams = self._container.streams.audio
        self.stream = streams[0] if streams else None
        if t0 is None:  # the video stream's start, the clock frame times are measured on
            vs = self._container.streams.video[0] if self._container.streams.video else None
            t0 = float(vs.start_time * vs.time_base) if vs is not None and vs.start_time is not None else 0.0
        self.t0 = t0
        self.last_real = 0  # samples of the last ``read`` that came from the source (the rest is silence)
        if self.stream is None:
            return
        self.stream.thread_type = "AUTO"
        self.rate = self.stream.codec_context.sample_rate
        self.channels = self.stream.codec_context.layout.nb_channels
        # A WAV states no channel order ("1 channels"), which the AAC encoder refuses: name the usual one.
        self.layout = {1: "mono", 2: "stereo"}.get(self.channels, self.stream.codec_context.layout.name)
        self._resampler = av.AudioResampler(format="fltp", layout=self.layout, rate=self.rate)
        self._buf = np.zeros((self.channels, 0), np.float32)
        self._buf_start = 0.0
        self._frames = None
        self._eof = False

    def close(self) -> None:
        self._container.close()

    @property
    def extent(self) -> tuple[float, float | None]:
        """(start, end) of the audio stream in seconds on the video clock; end None when the file states none."""
        s = self.stream
        tb = s.time_base
        start = (float(s.start_time * tb) if s.start_time is not None else 0.0) - self.t0
        end = start + float(s.duration * tb) if s.duration else None
        return start, end

    def _restart(self, at: float) -> None:
        target = max(0.0, at - 0.5)
        self._container.seek(int((target + self.t0) / self.stream.time_base), stream=self.stream, backward=True)
        self._frames = self._container.decode(self.stream)
        self._buf = np.zeros((self.channels, 0), np.float32)
        self._buf_start = None
        self._eof = False

    def read(self, start: float, duration: float) -> np.ndarray:
        n = int(round(duration * self.rate))
        buf_end = (self._buf_start or 0.0) + self._buf.shape[1] / self.rate
        if self._frames is None or self._buf_start is None or start < self._buf_start - 1e-3 or start > buf_end + 2.0:
            self._restart(start)
        while not self._eof and (self._buf_start is None or
                                 self._buf_start + self._buf.shape[1] / self.rate < start + duration):
            try:
                frame = next(self._frames)
            except StopIteration:
                self._eof = True
                break
            if self._buf_start is None:
                self._buf_start = (float(frame.pts * self.stream.time_base) - self.t0) if frame.pts is not None else 0.0
            for out in self._resampler.resample(frame):
                self._buf = np.concatenate([self._buf, out.to_ndarray().astype(np.float32)], axis=1)
        buf_start = self._buf_start if self._buf_start is not None else start
        i0 = int(round((start - buf_start) * self.rate))
        out = np.zeros((self.channels, n), np.float32)
        lo, hi = max(0, i0), min(self._buf.shape[1], i0 + n)
        self.last_real = max(0, hi - lo)
        if hi > lo:
            out[:, lo - i0:hi - i0] = self._buf[:, lo:hi]
        drop = max(0, i0 - self.rate)  # keep a second before ``start`` for overlapping clips
        if drop:
            self._buf = self._buf[:, drop:]
            self._buf_start = buf_start + drop / self.rate
        return out
