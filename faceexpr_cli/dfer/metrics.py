"""UAR (mean of per-class recall, sklearn's balanced accuracy) and WAR (overall accuracy), with the confusion
counts they come from. A class with no test clips has no recall and is left out of UAR, as sklearn does."""

from __future__ import annotations

import numpy as np


def confusion(y_true, y_pred, num_classes: int) -> np.ndarray:
    """(C, C) int64 counts; rows are the true class, columns the predicted one."""
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    if t.shape != p.shape:
        raise ValueError(f"{t.shape[0]} labels but {p.shape[0]} predictions")
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= num_classes):
        raise ValueError(f"a class index outside 0..{num_classes - 1}")
    out = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(out, (t, p), 1)
    return out


def scores(y_true, y_pred, classes: list[str]) -> dict:
    """``uar``, ``war``, ``per_class_recall`` (None for a class without clips), ``confusion``, ``classes``."""
    cm = confusion(y_true, y_pred, len(classes))
    support = cm.sum(1)
    recall = [float(cm[i, i] / support[i]) if support[i] else None for i in range(len(classes))]
    present = [r for r in recall if r is not None]
    total = int(cm.sum())
    return {
        "uar": float(np.mean(present)) if present else 0.0,
        "war": float(np.trace(cm) / total) if total else 0.0,
        "per_class_recall": dict(zip(classes, recall, strict=True)),
        "support": dict(zip(classes, support.tolist(), strict=True)),
        "confusion": cm.tolist(),
        "classes": list(classes),
        "clips": total,
    }


def summary_table(folds: list[dict]) -> dict:
    """Per-fold UAR/WAR and their mean and (population) standard deviation, as MAE-DFER reports folds."""
    uar = np.array([f["uar"] for f in folds], dtype=np.float64)
    war = np.array([f["war"] for f in folds], dtype=np.float64)
    return {"folds": folds, "uar_mean": float(uar.mean()), "uar_std": float(uar.std()),
            "war_mean": float(war.mean()), "war_std": float(war.std())}
