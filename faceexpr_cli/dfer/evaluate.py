"""Evaluation of a classifier on an annotation file: multi-view probabilities per clip, UAR/WAR, the confusion
matrix as counts and as a picture, per-clip predictions. The same view logic serves PyTorch and ONNX Runtime."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from faceexpr_cli.dfer.annotations import Annotations
from faceexpr_cli.dfer.clips import ClipReader
from faceexpr_cli.dfer.metrics import scores
from faceexpr_cli.dfer.sampling import Sampling, to_tensor

# (V, T, 3, H, W) float32 in [0, 1] -> (V, C) class probabilities
ViewRunner = Callable[[np.ndarray], np.ndarray]


def torch_runner(module, device: str = "cpu", batch: int = 16) -> ViewRunner:
    import torch

    def run(views: np.ndarray) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for i in range(0, len(views), batch):
                x = torch.from_numpy(views[i:i + batch]).to(device)
                out.append(module(x)[1].float().cpu().numpy())
        return np.concatenate(out)

    return run


def clip_probabilities(frames: np.ndarray, sampling: Sampling, run: ViewRunner) -> np.ndarray:
    """Mean class probabilities over the test views of one clip's frames (T, H, W, 3) uint8."""
    views = to_tensor(sampling.test_views(frames)).numpy()
    return run(views).mean(0)


def predict_annotations(ann: Annotations, reader: ClipReader, sampling: Sampling, run: ViewRunner,
                        on_clip: Callable[[], None] | None = None) -> np.ndarray:
    probs = []
    for entry in ann.entries:
        probs.append(clip_probabilities(reader.frames(entry.path), sampling, run))
        if on_clip:
            on_clip()
    return np.stack(probs)


def evaluate(ann: Annotations, classes: list[str], reader: ClipReader, sampling: Sampling, run: ViewRunner,
             on_clip=None) -> tuple[dict, np.ndarray]:
    probs = predict_annotations(ann, reader, sampling, run, on_clip)
    result = scores(ann.labels(), probs.argmax(1).tolist(), classes)
    return result, probs


def confusion_png(path: Path, result: dict, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(result["confusion"])
    classes = result["classes"]
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * n, 0.8 + 0.6 * n), dpi=100)
    ax.imshow(cm, cmap="Blues")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black", fontsize=8)
    ax.set_xticks(range(n), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"UAR {result['uar']:.3f}  WAR {result['war']:.3f}", fontsize=9)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path


def write_report(out: Path, ann: Annotations, result: dict, probs: np.ndarray, classes: list[str]) -> dict[str, Path]:
    """``metrics.json``, ``confusion.png``, ``predictions.csv`` under ``out`` (each under a temporary name first)."""
    out.mkdir(parents=True, exist_ok=True)
    metrics = out / "metrics.json"
    tmp = out / ".metrics.json.tmp"
    tmp.write_text(json.dumps(result, indent=1), encoding="utf-8")
    tmp.replace(metrics)
    png = confusion_png(out / "confusion.png", result)
    pred = out / "predictions.csv"
    tmp = out / ".predictions.csv.tmp"
    with tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "line", "label", "predicted", "correct", *[f"p_{c}" for c in classes]])
        for e, p in zip(ann.entries, probs, strict=True):
            k = int(p.argmax())
            w.writerow([str(e.path), e.line, classes[e.label], classes[k], int(k == e.label),
                        *[f"{v:.6f}" for v in p]])
    tmp.replace(pred)
    return {"metrics": metrics, "confusion": png, "predictions": pred}
