"""Reading one clip's frames: a video (decoded by the media layer, as fx's ``ClipDataset`` does) or a folder of
frame images (MAE-DFER's and DFER-CLIP's preprocessed datasets). Frames come back RGB uint8 with the short side
at ``short_side``, so the clips that ``fx crop`` and ``fx clip`` write are valid inputs as they are.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from threading import Lock

import numpy as np

from faceexpr_cli.dfer.annotations import IMAGE_SUFFIXES
from faceexpr_cli.errors import DataError, FxError, MediaError


def resize_short(frames: np.ndarray, short_side: int) -> np.ndarray:
    import cv2

    h, w = frames.shape[1:3]
    scale = short_side / min(h, w)
    size = (max(short_side, round(w * scale)), max(short_side, round(h * scale)))
    if (size[1], size[0]) == (h, w):
        return frames
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, size, interpolation=interp) for f in frames])


def frame_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{folder}: a folder without frame images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def read_images(files: list[Path]) -> np.ndarray:
    import cv2

    out = []
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            raise MediaError(f, "not a readable image")
        out.append(img[..., ::-1])
    shapes = {im.shape for im in out}
    if len(shapes) != 1:
        raise DataError(f"{files[0].parent}: frames of different sizes {sorted(shapes)[:2]}")
    return np.ascontiguousarray(np.stack(out))


def decode_video(path: Path) -> np.ndarray:
    from faceexpr_cli.media.clip_decode import decode_clip

    clip = decode_clip(path, audio=False, name=str(path))
    if not len(clip.frames):
        raise MediaError(path, "no video frames")
    return clip.frames


SHARD_SEP = "#"  # "<shard.tar>#<key>": one clip of an ``fx clip`` dataset (WebDataset shards)


def shard_clips(root: Path) -> list[Path]:
    """Every sample of an ``fx clip`` dataset folder as a ``<shard>#<key>`` path (empty when it has no shards)."""
    from faceexpr_cli.dataset.sources import iter_shard

    out = []
    for shard in sorted(root.glob("clips-*.tar")):
        out += [Path(f"{shard}{SHARD_SEP}{raw.key}") for raw in iter_shard(shard)]
    return out


def decode_shard_member(path: Path) -> np.ndarray:
    from faceexpr_cli.dataset.sources import iter_shard
    from faceexpr_cli.media.clip_decode import decode_clip

    shard, key = str(path).rsplit(SHARD_SEP, 1)
    for raw in iter_shard(Path(shard)):
        if raw.key == key:
            return decode_clip(raw.video, audio=False, name=f"{shard}:{key}").frames
    raise DataError(f"{shard}: no sample '{key}'")


class ClipReader:
    """Frames of a clip at ``short_side``, with a small in-memory cache (decoded clips are reused every epoch)."""

    def __init__(self, short_side: int, cache: int = 256):
        self.short_side = short_side
        self.capacity = cache
        self._cache: OrderedDict[Path, np.ndarray] = OrderedDict()
        self._lock = Lock()

    def _load(self, path: Path) -> np.ndarray:
        if SHARD_SEP in path.name and not path.exists():
            frames = decode_shard_member(path)
        else:
            frames = read_images(frame_files(path)) if path.is_dir() else decode_video(path)
        return resize_short(frames, self.short_side)

    def frames(self, path: Path) -> np.ndarray:
        """All frames (T, H, W, 3) uint8; a clip that cannot be read raises one ``FxError`` naming it."""
        with self._lock:
            if path in self._cache:
                self._cache.move_to_end(path)
                return self._cache[path]
        try:
            frames = self._load(path)
        except FxError:
            raise
        except (OSError, ValueError) as exc:
            raise MediaError(path, f"cannot read frames ({exc})") from exc
        if self.capacity:
            with self._lock:
                self._cache[path] = frames
                while len(self._cache) > self.capacity:
                    self._cache.popitem(last=False)
        return frames
