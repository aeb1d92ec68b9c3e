"""Training clips for audio2expr: per clip, the log-mel of its audio track and its normalised 68-point landmarks.

Clips come from an `fx crop` folder (through its manifest), an `fx clip` dataset (tar shards) or a folder of
mp4 files; each is decoded once with its audio resampled to 16 kHz (``dataset.ClipDataset``), its face followed
by the face layer (``animate.landmarks.follow_landmarks``: detection every few frames, landmarks every frame) and
the result cached per source file (``<cache>/<hash>.npz``, keyed by the file's path, size, mtime and the
settings), so later epochs and runs never decode or detect again. A clip without audio, or whose face is lost in
more than half its frames, is left out with a warning.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceexpr_cli.audio2expr import shapes as S
from faceexpr_cli.audio2expr.mel import MelSpec, frame_windows, log_mel
from faceexpr_cli.console import log
from faceexpr_cli.errors import DataError

CACHE_VERSION = 3


@dataclass
class ClipTargets:
    key: str
    fps: float
    mel: np.ndarray  # (bands, M) normalised log-mel of the clip's audio
    shapes: np.ndarray  # (T, 68, 2) normalised face frame
    found: np.ndarray  # (T,) bool
    neutral: np.ndarray  # (68, 2)
    blink: np.ndarray  # (T,)
    envelope: np.ndarray  # (T,) RMS of the audio over the frame period centred on each frame

    def __len__(self) -> int:
        return len(self.shapes)

    @property
    def offsets(self) -> np.ndarray:
        return self.shapes - self.neutral[None]

    def windows(self, spec: MelSpec = MelSpec()) -> np.ndarray:
        return frame_windows(self.mel, len(self), self.fps, spec)


def targets_from(frames: np.ndarray, wave: np.ndarray, fps: float, key: str, backend, detect_every: int = 10,
                 spec: MelSpec = MelSpec()) -> ClipTargets:
    """One clip's targets from its RGB frames (T, H, W, 3) and 16 kHz mono waveform."""
    from faceexpr_cli.animate.landmarks import follow_landmarks

    track = follow_landmarks(backend, frames, key, detect_every=detect_every)
    shapes = S.normalise(track.points)
    good = shapes[track.found] if track.found.any() else shapes
    neutral = S.neutral_face(good)
    return ClipTargets(key, float(fps), log_mel(wave, spec), shapes, np.asarray(track.found, bool), neutral,
                       S.blink_values(shapes, neutral), envelope(wave, len(shapes), fps, spec.sample_rate))


def envelope(wave: np.ndarray, frames: int, fps: float, rate: int) -> np.ndarray:
    """(frames,) RMS of ``wave`` over the frame period centred on each video frame's time (zeros past the end)."""
    edges = np.clip(np.round((np.arange(frames + 1) - 0.5) / fps * rate), 0, None).astype(np.int64)
    sq = np.concatenate([[0.0], np.cumsum(np.asarray(wave, np.float64) ** 2)])
    lo, hi = np.minimum(edges[:-1], len(wave)), np.minimum(edges[1:], len(wave))
    return np.sqrt((sq[hi] - sq[lo]) / np.maximum(hi - lo, 1)).astype(np.float32)


def _settings(detect_every: int, backend: str, spec: MelSpec) -> dict:
    return {"version": CACHE_VERSION, "detect_every": detect_every, "face_backend": backend, "mel": spec.to_dict()}


def _cache_file(cache: Path, source: Path, settings: dict) -> Path:
    st = source.stat()
    text = json.dumps({"path": str(source.resolve()), "size": st.st_size, "mtime": st.st_mtime_ns, **settings},
                      sort_keys=True)
    return cache / f"{hashlib.sha1(text.encode()).hexdigest()[:20]}.npz"


def _save(path: Path, clips: list[ClipTargets]) -> None:
    arrays = {}
    for i, c in enumerate(clips):
        arrays.update({f"{i}.mel": c.mel, f"{i}.shapes": c.shapes, f"{i}.found": c.found, f"{i}.neutral": c.neutral,
                       f"{i}.blink": c.blink, f"{i}.envelope": c.envelope})
    meta = [{"key": c.key, "fps": c.fps} for c in clips]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, meta=np.array(json.dumps(meta)), **arrays)
    tmp.replace(path)


def _load(path: Path) -> list[ClipTargets] | None:
    try:
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
            return [ClipTargets(m["key"], float(m["fps"]), z[f"{i}.mel"], z[f"{i}.shapes"], z[f"{i}.found"],
                                z[f"{i}.neutral"], z[f"{i}.blink"], z[f"{i}.envelope"]) for i, m in enumerate(meta)]
    except Exception as exc:  # noqa: BLE001 - a damaged cache file is recomputed, never trusted
        log.warning("target cache %s is unreadable (%s); recomputing", path.name, exc)
        return None


def clip_sources(path: str | Path) -> list[Path]:
    """The files holding the clips: an fx crop folder's ok clips, an fx clip dataset's shards, or mp4 files."""
    from faceexpr_cli.dataset.sources import list_shards
    from faceexpr_cli.train.crop_folder import crop_clips, crop_root, is_crop_folder, read_rows

    if is_crop_folder(path):
        rows, _ = read_rows(crop_root(path))
        sizes = [int(r["size"]) for r in rows if r.get("status") == "ok" and r.get("size")]
        return [c.path for c in crop_clips(path, sizes[0] if sizes else 0, 2, None, "auto")]
    return list_shards(path)


