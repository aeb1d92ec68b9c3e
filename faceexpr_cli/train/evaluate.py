"""Evaluation outputs: a side-by-side reconstruction video (original | reconstruction, with the clip's audio) and a
PNG of the expression-token trajectory over a clip (first two principal components, coloured by time)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def side_by_side_video(path: Path, original: np.ndarray, recon: np.ndarray, fps: float,
                       audio: Path | None = None, audio_start: float = 0.0) -> Path:
    from faceexpr_cli.media import write_video

    frames = np.concatenate([original, recon], axis=2)
    return write_video(path, list(frames), fps, audio=audio, audio_start=audio_start,
                       audio_duration=len(frames) / fps)


def pca_2d(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Projections on the first two principal components and their explained-variance ratios."""
    x = tokens - tokens.mean(0, keepdims=True)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    var = s**2 / max(float((s**2).sum()), 1e-12)
    return x @ vt[:2].T, var[:2]


def token_plot(path: Path, tokens: np.ndarray, fps: float, title: str, predicted: np.ndarray | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    both = tokens if predicted is None else np.concatenate([tokens, predicted])
    proj, var = pca_2d(both.astype(np.float64))
    real = proj[: len(tokens)]
    t = np.arange(len(tokens)) / fps
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(real[:, 0], real[:, 1], color="0.7", lw=0.8)
    sc = ax1.scatter(real[:, 0], real[:, 1], c=t, cmap="viridis", s=14)
    if predicted is not None:
        ax1.plot(proj[len(tokens):, 0], proj[len(tokens):, 1], "r.", ms=4, label="predicted next")
        ax1.legend(loc="best", fontsize=8)
    fig.colorbar(sc, ax=ax1, label="time (s)")
    ax1.set_xlabel(f"PC1 ({var[0]:.0%})")
    ax1.set_ylabel(f"PC2 ({var[1]:.0%})" if len(var) > 1 else "PC2")
    ax2.plot(t, real[:, 0], label="PC1")
    if real.shape[1] > 1:
        ax2.plot(t, real[:, 1], label="PC2")
    ax2.set_xlabel("time (s)")
    ax2.legend(loc="best", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    tmp.replace(path)
    return path


def to_uint8(images) -> np.ndarray:
    """(N, 3, H, W) float in [0, 1] -> (N, H, W, 3) uint8."""
    arr = images.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    return (arr * 255 + 0.5).astype(np.uint8)


def evaluate(task, tokenizer, pos, source, batch, subjects, run_dir: Path, step: int, device, max_frames: int,
             chunk: int = 16) -> dict:
    """Run the eval clip through the models (eval mode, no grad) and write the video and/or token plot."""
    import torch

    if getattr(source, "streaming", False):
        clip, frames = batch.clips[0], batch.frames[0]
        start = batch.starts[0]
    else:
        clip, frames, start = source.clips[0], source.frames(0)[:max_frames], 0
    row = subjects.row(clip.subject)
    models = task.models
    was_training = {r: m.training for r, m in models.items()}
    for m in models.values():
        m.eval()
    outs: dict[str, list] = {"expression": [], "image": []}
    with torch.no_grad():
        for i in range(0, len(frames), chunk):
            x = torch.from_numpy(np.ascontiguousarray(frames[i:i + chunk])).to(device).permute(0, 3, 1, 2).float() / 255
            rows = torch.full((len(x),), row, dtype=torch.long, device=device)
            tokens = tokenizer(x)[0]
            expr = models["expression"](tokens, pos, rows)
            outs["expression"].append(expr.float().cpu())
            if "reconstruction" in models:
                outs["image"].append(to_uint8(models["reconstruction"](expr, rows, pos)))
        expr = torch.cat(outs["expression"])
        predicted = None
        if "predictor" in models:  # the predictor sees at most max_len frames
            expr = expr[: models["predictor"].max_len]
            predicted = models["predictor"](expr[None].to(device))[0].cpu().numpy()
    for r, m in models.items():
        m.train(was_training[r])
    stem = run_dir / "eval" / f"step_{step:06d}"
    result: dict[str, Any] = {"step": step, "clip": clip.key}
    if outs["image"]:
        recon = np.concatenate(outs["image"])
        result["mse"] = float(((recon.astype(np.float32) - frames.astype(np.float32)) / 255).__pow__(2).mean())
        audio = clip.path if clip.has_audio else None
        result["video"] = side_by_side_video(stem.with_suffix(".mp4"), frames, recon, clip.fps, audio,
                                             start / clip.fps)
    tokens_np = expr.numpy()
    if predicted is not None:
        result["prediction_cosine"] = float((tokens_np[1:] * predicted[:-1]).sum(-1).mean())
    result["plot"] = token_plot(stem.with_name(stem.name + "_tokens.png"), tokens_np, clip.fps,
                                f"expression tokens, {clip.key}, step {step}", predicted)
    return result
