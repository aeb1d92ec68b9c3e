"""`fx audio2expr eval RUN --clips DIR`: how well a run's speech-driven expressions match held-out clips.

Per clip, from its audio (the clip's first-frame expression and measured blinks as the other inputs, as in
training): LVE, the lip vertex error as FaceFormer reports it (per frame the largest distance over the 20 mouth
points between predicted and measured landmarks, averaged over frames), here in the normalised face frame (one
unit = the eye-corner midpoints' distance); expression L2 (mean per-frame L2 distance of the coefficients); and an
audio-visual sync proxy: the Pearson correlation between the predicted mouth opening and the speech envelope
(RMS per frame), at lag 0 and at the best lag within +-``max_lag`` frames (positive lag: the mouth follows the
sound). The same figures for the measured mouth give the clips' own ceiling. Writes ``metrics.json`` and
``mouth.png`` (predicted vs measured mouth opening and the envelope of the first clip).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from faceexpr_cli.audio2expr import shapes as S


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 3 or a.std() < 1e-12 or b.std() < 1e-12:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def best_lag(mouth: np.ndarray, env: np.ndarray, max_lag: int) -> tuple[int, float]:
    """(lag, correlation) maximising corr(mouth[t + lag], env[t]) for |lag| <= max_lag."""
    best = (0, correlation(mouth, env))
    for lag in range(-max_lag, max_lag + 1):
        if lag > 0:
            c = correlation(mouth[lag:], env[:-lag])
        elif lag < 0:
            c = correlation(mouth[:lag], env[-lag:])
        else:
            continue
        if np.isfinite(c) and (not np.isfinite(best[1]) or c > best[1]):
            best = (lag, c)
    return best


def clip_metrics(model, clip, basis_project, max_lag: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    target = basis_project(clip.offsets)
    expr, offsets = model.run(clip.windows(model.spec)[None], target[:1], clip.blink[None])
    expr, offsets = expr[0], offsets[0]
    found = clip.found
    pred_shape = clip.neutral[None] + offsets
    err = np.linalg.norm(pred_shape[:, S.MOUTH] - clip.shapes[:, S.MOUTH], axis=-1).max(1)
    mouth_pred, mouth_true = S.mouth_opening(pred_shape), S.mouth_opening(clip.shapes)
    lag, lag_corr = best_lag(mouth_pred, clip.envelope, max_lag)
    true_lag, true_corr = best_lag(mouth_true, clip.envelope, max_lag)
    row = {
        "clip": clip.key, "frames": len(clip), "lve": float(err[found].mean()),
        "expression_l2": float(np.linalg.norm(expr - target, axis=1)[found].mean()),
        "mouth_correlation": correlation(mouth_pred[found], mouth_true[found]),
        "sync_correlation": correlation(mouth_pred, clip.envelope), "sync_lag_frames": lag,
        "sync_lag_ms": 1000.0 * lag / clip.fps, "sync_best_correlation": lag_corr,
        "measured_sync_correlation": correlation(mouth_true, clip.envelope), "measured_sync_lag_frames": true_lag,
        "measured_sync_best_correlation": true_corr,
    }
    return row, {"predicted": mouth_pred, "measured": mouth_true, "envelope": clip.envelope, "fps": clip.fps}


def _finite(value: Any) -> Any:
    """NaN (a constant curve has no correlation) as null, so metrics.json is strict JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def plot_mouth(path: Path, curves: dict[str, Any], key: str,
               labels: tuple[str, str] = ("measured mouth opening", "predicted from speech")) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(len(curves["predicted"])) / curves["fps"]
    fig, ax = plt.subplots(figsize=(9, 3.2), dpi=110)
    ax.plot(t, curves["measured"], label=labels[0], color="#444")
    ax.plot(t, curves["predicted"], label=labels[1], color="#d62728")
    env = curves["envelope"]
    scale = (curves["measured"].max() or 1) / max(float(env.max()), 1e-9)
    ax.fill_between(t, 0, env * scale, color="#1f77b4", alpha=0.2, label="speech envelope (scaled)")
    ax.set_xlabel("seconds")
    ax.set_ylabel("inner-lip gap (face units)")
    ax.set_title(f"audio2expr on {key}")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path


def evaluate_run(run: str | Path, clips_path: str | Path, out: str | Path, *, cache: str | Path | None = None,
                 face_backend: str = "dlib", backend: str = "torch", max_lag: int = 5) -> dict[str, Any]:
    from faceexpr_cli.audio2expr.clips import load_clips
    from faceexpr_cli.audio2expr.predict import Audio2ExprModel
    from faceexpr_cli.runlock import ensure_out_dir, output_lock

    model = Audio2ExprModel.load(run, backend)  # a run of another kind is one line before any clip is read
    out = ensure_out_dir(out, "--out")
    with output_lock(out, "fx audio2expr eval", "--out"):
        clips = load_clips(clips_path, cache or out / "targets", face_backend=face_backend, min_frames=3,
                           spec=model.spec)
        rows, first = [], None
        for clip in clips:
            row, curves = clip_metrics(model, clip, model.basis.project, max_lag)
            rows.append(row)
            first = first or (clip.key, curves)
        keys = [k for k, v in rows[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                and k != "frames"]
        summary = {"run": str(run), "clips": len(rows), "backend": backend,
                   **{k: float(np.nanmean([r[k] for r in rows])) for k in keys},
                   "lve_unit": "normalised face frame (eye-corner midpoint distance = 1)", "per_clip": rows}
        plot = plot_mouth(out / "mouth.png", first[1], first[0])
        summary["plot"] = str(plot)
        summary = _finite(summary)
        (out / "metrics.json").write_text(json.dumps(summary, indent=1, allow_nan=False))
    summary["metrics"] = str(out / "metrics.json")
    return summary
