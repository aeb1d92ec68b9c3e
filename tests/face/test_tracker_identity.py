"""The tracker's "auto" identity mode: embeddings only where association needs them."""

from __future__ import annotations

import numpy as np

from faceexpr_cli.face import Face, FaceBackend, FaceTracker


class Scripted(FaceBackend):
    """A backend that returns the faces a script says, with a fixed identity per face name."""

    name = "scripted"
    embedding_dim = 4

    def __init__(self, script):
        super().__init__()
        self.script = script  # frame index -> list of (name, box)
        self.frame = 0
        self.embedded = 0

    def _detect(self, image, *, keypoints):
        return [Face(box, 1.0, extra={"who": who}) for who, box in self.script(self.frame)]

    def _embed(self, image, faces):
        for f in faces:
            f.embedding = np.eye(4, dtype=np.float32)["ab".index(f.extra["who"])]
        self.embedded += len(faces)
        return faces


def _run(embed):
    """Two faces approach, overlap at frames 20-30, and go back where they came from."""
    def pos(i):
        d = 4.0 * min(i, 25) - 4.0 * max(0, i - 25)
        return d

    def script(i):
        d = pos(i)
        return [("a", [40 + d, 40, 100 + d, 100]), ("b", [240 - d, 44, 300 - d, 104])]

    backend = Scripted(script)
    tracker = FaceTracker(backend, fps=25.0, stride=1, flow=False, cut_threshold=None, embed=embed)
    for i in range(50):
        backend.frame = i
        tracker.update(np.zeros((160, 340, 3), np.uint8))
    return tracker.finish(), backend


def test_auto_embeds_only_new_and_contested_faces_and_keeps_identities():
    tracks, backend = _run("auto")
    assert len(tracks) == 2
    for t in tracks:
        c = (t.raw_boxes[:, 0] + t.raw_boxes[:, 2]) / 2
        assert abs(c[0] - c[-1]) < 5  # each face ends where it started: no swap at the turn
    assert 2 <= backend.embedded < 60  # the two new faces plus the contested frames, not all 100 detections
    every, backend_all = _run(True)
    assert backend_all.embedded == 100
    none, _ = _run(False)
    assert any(abs((t.raw_boxes[0, 0] + t.raw_boxes[0, 2]) / 2 - (t.raw_boxes[-1, 0] + t.raw_boxes[-1, 2]) / 2) > 100
               for t in none)  # motion alone swaps them: why the identity matters
