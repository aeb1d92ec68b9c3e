"""Audio-to-expression speed on one CPU core: PyTorch eager vs ONNX Runtime, and speech-to-video end to end.

    .venv/bin/python benchmarks/audio2expr.py [--seconds 10] [--rounds 5] [--video-seconds 4]

The full-size audio2expr card (80x16 mel windows, conv stack to 512-d, 64 coefficients, temporal kernel 5) with
random weights (speed does not depend on them), one clip of ``--seconds`` of speech at 25 fps as one batch:
- model: mel windows -> expression + offsets, frames/s, torch (1 intra-op thread) vs ORT (1 thread), rounds
  interleaved so machine load hits both alike; the ORT graph comes from fx's export path (parity-checked);
- front end + model: the log-mel of the waveform plus the model (what `fx animate --driving speech.wav` runs);
- end to end: `fx animate --driving speech.wav` (speech -> expression -> landmark targets -> TPS warp ->
  H.264 + AAC) on a 160 px portrait, frames/s, with the full warp grid (the default) and the tiny one.
Target: audio-to-expression >= 1000 frames/s on one core.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _interleaved(fns: dict, rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            time.sleep(0.05)
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def _fake_run(folder: Path) -> Path:
    """A run folder holding a random full-size audio2expr model (no training: speed only)."""
    from faceexpr_cli.builders import build_model
    from faceexpr_cli.config.cards import load_card
    from faceexpr_cli.train import checkpoint as C

    card = load_card("audio2expr")
    torch.manual_seed(0)
    model = build_model(card)
    model.set_basis(torch.zeros(136), torch.randn(64, 136) * 0.01)
    state = {"optimizer": {}, "schedule": {}, "step": 1}
    C.save_checkpoint(folder, 1, {"audio2expr": (model, C.resolved_card(card, card.arguments()))}, state, "", "{}", 1)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--video-seconds", type=float, default=4.0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    from faceexpr_cli.audio2expr.mel import frame_windows, frames_for, log_mel
    from faceexpr_cli.audio2expr.predict import Audio2ExprModel
    from faceexpr_cli.audio2expr.sample import voice
    from faceexpr_cli.samples.talking_head import mouth_curve

    fps = 25.0
    n = frames_for(args.seconds, fps)
    wave = voice(mouth_curve(np.arange(n) / fps, 0), fps)
    with tempfile.TemporaryDirectory() as tmp:
        run = _fake_run(Path(tmp) / "run")
        pt = Audio2ExprModel.load(run)
        ort_model = Audio2ExprModel.load(run, "onnx")
        windows = frame_windows(log_mel(wave, pt.spec), n, fps, pt.spec)[None]
        ref, blink = pt.neutral_reference()[None], np.zeros((1, n), np.float32)
        for m in (pt, ort_model):
            m.run(windows, ref, blink)  # warm up
        times = _interleaved({
            "torch model": lambda: pt.run(windows, ref, blink),
            "onnxruntime model": lambda: ort_model.run(windows, ref, blink),
            "torch mel + model": lambda: pt.predict(wave, fps),
            "onnxruntime mel + model": lambda: ort_model.predict(wave, fps),
        }, args.rounds)
        print(f"audio2expr (full card, {n} frames = {args.seconds:g} s of speech per call, 1 thread):")
        for name, ts in times.items():
            print(f"  {name:26s} {n / statistics.median(ts):9.0f} frames/s (median)  {n / min(ts):9.0f} (best)")
        a, b = pt.run(windows, ref, blink), ort_model.run(windows, ref, blink)
        print(f"  torch vs onnxruntime max abs diff: {max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True)):.2e}")
        e2e(run, Path(tmp), args.video_seconds)


def e2e(run: Path, tmp: Path, seconds: float) -> None:
    from faceexpr_cli.audio2expr.sample import portrait_crop, voice
    from faceexpr_cli.audio2expr.speech import SpeechOptions, animate_speech
    from faceexpr_cli.media import write_image
    from faceexpr_cli.samples.talking_head import mouth_curve, write_wav

    fps = 25.0
    n = int(seconds * fps)
    wav = write_wav(tmp / "speech.wav", voice(mouth_curve(np.arange(n) / fps, 1), fps), 16000)
    portrait = write_image(tmp / "portrait.png", portrait_crop("grace_hopper", 160))
    print(f"speech -> video end to end ({n} frames, 160x160 portrait, 1 thread):")
    for label, tiny in (("full warp grid (default)", False), ("tiny warp grid", True)):
        t0 = time.perf_counter()
        res = animate_speech(portrait, wav, tmp / "out.mp4", SpeechOptions(run, tiny_warp=tiny))
        dt = time.perf_counter() - t0
        print(f"  {label:26s} {res.frames / dt:9.1f} frames/s ({dt:.1f} s, including face detection and encoding)")


if __name__ == "__main__":
    main()
