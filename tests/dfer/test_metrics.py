"""UAR / WAR against scikit-learn on hand-made predictions, confusion counts, the k-fold summary."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix

from faceexpr_cli.dfer.metrics import confusion, scores, summary_table

CLASSES = ["happy", "sad", "neutral", "angry"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_uar_war_agree_with_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.choice(4, size=57, p=[0.5, 0.3, 0.15, 0.05])  # imbalanced: UAR and WAR differ
    pred = np.where(rng.random(57) < 0.6, y, rng.integers(0, 4, 57))
    got = scores(y, pred, CLASSES)
    assert got["war"] == pytest.approx(accuracy_score(y, pred), abs=1e-12)
    assert got["uar"] == pytest.approx(balanced_accuracy_score(y, pred), abs=1e-12)
    assert got["confusion"] == confusion_matrix(y, pred, labels=range(4)).tolist()


def test_hand_counted_example_and_a_class_without_clips():
    y = [0, 0, 0, 0, 1, 1, 2]
    pred = [0, 0, 0, 1, 1, 0, 1]
    got = scores(y, pred, CLASSES)
    assert got["war"] == pytest.approx(4 / 7)
    assert got["uar"] == pytest.approx((3 / 4 + 1 / 2 + 0) / 3)  # angry has no clip: left out, as sklearn does
    assert got["per_class_recall"] == {"happy": 0.75, "sad": 0.5, "neutral": 0.0, "angry": None}
    assert got["uar"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert confusion(y, pred, 4)[0].tolist() == [3, 1, 0, 0]
    with pytest.raises(ValueError):
        confusion([0, 5], [0, 0], 4)


def test_fold_summary_mean_and_population_std():
    s = summary_table([{"uar": 0.6, "war": 0.7}, {"uar": 0.64, "war": 0.74}])
    assert s["uar_mean"] == pytest.approx(0.62) and s["uar_std"] == pytest.approx(0.02)
    assert s["war_mean"] == pytest.approx(0.72) and s["war_std"] == pytest.approx(0.02)
