"""`--faces` rules with the face tracker and the encoder stubbed: the one-face-in-every-frame test, the dropped
row it writes, the crop square (median face side x 1.7, centred, inside the frame), the even output size and the
metadata. The frames are decoded from the real coded video."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from faceexpr_cli.clip import faces
from faceexpr_cli.clip.faces import FaceCut, cut_face_clips, face_counts_reason
from faceexpr_cli.clip.inputs import ClipInput
from faceexpr_cli.clip.job import RecordingWriter
from faceexpr_cli.clip.pipeline import ClipSettings
from faceexpr_cli.clip.windows import Window
from faceexpr_cli.media.clipping import ClipCut


@pytest.mark.parametrize(("counts", "reason"), [
    ([0, 1, 2, 0, 3], "no face on 2 and several faces on 2 of 5 frames"),
    ([1, 0], "no face on 1 of 2 frames"),
    ([2, 1, 1], "several faces on 1 of 3 frames"),
    ([0], "no face on 1 of 1 frames"),
])
def test_face_counts_reason(counts, reason):
    assert face_counts_reason(np.array(counts)) == reason


class FakeTracks:
    def __init__(self, counts, box, n):
        self._counts = np.array(counts)
        self._tracks = [SimpleNamespace(frames=np.arange(n), boxes=np.tile(np.array(box, np.float32), (n, 1)),
                                        scores=np.linspace(0.9, 0.95, n).astype(np.float32))]

    def counts(self):
        return self._counts

    def __iter__(self):
        return iter(self._tracks)


@pytest.fixture
def stubs(monkeypatch):
    """track_faces answers from a script (one entry per window); encode_span records what it gets."""
    import faceexpr_cli.face as face
    import faceexpr_cli.media.clipping as clipping

    script, tracked, encoded = [], [], []

    def track_faces(images, backend, *, fps, options):
        tracked.append((len(images), images[0].shape, backend, fps, options))
        kind, box = script[len(tracked) - 1]
        n = len(images)
        counts = {"one": [1] * n, "none": [1] * (n - 2) + [0, 2], "short": [1] * (n - 1)}[kind]
        return FakeTracks(counts, box, n)

    def encode_span(index, request, span, frames, *, cursor, constant_fps, crf, preset, threads):
        encoded.append(SimpleNamespace(index=index, request=request, frames=frames, cursor=cursor,
                                       constant_fps=constant_fps, crf=crf, preset=preset, threads=threads))
        return ClipCut(index, b"mp4", request[0], request[1], request[0], request[1], len(frames), 25.0,
                       frames[0].shape[1], frames[0].shape[0], cursor is not None, 1.0)

    monkeypatch.setattr(face, "track_faces", track_faces)
    monkeypatch.setattr(clipping, "encode_span", encode_span)
    monkeypatch.setattr(faces, "_backend", lambda name: f"backend:{name}")
    return script, tracked, encoded


def test_one_face_windows_become_crops_the_others_dropped_rows(talk, stubs):
    script, tracked, encoded = stubs
    script += [("one", [60, 20, 100, 60]), ("none", [60, 20, 100, 60]), ("short", [60, 20, 100, 60])]
    item = ClipInput(str(talk.path), talk.path)
    windows = [Window(1.0, 1.4, 1.02, [{"keyword": "smile", "matched_text": "Smile"}]),
               Window(2.0, 2.2, 2.0, [{"keyword": "frown", "matched_text": "frowned"}]),
               Window(3.0, 3.2, 3.0, [], kind="random")]
    s = ClipSettings(keywords=["smile"], faces=True, face_size=97, face_fill="black", crf=21, x264_preset="fast",
                     threads=1, fps=25.0)
    rec = RecordingWriter(frozenset())
    base = {"source": item.source, "transcript": None, "subject": None}
    cuts = list(cut_face_clips(item, windows, s, rec, base))

    # every frame of each window goes to the tracker, detection on each frame, no landmarks
    assert [(n, shape) for n, shape, *_ in tracked] == [(10, (96, 192, 3)), (5, (96, 192, 3)), (5, (96, 192, 3))]
    assert all(b == "backend:dlib" for _, _, b, _, _ in tracked)  # no backend named: dlib
    assert all(o.stride == 1 and o.landmarks is False and fps == 25.0 for *_, fps, o in tracked)

    [cut] = cuts
    assert isinstance(cut, FaceCut) and cut.index == 0 and (cut.start, cut.end) == (1.0, 1.4)
    [enc] = encoded
    assert enc.request == (1.0, 1.4) and len(enc.frames) == 10
    assert all(f.shape == (96, 96, 3) for f in enc.frames)  # 97 rounded down to an even size
    assert (enc.constant_fps, enc.crf, enc.preset, enc.threads) == (25.0, 21, "fast", 1)
    assert enc.cursor is not None  # the coded video has audio
    f = cut.extra["faces"]
    # a 40 px face: the square is 40 * (1 + 2 * 0.35) = 68 px, centred on (80, 40), inside the 192x96 frame
    assert f["crop_boxes"] == [[46.0, 6.0, 114.0, 74.0]] * 10
    assert f["face_boxes"] == [[60.0, 20.0, 100.0, 60.0]] * 10
    # rounded to 3 places as plain numbers (float32 0.9 would be written 0.8999999761581421)
    assert f["scores"][0] == 0.9 and f["scores"][-1] == 0.95 and len(f["scores"]) == 10
    assert (f["size"], f["margin"], f["fill"], f["source_size"]) == (96, 0.35, "black", [192, 96])
    assert f["backend"] == "dlib" and f["rule"] == "exactly one face in every frame"

    rows = [op[1] for op in rec.ops]
    assert rows == [
        {**base, "status": "dropped", "key": f"{item.source}#2.000-faces", "reason": "not_one_face",
         "keyword": "frown", "matched_text": "frowned", "anchor": 2.0, "start": 2.0, "end": 2.2,
         "error": "no face on 1 and several faces on 1 of 5 frames"},
        {**base, "status": "dropped", "key": f"{item.source}#3.000-faces", "reason": "not_one_face",
         "keyword": None, "matched_text": None, "anchor": 3.0, "start": 3.0, "end": 3.2,
         "error": " of 4 frames"},  # the tracker answered for 4 of the 5 frames: not every frame
    ]


def test_a_face_near_the_edge_gets_a_square_shifted_inside_the_frame(talk, stubs):
    script, _, _ = stubs
    script += [("one", [0, 0, 40, 40])]  # 68 px square centred on (20, 20) would start at -14
    item = ClipInput(str(talk.path), talk.path)
    [cut] = cut_face_clips(item, [Window(1.0, 1.2, 1.0)], ClipSettings(random=1, faces=True, face_backend="x",
                                                                      face_size=64, face_fill=None),
                           RecordingWriter(frozenset()), {})
    f = cut.extra["faces"]
    assert f["crop_boxes"][0] == [0.0, 0.0, 68.0, 68.0] and f["size"] == 64 and f["backend"] == "x"
    assert f["fill"] == "blur"  # no fill given: the default


def test_boxes_and_scores_are_written_rounded(talk, stubs):
    """A float32 box rounded to 2 places and turned into JSON must read 60.12, not 60.12000274658203."""
    import json

    script, _, _ = stubs
    script += [("one", [60.123, 20.456, 100.789, 60.111])]
    item = ClipInput(str(talk.path), talk.path)
    [cut] = cut_face_clips(item, [Window(1.0, 1.2, 1.0)], ClipSettings(random=1, faces=True, face_size=64),
                           RecordingWriter(frozenset()), {})
    f = json.loads(json.dumps(cut.extra["faces"]))
    assert f["face_boxes"][0] == [60.12, 20.46, 100.79, 60.11]
    # the crop: side = max(40.666, 39.655) * 1.7 = 69.1322, centre (80.456, 40.2835) -> 45.89, 5.72, 115.02, 74.85
    assert f["crop_boxes"][0] == [45.89, 5.72, 115.02, 74.85]
    assert f["scores"][0] == 0.9 and f["scores"][-1] == 0.95 and all(x == round(x, 3) for x in f["scores"])


def test_the_backend_is_prepared_once_per_name(monkeypatch):
    import faceexpr_cli.face as face

    made = []

    class Backend:
        def __init__(self, name):
            self.name = name

        def prepare(self):
            made.append(self.name)
            return self

    faces._backend.cache_clear()
    monkeypatch.setattr(face, "get_backend", Backend)
    try:
        a = faces._backend("one")
        assert faces._backend("one") is a and faces._backend("two") is not a
        assert made == ["one", "two"]
    finally:
        faces._backend.cache_clear()