def load_clips(path: str | Path, cache: str | Path, *, face_backend: str = "dlib", detect_every: int = 10,
               min_frames: int = 8, spec: MelSpec = MelSpec(), on_progress=None) -> list[ClipTargets]:
    """Every usable clip under ``path`` with its targets, computed once and cached in ``cache``."""
    from faceexpr_cli.dataset.reader import ClipDataset
    from faceexpr_cli.face import get_backend

    cache = Path(cache)
    settings = _settings(detect_every, face_backend, spec)
    backend = None
    out: list[ClipTargets] = []
    skipped: dict[str, int] = {}
    for source in clip_sources(path):
        file = _cache_file(cache, source, settings)
        clips = _load(file) if file.is_file() else None
        if clips is None:
            backend = backend or get_backend(face_backend).prepare()
            clips = []
            data = ClipDataset(source, audio=True, sample_rate=spec.sample_rate, channels=1, rank=0, world_size=1)
            for sample in data:
                if not sample["has_audio"]:
                    skipped["no audio track"] = skipped.get("no audio track", 0) + 1
                    continue
                try:
                    clips.append(targets_from(sample["frames"].numpy(), sample["audio"].numpy()[0], sample["fps"],
                                              sample["key"], backend, detect_every, spec))
                except DataError as exc:  # no face at all in the clip
                    log.warning("%s: left out (%s)", sample["key"], exc.one_line())
            _save(file, clips)
        for c in clips:
            if len(c) < min_frames:
                skipped[f"shorter than {min_frames} frames"] = skipped.get(f"shorter than {min_frames} frames", 0) + 1
            elif c.found.mean() < 0.5:
                skipped["face lost in most frames"] = skipped.get("face lost in most frames", 0) + 1
            else:
                out.append(c)
        if on_progress is not None:
            on_progress()
    for reason, n in sorted(skipped.items()):
        log.warning("%d clip(s) left out: %s", n, reason)
    if not out:
        raise DataError(f"{path}: no clip with audio and a face to learn from",
                        "point data.path at talking-face clips that keep their audio (fx crop / fx clip output)")
    return out


def clips_from_features(features: str | Path, *, min_frames: int = 8, spec: MelSpec = MelSpec()) -> list[ClipTargets]:
    """Targets from an `fx extract-feats --features landmarks --stride 1` folder: per video, its longest face
    trajectory's 68 points (crop-square units: the normalisation removes position and size alike) and the
    source video's audio over the trajectory's span. Frames the trajectory skips are held from the previous
    one and marked not found."""
    import pyarrow.parquet as pq

    from faceexpr_cli.audio2expr.predict import read_audio
    from faceexpr_cli.errors import FxError, MissingFileError

    root = Path(features)
    index = root / "features.parquet"
    if not index.is_file():
        raise MissingFileError(index, "fx extract-feats index", "run fx extract-feats --features landmarks first")
    out: list[ClipTargets] = []
    for row in pq.read_table(index).to_pylist():
        if row.get("status") != "ok" or not row.get("npz"):
            continue
        with np.load(root / row["npz"]) as z:
            if "landmarks" not in z.files:
                raise DataError(f"{root}: extracted without landmarks", "re-run fx extract-feats with --features "
                                                                        "landmarks")
            traj, frames, points = z["traj"], z["frame_ind"], z["landmarks"]
        ids, counts = np.unique(traj, return_counts=True)
        keep = traj == ids[np.argmax(counts)]
        frames, points = frames[keep], points[keep]
        order = np.argsort(frames)
        frames, points = frames[order], points[order]
        if len(frames) > 1 and np.median(np.diff(frames)) > 1:
            raise DataError(f"{row['source']}: landmarks every {int(np.median(np.diff(frames)))} frames",
                            "extract with --stride 1 (audio2expr needs every frame)")
        n = int(frames[-1] - frames[0] + 1)
        slot = frames - frames[0]
        found = np.zeros(n, bool)
        found[slot] = True
        filled = np.empty((n, 68, 2), np.float32)
        pick = np.maximum.accumulate(np.where(found, np.arange(n), 0))
        filled[:] = points[np.searchsorted(slot, pick)]
        fps = float(row["fps"])
        try:
            wave = read_audio(row["source"], spec.sample_rate)
        except FxError as exc:
            log.warning("%s: left out (%s)", row["source"], exc.one_line())
            continue
        a0 = int(round(frames[0] / fps * spec.sample_rate))
        wave = wave[a0:a0 + int(round(n / fps * spec.sample_rate))]
        if n < min_frames:
            continue
        shapes = S.normalise(filled)
        neutral = S.neutral_face(shapes[found])
        out.append(ClipTargets(Path(row["source"]).name, fps, log_mel(wave, spec), shapes, found, neutral,
                               S.blink_values(shapes, neutral), envelope(wave, n, fps, spec.sample_rate)))
    if not out:
        raise DataError(f"{root}: no video with landmarks and audio", "extract talking-face videos that keep "
                                                                      "their audio")
    return out
