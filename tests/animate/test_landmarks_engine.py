"""Done-when: the landmarks engine makes the portrait follow the sample driver and keeps its identity."""

from __future__ import annotations

import json

import numpy as np
import pytest

FRAMES = 40


@pytest.fixture(scope="module")
def animated(tmp_path_factory, sample_video, portrait_png):
    from faceexpr_cli.animate.pipeline import AnimateOptions, animate

    out = tmp_path_factory.mktemp("anim") / "result.mp4"
    result = animate(portrait_png, sample_video.path, out, AnimateOptions(max_frames=FRAMES))
    return result


def test_output_video_decodes_with_audio(animated):
    from faceexpr_cli.media import probe

    info = probe(animated.out)
    assert info.frame_count == FRAMES
    assert (info.width, info.height) == (512, 512)  # the full portrait, background held still
    assert info.has_audio
    assert animated.audio and animated.engine == "landmarks"


def test_landmark_motion_follows_driver_and_identity_is_kept(animated, sample_video, portrait_png, face_backend):
    from faceexpr_cli.animate.landmarks import follow_landmarks
    from faceexpr_cli.animate.retarget import landmark_targets
    from faceexpr_cli.media import read_frames, read_image

    out_frames = read_frames(animated.out)
    drv_frames = read_frames(sample_video.path, max_frames=FRAMES)
    source = read_image(portrait_png)
    src_face = face_backend.analyze(source, landmarks=True, embed=True)[0]
    drv = follow_landmarks(face_backend, iter(drv_frames), "driving").points
    got = follow_landmarks(face_backend, iter(out_frames), "result").points
    # The driver's displacements, carried into the source's frame (rotation + scale), are what the output
    # landmarks should show.
    want = landmark_targets(src_face.landmarks68, drv, drv[0])
    d_want = want - want[:1]
    d_got = got - got[:1]
    akd = float(np.linalg.norm(d_got - d_want, axis=-1).mean())
    motion = float(np.linalg.norm(d_want, axis=-1).mean())  # the AKD a frozen output would score
    assert motion > 4.0, "the sample driver must move enough for the test to mean something"
    assert akd < 0.25 * motion, f"AKD of displacements {akd:.2f} px vs driver motion {motion:.2f} px"
    # Identity: dlib embedding distance to the source stays well under dlib's same-person threshold (0.6).
    dists = []
    for i in (0, FRAMES // 2, FRAMES - 1):
        # the most confident face: dlib also fires weakly (score ~0.02) on the suit's round mission patch
        face = max(face_backend.analyze(out_frames[i], landmarks=True, embed=True), key=lambda f: f.score)
        dists.append(float(np.linalg.norm(face.embedding - src_face.embedding)))
    assert max(dists) < 0.35, json.dumps(dists)
    # The background far from the face does not move.
    corner = np.abs(out_frames[:, :64, :64].astype(int) - source[None, :64, :64].astype(int)).mean()
    assert corner < 3.0
