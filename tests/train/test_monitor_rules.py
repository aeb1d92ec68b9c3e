"""scalars.csv, frame rate, TensorBoard tags and the progress line of the run monitor, on a fake clock."""

from __future__ import annotations

import csv

import pytest

from faceexpr_cli.train import monitor as M


class Clock:
    def __init__(self, *times: float):
        self.times = list(times)

    def perf_counter(self) -> float:
        return self.times.pop(0)


class FakeTB:
    def __init__(self):
        self.scalars: list[tuple[str, float, int]] = []
        self.closed = False

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def close(self):
        self.closed = True


def read(path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_rows_and_frame_rate(tmp_path, monkeypatch):
    monkeypatch.setattr(M, "time", Clock(10.0, 12.0, 14.0, 14.0))
    mon = M.Monitor(tmp_path, True, False, total=9, start=0)
    assert mon.columns is None and mon.rows == [] and not mon.csv_path.exists()
    mon.count_frames(30)
    mon.count_frames(10)
    row = mon.log(1, {"loss": 0.5, "lr": 1})
    assert row == {"step": 1.0, "loss": 0.5, "lr": 1.0, "frames_per_s": 20.0}  # 40 frames over 2 s
    mon.count_frames(8)
    assert mon.log(2, {"loss": 0.25, "lr": 2, "new": 7})["frames_per_s"] == 4.0  # 8 frames over 2 s
    assert mon.log(3, {"loss": 0.0, "lr": 3})["frames_per_s"] == 0.0  # no frames, no time: 0, not a division error
    assert read(tmp_path / "scalars.csv") == [
        {"step": "1.0", "loss": "0.5", "lr": "1.0", "frames_per_s": "20.0"},
        {"step": "2.0", "loss": "0.25", "lr": "2.0", "frames_per_s": "4.0"},  # a key of a later row is left out
        {"step": "3.0", "loss": "0.0", "lr": "3.0", "frames_per_s": "0.0"}]
    assert [r["step"] for r in mon.rows] == [1.0, 2.0, 3.0] and mon.columns == ["step", "loss", "lr", "frames_per_s"]
    mon.close()


def test_a_disabled_monitor_writes_nothing(tmp_path):
    mon = M.Monitor(tmp_path, False, True, total=5, start=0)
    row = mon.log(1, {"loss": 1.0})
    assert row["step"] == 1.0 and row["loss"] == 1.0
    assert mon.rows == [] and mon.tb is None and mon._progress is None
    assert list(tmp_path.iterdir()) == []
    mon.advance(2)
    mon.log_eval(2, {"plot": None})
    mon.close()


def test_resume_keeps_the_rows_up_to_the_resumed_step(tmp_path):
    (tmp_path / "scalars.csv").write_text("step,loss,extra\n1.0,0.5,\n2.0,0.4,9\n3.0,0.3,\n4.0,0.2,\n")
    mon = M.Monitor(tmp_path, True, False, total=9, start=2)
    assert mon.rows == [{"step": 1.0, "loss": 0.5}, {"step": 2.0, "loss": 0.4, "extra": 9.0}]
    assert mon.columns == ["step", "loss"]  # the first kept row's columns
    assert read(tmp_path / "scalars.csv") == [{"step": "1.0", "loss": "0.5"}, {"step": "2.0", "loss": "0.4"}]
    mon.log(3, {"loss": 0.1})
    assert [r["step"] for r in read(tmp_path / "scalars.csv")] == ["1.0", "2.0", "3.0"]
    assert mon._progress.tasks[0].completed == 3
    mon.close()
    assert not (tmp_path / "scalars.csv.tmp").exists()


def test_resume_at_step_zero_keeps_no_row(tmp_path):
    (tmp_path / "scalars.csv").write_text("step,loss\n1.0,0.5\n")
    mon = M.Monitor(tmp_path, True, False, total=9, start=0)
    assert mon.rows == [] and mon.columns is None
    assert (tmp_path / "scalars.csv").read_text() == "step,loss\n1.0,0.5\n"  # rewritten only with columns to write
    mon.log(1, {"loss": 0.9})
    assert [r["loss"] for r in read(tmp_path / "scalars.csv")] == ["0.9"]
    mon.close()


def test_tensorboard_tags_and_the_progress_line(tmp_path, monkeypatch):
    monkeypatch.setattr(M, "time", Clock(0.0, 1.0))
    mon = M.Monitor(tmp_path, True, False, total=9, start=0)
    mon.tb = FakeTB()
    mon.count_frames(5)
    mon.log(4, {"loss": 1.5, "lr": 0.001, "loss_temporal": 0.25, "w_temporal": 0.5})
    assert mon.tb.scalars == [("loss", 1.5, 4), ("lr", 0.001, 4), ("loss/temporal", 0.25, 4),
                              ("weight/temporal", 0.5, 4), ("frames_per_s", 5.0, 4)]
    task = mon._progress.tasks[0]
    assert task.total == 9 and task.completed == 4
    assert task.description == "step 4 lr=0.001 temporal=0.25 w_temporal=0.5 5 fr/s"
    mon.advance(6)
    assert mon._progress.tasks[0].completed == 6
    tb = mon.tb
    mon.close()
    assert tb.closed


def test_eval_results_go_to_tensorboard_only_with_a_writer(tmp_path, monkeypatch):
    seen = []
    import faceexpr_cli.train.tb_media as T

    monkeypatch.setattr(T, "log_eval", lambda tb, step, result: seen.append((tb, step, result)))
    mon = M.Monitor(tmp_path, True, False, total=3, start=0)
    mon.log_eval(2, {"a": 1})
    assert seen == []
    mon.tb = fake = FakeTB()
    mon.log_eval(2, {"a": 1})
    assert seen == [(fake, 2, {"a": 1})]
    mon.close()


def test_a_real_writer_purges_after_the_resumed_step(tmp_path, monkeypatch):
    pytest.importorskip("torch.utils.tensorboard")
    import torch.utils.tensorboard as tbmod

    made = []

    class Writer(FakeTB):
        def __init__(self, logdir, purge_step=None):
            super().__init__()
            made.append((logdir, purge_step))

    monkeypatch.setattr(tbmod, "SummaryWriter", Writer)
    M.Monitor(tmp_path, True, True, total=9, start=0).close()
    M.Monitor(tmp_path, True, True, total=9, start=5).close()
    assert made == [(str(tmp_path / "tb"), None), (str(tmp_path / "tb"), 6)]
