"""`fx finetune-dfer folds`: one run per fold, a summary whose mean and std are those of the folds' own final
metrics, and a re-run that reads finished folds instead of training them again."""

from __future__ import annotations

import json

import numpy as np

from faceexpr_cli.cli.app import main


def test_two_folds_and_their_summary(tmp_path, capsys):
    from faceexpr_cli.dfer.synthetic import make_synthetic

    data = make_synthetic(tmp_path / "sample", train_per_class=2, test_per_class=1)
    folds = tmp_path / "folds"
    folds.mkdir()
    lines = data.train.read_text().splitlines()
    for k in (1, 2):  # fold k trains on every other line, tests on the held-out csv (paths relative to the file)
        (folds / f"train_{k}.txt").write_text("\n".join(f"{data.root / ln.split()[0]} {ln.split()[1]}"
                                                        for ln in lines[k - 1::2]) + "\n")
        (folds / f"test_{k}.csv").write_text("path,label\n" + "\n".join(
            f"{data.root / r.split(',')[0]},{r.split(',')[1]}" for r in data.test.read_text().splitlines()[1:]))
    out = tmp_path / "runs"
    args = ["-q", "finetune-dfer", "folds", "--recipe", "dfer-tiny", "--folds", str(folds), "--out", str(out),
            "--json", "trainer.max_steps=2", "trainer.tensorboard=false", "data.batch_clips=2"]
    capsys.readouterr()
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    per_fold = [json.loads((out / f"fold_{k}" / "metrics.json").read_text()) for k in (1, 2)]
    wars = [m["war"] for m in per_fold]
    assert [f["fold"] for f in summary["folds"]] == [1, 2]
    assert summary["war_mean"] == np.mean(wars) and summary["war_std"] == np.std(wars)
    assert (out / "summary.csv").read_text().splitlines()[0] == "fold,uar,war"
    stamp = (out / "fold_1" / "metrics.json").stat().st_mtime_ns
    assert main(args) == 0  # finished folds are read, not re-run
    assert (out / "fold_1" / "metrics.json").stat().st_mtime_ns == stamp
