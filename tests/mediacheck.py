"""Independent measurements of written media for tests: decoded frame counts, durations, audio and where
the footage chirp says a piece of audio came from. Plain PyAV and numpy, none of fx's own media code."""

from __future__ import annotations


def chirp_time(wave, rate: int, at: float, width: float = 0.2) -> float:
    """Where in the source a piece of footage audio comes from: the chirp's frequency around ``at`` s of
    ``wave`` (1-D), mapped back to source time (faceexpr_cli.samples.footage.chirp_freq)."""
    import numpy as np

    from faceexpr_cli.samples.footage import CHIRP_F0, CHIRP_RATE

    a, b = int((at - width / 2) * rate), int((at + width / 2) * rate)
    seg = np.asarray(wave[a:b], np.float64) * np.hanning(b - a)
    spec = np.abs(np.fft.rfft(seg, n=1 << 18))
    freq = np.argmax(spec) * rate / (1 << 18)
    return (freq - CHIRP_F0) / CHIRP_RATE


def decode_audio(source):
    """All audio samples of a clip (path or mp4 bytes) as mono float64, with the rate; (None, 0) without audio."""
    import io

    import av
    import numpy as np

    target = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    with av.open(target) as c:
        if not c.streams.audio:
            return None, 0
        a = c.streams.audio[0]
        chunks = [f.to_ndarray().astype(np.float64).mean(axis=0) for f in c.decode(a)]
        wave = np.concatenate(chunks)
        n = int(round(float(a.duration * a.time_base) * a.codec_context.sample_rate)) if a.duration else len(wave)
        return wave[:n], a.codec_context.sample_rate


def decode_video_times(source):
    """(frames, duration) of a clip: the frames that decode, and the span its packets' timestamps and durations
    cover (what the container tells a player), first frame's start to last frame's end."""
    import io

    import av

    def _open():
        return av.open(io.BytesIO(source) if isinstance(source, bytes) else str(source))

    with _open() as c:
        n = sum(1 for _ in c.decode(c.streams.video[0]))
    with _open() as c:
        vs = c.streams.video[0]
        pk = [(p.pts, p.duration) for p in c.demux(vs) if p.size and p.pts is not None and not p.is_discard]
        ends = max(p + d for p, d in pk)
        return n, float((ends - min(p for p, _ in pk)) * vs.time_base)
