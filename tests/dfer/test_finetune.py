"""End to end on the synthetic expression clips: `fx finetune-dfer train --recipe dfer-tiny` learns them to
WAR >= 0.9 on held-out clips (checked here with our own single-view pass and sklearn, not the run's numbers),
`eval` writes its three files, `predict` works on one video with PyTorch and ONNX Runtime (a full-frame video is
cropped by the face layer), and a resumed run repeats the uninterrupted run bit for bit."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score

from faceexpr_cli.cli.app import main
from faceexpr_cli.dfer.synthetic import CLASSES, make_synthetic


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("dfer") / "sample", train_per_class=16, test_per_class=8)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "tiny"
    code = main(["-q", "finetune-dfer", "train", "--recipe", "dfer-tiny", "--train", str(data.train), "--test",
                 str(data.test), "--out", str(run), "trainer.tensorboard=false"])
    assert code == 0
    return run


def _held_out(data):
    """(clip paths, labels) of test.csv read here with the csv module."""
    rows = list(csv.DictReader(data.test.open()))
    return [data.root / r["path"] for r in rows], [CLASSES.index(r["label"]) for r in rows]


def test_tiny_recipe_learns_the_synthetic_expressions(data, trained):
    from faceexpr_cli.dfer.models import load_classifier
    from faceexpr_cli.media.reader import read_frames

    clf = load_classifier(trained)
    assert clf.classes == list(CLASSES)
    paths, labels = _held_out(data)
    preds = []
    for p in paths:  # one centred window, no crops: independent of the run's own view code
        frames = read_frames(p)
        idx = np.clip(4 + np.arange(8) * 3, 0, len(frames) - 1)
        x = torch.from_numpy(frames[idx]).permute(0, 3, 1, 2).float()[None] / 255
        with torch.no_grad():
            preds.append(int(clf.module(x)[0].argmax()))
    assert accuracy_score(labels, preds) >= 0.9, preds
    final = json.loads((trained / "metrics.json").read_text())
    assert final["war"] >= 0.9 and final["uar"] >= 0.9
    assert (trained / "best" / "classifier.safetensors").is_file()
    assert json.loads((trained / "labels.json").read_text())["classes"] == list(CLASSES)


def test_eval_writes_metrics_confusion_and_predictions(data, trained, tmp_path):
    from PIL import Image

    out = tmp_path / "eval"
    assert main(["-q", "finetune-dfer", "eval", "--model", str(trained), "--test", str(data.test), "--out",
                 str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    truth = [r["label"] for r in rows]
    pred = [r["predicted"] for r in rows]
    assert len(rows) == 4 * 8
    assert metrics["war"] == pytest.approx(accuracy_score(truth, pred))
    assert metrics["uar"] == pytest.approx(balanced_accuracy_score(truth, pred))
    assert np.asarray(metrics["confusion"]).sum() == 32 and metrics["classes"] == list(CLASSES)
    assert set(metrics["per_class_recall"]) == set(CLASSES)
    for r in rows:
        probs = [float(r[f"p_{c}"]) for c in CLASSES]
        assert abs(sum(probs) - 1) < 1e-4 and CLASSES[int(np.argmax(probs))] == r["predicted"]
    with Image.open(out / "confusion.png") as im:
        assert im.size[0] > 100 and np.asarray(im.convert("L")).std() > 10


def test_predict_one_video_torch_and_onnx(data, trained, sample_video, capsys):
    clip = data.root / "clips" / "test_mouth_open_000.mp4"
    capsys.readouterr()
    assert main(["-q", "finetune-dfer", "predict", str(clip), str(sample_video.path), "--model", str(trained),
                 "--json", "--face-backend", "dlib"]) == 0
    torch_out = json.loads(capsys.readouterr().out)
    assert [r["path"] for r in torch_out] == [str(clip), str(sample_video.path)]
    assert torch_out[0]["label"] == "mouth_open" and not torch_out[0]["cropped"]
    assert torch_out[1]["cropped"] and torch_out[1]["faces"] > 10  # full frame: the face layer found and cropped it
    for r in torch_out:
        assert abs(sum(r["probabilities"].values()) - 1) < 1e-4 and set(r["probabilities"]) == set(CLASSES)
    assert main(["-q", "finetune-dfer", "predict", str(clip), str(sample_video.path), "--model", str(trained),
                 "--json", "--face-backend", "dlib", "--backend", "onnx"]) == 0
    onnx_out = json.loads(capsys.readouterr().out)
    assert (trained / "export" / "classifier.onnx").is_file()
    for a, b in zip(torch_out, onnx_out, strict=True):
        assert a["label"] == b["label"]
        for c in CLASSES:
            assert abs(a["probabilities"][c] - b["probabilities"][c]) < 1e-4


def test_resume_repeats_the_uninterrupted_run(data, tmp_path):
    from safetensors.torch import load_file

    small = tmp_path / "small.txt"
    small.write_text("".join(f"{data.root / 'clips' / f'test_{c}_000.mp4'} {i}\n" for i, c in enumerate(CLASSES)))
    args = ["-q", "finetune-dfer", "train", "--recipe", "dfer-tiny", "--train", str(data.train), "--test",
            str(small), "trainer.max_steps=6", "trainer.save_every=3", "optim.warmup_steps=2", "trainer.tensorboard=false", "data.batch_clips=4"]
    full = tmp_path / "full"
    assert main([*args, "--out", str(full)]) == 0
    cut = tmp_path / "cut"
    shutil.copytree(full, cut)
    shutil.rmtree(cut / "checkpoints" / "step_000006")
    (cut / "checkpoints" / "latest").write_text("step_000003")
    assert main(["-q", "finetune-dfer", "train", "--out", str(cut), "--resume"]) == 0
    a = load_file(full / "checkpoints" / "step_000006" / "classifier.safetensors")
    b = load_file(cut / "checkpoints" / "step_000006" / "classifier.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    start = load_file(full / "checkpoints" / "step_000003" / "classifier.safetensors")
    assert not all(torch.equal(a[k], start[k]) for k in a)  # the resumed steps did train
    assert main([*args, "--out", str(full)]) == 2  # a second run into a finished run folder is refused
