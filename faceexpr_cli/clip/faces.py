"""``fx clip --faces``: keep only windows where every frame shows exactly one face (the seed's rule), and write
the face-cropped clip with its crop boxes.

Frames come from the same one-pass span decoder as plain cuts; the face tracker from ``faceexpr_cli.face`` runs
on each window with detection on every frame (``stride=1``, the rule's "every frame"). The crop is a square of
fixed side (the window's median face size plus a margin) following the smoothed face box, shifted inside the
frame where it would leave it (no letterbox at the edge of 16:9 footage), resized to ``face_size`` with the
aspect kept (the seed stretched the box instead). Only a square larger than the frame's short side still
reaches outside; that part is filled by ``face_fill`` (``crop.geometry.FILLS``, blur by default). The backend
is loaded once per run, not once per clip (a seed bug).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from faceexpr_cli.dataset import format as fmt
from faceexpr_cli.media.clipping import ClipCut

if TYPE_CHECKING:
    from faceexpr_cli.clip.inputs import ClipInput
    from faceexpr_cli.clip.pipeline import ClipSettings
    from faceexpr_cli.clip.windows import Window
    from faceexpr_cli.dataset.writer import DatasetWriter

NOT_ONE_FACE = "not_one_face"
FACE_MARGIN = 0.35  # crop side = face size * (1 + 2 * margin)


@dataclass
class FaceCut(ClipCut):
    extra: dict[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=4)
def _backend(name: str):
    from faceexpr_cli.face import get_backend

    return get_backend(name).prepare()


def face_counts_reason(counts: np.ndarray) -> str:
    zero, many = int((counts == 0).sum()), int((counts > 1).sum())
    parts = ([f"no face on {zero}"] if zero else []) + ([f"several faces on {many}"] if many else [])
    return f"{' and '.join(parts)} of {len(counts)} frames"


def cut_face_clips(item: ClipInput, windows: list[Window], s: ClipSettings, writer: DatasetWriter,
                   base: dict) -> Iterator[FaceCut]:
    """Yield face-cropped clips for the windows that pass; record the others as dropped rows."""
    from faceexpr_cli.crop.geometry import DEFAULT_FILL, crop_square, follow_crops
    from faceexpr_cli.face import TrackerOptions, track_faces
    from faceexpr_cli.media.audio import AudioCursor
    from faceexpr_cli.media.clipping import encode_span, grid_fps, iter_span_frames
    from faceexpr_cli.media.reader import _to_rgb

    name = s.face_backend or "dlib"
    backend = _backend(name)
    fps = grid_fps(item.video)  # the tracker's smoothing rate only
    cursor = AudioCursor(item.video)
    has_audio = cursor.stream is not None
    size = s.face_size - s.face_size % 2
    fill = s.face_fill or DEFAULT_FILL
    try:
        for span in iter_span_frames(item.video, [(w.start, w.end) for w in windows], threads=s.threads):
            w = windows[span.index]
            images = [_to_rgb(f, None, int(getattr(f, "rotation", 0) or 0) % 360) for f in span.frames]
            tracks = track_faces(images, backend, fps=fps, options=TrackerOptions(stride=1, landmarks=False))
            counts = tracks.counts()
            if len(counts) != len(images) or not (counts == 1).all():
                writer.add_row({**base, "status": fmt.DROPPED, "key": f"{item.source}#{w.start:.3f}-faces",
                                "reason": NOT_ONE_FACE, "keyword": w.hits[0]["keyword"] if w.hits else None,
                                "matched_text": w.hits[0]["matched_text"] if w.hits else None,
                                "anchor": w.anchor, "start": w.start, "end": w.end,
                                "error": face_counts_reason(counts)})
                continue
            boxes = np.zeros((len(images), 4), np.float32)
            scores = np.zeros(len(images), np.float32)
            for t in tracks:
                boxes[t.frames] = t.boxes
                scores[t.frames] = t.scores
            crops = follow_crops(boxes, FACE_MARGIN, frame=(images[0].shape[1], images[0].shape[0]))
            frames = [crop_square(img, box, size, fill=fill) for img, box in zip(images, crops, strict=True)]
            cut = encode_span(span.index, (w.start, w.end), span, frames, cursor=cursor if has_audio else None,
                              constant_fps=s.fps, crf=s.crf, preset=s.x264_preset, threads=s.threads)
            extra = {"faces": {
                "backend": name, "rule": "exactly one face in every frame", "size": size, "margin": FACE_MARGIN,
                "fill": fill, "source_size": [images[0].shape[1], images[0].shape[0]],
                # rounded in float64: float32 values rounded to 2 places still print as 60.12000274658203
                "crop_boxes": np.round(crops.astype(np.float64), 2).tolist(),
                "face_boxes": np.round(boxes.astype(np.float64), 2).tolist(),
                "scores": np.round(scores.astype(np.float64), 3).tolist()}}
            yield FaceCut(**{f: getattr(cut, f) for f in ClipCut.__dataclass_fields__}, extra=extra)
    finally:
        cursor.close()
