"""What a run reports: a rich progress line, ``scalars.csv`` and TensorBoard, all from rank 0 only.

On resume the CSV keeps its rows up to the resumed step and continues, so one file holds the whole curve.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from faceexpr_cli.console import log, progress


class Monitor:
    def __init__(self, run_dir: Path, enabled: bool, tensorboard: bool, total: int, start: int):
        self.enabled = enabled
        self.csv_path = run_dir / "scalars.csv"
        self.rows: list[dict[str, float]] = []
        self.columns: list[str] | None = None
        self.tb = None
        self._progress = None
        self._task = None
        self._t0, self._frames = time.perf_counter(), 0
        if not enabled:
            return
        if self.csv_path.exists():
            with self.csv_path.open() as f:
                self.rows = [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(f)]
            self.rows = [r for r in self.rows if r["step"] <= start]
            if self.rows:
                self.columns = list(self.rows[0])
            self._rewrite()
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=start + 1 if start else None)
            except ImportError:  # tensorboard is optional at run time
                log.warning("tensorboard is not installed; writing scalars.csv only")
        self._progress = progress()
        self._progress.start()
        self._task = self._progress.add_task("train", total=total, completed=start)

    def _rewrite(self) -> None:
        if not self.columns:
            return
        tmp = self.csv_path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(self.rows)
        tmp.replace(self.csv_path)

    def count_frames(self, n: int) -> None:
        self._frames += n

    def log(self, step: int, scalars: dict[str, float]) -> dict[str, float]:
        now = time.perf_counter()
        fps = self._frames / max(now - self._t0, 1e-9)
        self._t0, self._frames = now, 0
        row = {"step": float(step), **{k: float(v) for k, v in scalars.items()}, "frames_per_s": fps}
        if not self.enabled:
            return row
        self.rows.append(row)
        if self.columns is None:
            self.columns = list(row)
            self._rewrite()
        else:
            with self.csv_path.open("a", newline="") as f:
                csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore").writerow(row)
        if self.tb is not None:
            for k, v in row.items():
                if k != "step":
                    self.tb.add_scalar(k.replace("w_", "weight/").replace("loss_", "loss/"), v, step)
        if self._progress is not None:
            shown = " ".join(f"{k.removeprefix('loss_')}={v:.4g}" for k, v in row.items()
                             if k.startswith(("loss_", "w_")) or k == "lr")
            self._progress.update(self._task, completed=step, description=f"step {step} {shown} {fps:.0f} fr/s")
        return row

    def log_eval(self, step: int, result: dict) -> None:
        """An evaluation's picture and video go to TensorBoard too (the files stay in ``eval/``)."""
        if self.tb is not None:
            from faceexpr_cli.train.tb_media import log_eval

            log_eval(self.tb, step, result)

    def advance(self, step: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=step)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        if self.tb is not None:
            self.tb.close()
