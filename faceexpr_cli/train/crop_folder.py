"""An ``fx crop`` output folder as training data, read through its manifest rather than by listing files.

The manifest is the record of the run: only ``ok`` rows are clips, their frame count and rate are the row's, and a
row whose file is gone (or, where the row records ``bytes``, whose file has another size) is not trusted. Walking
the folder instead would see ``clips/<video>/`` as one subject called "clips" and would train on files of failed
or half-written rows. A run that did not finish has no ``manifest.parquet`` yet; its finished parts
(``manifest/parts/*.parquet``) are read instead, with a warning.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from faceexpr_cli.console import log
from faceexpr_cli.errors import DataError
from faceexpr_cli.train.subjects import nothing_found, subject_rule, warn_unnamed

MANIFEST = "manifest.parquet"
PARTS = Path("manifest") / "parts"
OK = "ok"
HEAVY = {"crop_boxes", "face_boxes", "embedding"}  # per-frame lists, not needed to train


def is_crop_folder(path: str | Path) -> bool:
    p = Path(path)
    if p.is_file():
        return p.name == MANIFEST
    return p.is_dir() and ((p / MANIFEST).is_file() or (p / PARTS).is_dir())


def crop_root(path: str | Path) -> Path:
    p = Path(path)
    return p.parent if p.is_file() else p


def _read_table(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    names = [c for c in pq.read_schema(path).names if c not in HEAVY]
    return pq.read_table(path, columns=names).to_pylist()


def read_rows(root: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The manifest's rows (light columns only) and its column names."""
    manifest = root / MANIFEST
    if manifest.is_file():
        try:
            rows = _read_table(manifest)
        except Exception as exc:
            raise DataError(f"{manifest}: not a readable manifest ({exc})", "re-run fx crop on the same --out") from exc
    else:
        parts = sorted((root / PARTS).glob("*.parquet"))
        log.warning("%s: no %s (the crop run did not finish); reading its %d finished part(s)",
                    root, MANIFEST, len(parts))
        rows = []
        for part in parts:
            try:
                rows.extend(_read_table(part))
            except Exception as exc:  # a part being written or broken is a video to leave out, not a crash
                log.warning("%s: unreadable manifest part left out (%s)", part, exc)
    columns = sorted({k for r in rows for k in r})
    return rows, columns


def _present(value: Any) -> bool:
    return value is not None and value == value


def _frames(row: dict[str, Any], fps: float | None) -> tuple[int, float] | None:
    """(frames, rate) of the clip at the training rate, from the row; None when the row cannot say."""
    n, rate = row.get("n_frames"), row.get("fps")
    if fps is None:
        return (int(n), float(rate)) if _present(n) and _present(rate) and rate > 0 else None
    duration = row.get("duration")
    if not _present(duration):
        if not (_present(n) and _present(rate) and rate > 0):
            return None
        duration = n / rate
    return int(np.floor(float(duration) * fps + 1e-6)), float(fps)


def _why_unusable(root: Path, row: dict[str, Any], min_frames: int, fps: float | None) -> str | None:
    if row.get("status") != OK:
        return f"status {row.get('status')}"
    if not row.get("clip"):
        return "no clip file named"
    path = root / row["clip"]
    if not path.is_file():
        return "clip file missing"
    size = row.get("bytes")
    if _present(size) and path.stat().st_size != int(size):
        return "file size differs from the row's bytes"
    frames = _frames(row, fps)
    if frames is None:
        return "no frame count"
    if frames[0] < min_frames:
        return f"shorter than {min_frames} frames"
    return None


def crop_clips(root: str | Path, size: int, min_frames: int, fps: float | None, subject_from: str):
    """The usable clips of a crop folder as ``ClipRef``s; every skipped row is counted, by reason."""
    from faceexpr_cli.train.data import ClipRef

    root = crop_root(root)
    rows, columns = read_rows(root)
    where = f"{root / MANIFEST}"
    rule = subject_rule(subject_from, [c for c in columns if c not in HEAVY], where)
    clips: list[ClipRef] = []
    skipped: Counter[str] = Counter()
    example: dict[str, str] = {}
    unnamed, odd = [], []
    for row in rows:
        reason = _why_unusable(root, row, min_frames, fps)
        if reason is not None:
            skipped[reason] += 1
            example.setdefault(reason, str(row.get("clip") or row.get("source")))
            continue
        subject = rule(row)
        if subject is None:
            unnamed.append(row["clip"])
            continue
        n, rate = _frames(row, fps)  # type: ignore[misc]
        if _present(row.get("size")) and int(row["size"]) != size:
            odd.append(f"{row['clip']} {row['size']}px")
        clips.append(ClipRef(str(row["clip"]), root / row["clip"], subject, n, rate, bool(row.get("has_audio"))))
    not_ok = {k: v for k, v in skipped.items() if k.startswith("status ")}
    if not_ok:
        log.info("%s: %d row(s) are not clips (%s)", root, sum(not_ok.values()),
                 ", ".join(f"{v} {k[7:]}" for k, v in sorted(not_ok.items())))
    for reason, count in sorted(skipped.items()):
        if reason not in not_ok:
            log.warning("%d ok row(s) skipped: %s (e.g. %s)", count, reason, example[reason])
    warn_unnamed(len(unnamed), subject_from, unnamed[0] if unnamed else "")
    if odd:
        log.warning("%d clip(s) are not %dx%d and are resized on the fly (e.g. %s)", len(odd), size, size, odd[0])
    if not clips:
        if unnamed:
            raise nothing_found(subject_from, where)
        why = ", ".join(f"{v} {k}" for k, v in sorted(skipped.items())) or "no rows"
        raise DataError(f"{root}: no usable clip in the crop manifest ({why})",
                        "lower data.frames, or re-run fx crop on the same --out (it redoes failed videos)")
    log.info("%s: %d clip(s) of %d subject(s) from %d manifest row(s)", root, len(clips),
             len({c.subject for c in clips}), len(rows))
    return clips
