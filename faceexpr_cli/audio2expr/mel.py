"""Log-mel features in torch, as the Wav2Lip/SadTalker audio front end computes them, and per-frame windows.

16 kHz mono, pre-emphasis 0.97, |STFT| (n_fft = window = 800 samples, Hann, hop 200 = 12.5 ms, centred with
reflection), 80 Slaney mel bands (55 Hz .. 7.6 kHz, area-normalised), 20 log10 minus 20 dB, then mapped from
[-100 dB, 0 dB] onto [-4, 4] and clipped. 80 mel frames per second; video frame i gets the 16 mel frames
(0.2 s) centred on its time, clamped at the ends (SadTalker starts the window at the frame's time; centring keeps
the lips on the sound they make rather than 0.1 s ahead of it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class MelSpec:
    sample_rate: int = 16000
    n_fft: int = 800
    hop: int = 200
    bands: int = 80
    fmin: float = 55.0
    fmax: float = 7600.0
    preemphasis: float = 0.97
    ref_db: float = 20.0
    min_db: float = -100.0
    max_abs: float = 4.0
    window: int = 16  # mel frames per video frame (0.2 s)

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop

    def to_dict(self) -> dict:
        return asdict(self)


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's scale: linear (3 mel per 200 Hz) below 1 kHz, logarithmic above."""
    f = np.asarray(f, np.float64)
    lin = 3.0 * f / 200.0
    log = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log, lin)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, np.float64)
    lin = 200.0 * m / 3.0
    log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
    return np.where(m >= 15.0, log, lin)


def mel_filters(spec: MelSpec = MelSpec()) -> np.ndarray:
    """(bands, n_fft // 2 + 1) triangular filters, each scaled to unit area (Slaney normalisation)."""
    freqs = np.linspace(0, spec.sample_rate / 2, spec.n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(spec.fmin), _hz_to_mel(spec.fmax), spec.bands + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rise = (freqs[None] - lo) / (mid - lo)
    fall = (hi - freqs[None]) / (hi - mid)
    tri = np.maximum(0.0, np.minimum(rise, fall))
    return (tri * (2.0 / (hi - lo))).astype(np.float32)


class LogMel(torch.nn.Module):
    """waveform (N,) or (B, N) float in [-1, 1] -> (B, bands, frames) normalised log-mel (frames = N // hop + 1)."""

    def __init__(self, spec: MelSpec = MelSpec()):
        super().__init__()
        self.spec = spec
        self.register_buffer("filters", torch.from_numpy(mel_filters(spec)), persistent=False)
        self.register_buffer("window", torch.hann_window(spec.n_fft, periodic=True), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        s = self.spec
        x = wave.float()
        if x.dim() == 1:
            x = x[None]
        x = torch.cat([x[:, :1], x[:, 1:] - s.preemphasis * x[:, :-1]], dim=1)
        if x.shape[1] <= s.n_fft // 2:  # reflection padding needs more samples than half a window
            x = torch.nn.functional.pad(x, (0, s.n_fft // 2 + 1 - x.shape[1]))
        stft = torch.stft(x, s.n_fft, s.hop, s.n_fft, self.window, center=True, pad_mode="reflect",
                          return_complex=True)
        mel = self.filters @ stft.abs()
        db = 20.0 * torch.log10(mel.clamp_min(1e-5)) - s.ref_db
        return (2 * s.max_abs * (db - s.min_db) / -s.min_db - s.max_abs).clamp(-s.max_abs, s.max_abs)


def log_mel(wave: np.ndarray | torch.Tensor, spec: MelSpec = MelSpec()) -> np.ndarray:
    """(bands, frames) float32 for one mono waveform at ``spec.sample_rate``."""
    t = torch.as_tensor(np.asarray(wave, np.float32).reshape(-1))
    with torch.no_grad():
        return LogMel(spec)(t)[0].numpy()


def frame_windows(mel: np.ndarray, n_frames: int, fps: float, spec: MelSpec = MelSpec()) -> np.ndarray:
    """(n_frames, bands, window): the mel frames centred on each video frame's time, indices clamped."""
    centre = np.round(np.arange(n_frames) / fps * spec.frames_per_second).astype(np.int64)
    idx = centre[:, None] + np.arange(spec.window)[None] - spec.window // 2
    idx = np.clip(idx, 0, mel.shape[1] - 1)
    return np.ascontiguousarray(mel[:, idx].transpose(1, 0, 2)).astype(np.float32)


def frames_for(seconds: float, fps: float) -> int:
    return max(1, int(np.floor(seconds * fps + 1e-6)))
