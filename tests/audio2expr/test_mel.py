"""The torch log-mel front end against librosa (the dev dependency) and against the formulas written out here."""

from __future__ import annotations

import numpy as np
import pytest

from faceexpr_cli.audio2expr.mel import MelSpec, frame_windows, log_mel


def _speechy(seconds: float = 1.3, rate: int = 16000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    sig = env * sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((150, 300, 1200, 3100), 1))
    return (0.2 * sig + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def _normalise(mel: np.ndarray, spec: MelSpec) -> np.ndarray:
    db = 20 * np.log10(np.maximum(mel, 1e-5)) - spec.ref_db
    return np.clip(2 * spec.max_abs * (db - spec.min_db) / -spec.min_db - spec.max_abs, -spec.max_abs, spec.max_abs)


def test_log_mel_matches_librosa():
    librosa = pytest.importorskip("librosa")  # a dev dependency: present on CI
    spec = MelSpec()
    wave = _speechy()
    emph = np.append(wave[0], wave[1:] - spec.preemphasis * wave[:-1])
    stft = np.abs(librosa.stft(emph, n_fft=spec.n_fft, hop_length=spec.hop, win_length=spec.n_fft,
                               pad_mode="reflect"))
    basis = librosa.filters.mel(sr=spec.sample_rate, n_fft=spec.n_fft, n_mels=spec.bands, fmin=spec.fmin,
                                fmax=spec.fmax)
    want = _normalise(basis @ stft, spec)
    got = log_mel(wave, spec)
    assert got.shape == want.shape == (80, len(wave) // spec.hop + 1)
    assert np.abs(got - want).max() < 2e-3  # on a [-4, 4] scale


def _slaney(f):
    f = np.asarray(f, float)
    return np.where(f < 1000, f / (200 / 3), 15 + np.log(np.maximum(f, 1e-9) / 1000) * 27 / np.log(6.4))


def _slaney_inv(m):
    m = np.asarray(m, float)
    return np.where(m < 15, m * 200 / 3, 1000 * np.exp((m - 15) * np.log(6.4) / 27))


def test_log_mel_matches_the_formulas():
    """Frame by frame with numpy's FFT: reflect-padded frames, periodic Hann, triangles of unit area."""
    spec = MelSpec()
    wave = _speechy(seed=1).astype(np.float64)
    emph = np.append(wave[0], wave[1:] - spec.preemphasis * wave[:-1])
    pad = np.pad(emph, spec.n_fft // 2, mode="reflect")
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(spec.n_fft) / spec.n_fft)
    frames = np.stack([pad[i:i + spec.n_fft] * win for i in range(0, len(pad) - spec.n_fft + 1, spec.hop)])
    mag = np.abs(np.fft.rfft(frames, axis=1)).T
    hz = _slaney_inv(np.linspace(_slaney(spec.fmin), _slaney(spec.fmax), spec.bands + 2))
    freqs = np.arange(spec.n_fft // 2 + 1) * spec.sample_rate / spec.n_fft
    fb = np.zeros((spec.bands, len(freqs)))
    for b in range(spec.bands):
        lo, mid, hi = hz[b:b + 3]
        fb[b] = np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0, None) * 2 / (hi - lo)
    want = _normalise(fb @ mag, spec)
    got = log_mel(wave.astype(np.float32), spec)
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 2e-3


def test_frame_windows_are_centred_on_the_frame_and_clamped():
    spec = MelSpec()
    mel = np.tile(np.arange(200, dtype=np.float32), (80, 1))  # each mel frame holds its own index
    win = frame_windows(mel, 60, 25.0, spec)
    assert win.shape == (60, 80, 16)
    # frame 10 is at 0.4 s = mel frame 32: the window holds mel frames 24..39
    assert win[10, 0].tolist() == list(range(24, 40))
    assert win[0, 0, :8].tolist() == [0] * 8 and win[0, 0, 8] == 0 and win[0, 0, 9] == 1
    late = frame_windows(mel, 64, 25.0 * 200 / 210, spec)  # windows past the end repeat the last frame
    assert late[-1, 0].max() == 199 and (late[-1, 0][-3:] == 199).all()


def test_a_click_lands_in_the_window_of_its_frame():
    spec = MelSpec()
    wave = np.zeros(16000 * 2, np.float32)
    wave[int(1.2 * 16000):int(1.2 * 16000) + 80] = 0.9  # a 5 ms click at 1.2 s = video frame 30
    win = frame_windows(log_mel(wave, spec), 50, 25.0, spec)
    loud = {i for i in range(50) if win[i].max() > 0}
    # the 0.2 s window of frame i spans its time +-0.1 s: frames 28..32 (1.12 .. 1.28 s) hear the click
    assert set(range(28, 33)) <= loud <= set(range(27, 34))
    assert win[:26].max() == -4.0 and win[35:].max() == -4.0  # silence is the floor
