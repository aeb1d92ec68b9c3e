"""The mediapipe backend's boxes against dlib's: fits the constants of ``face/mediapipe/boxes.py`` and checks them.

    .venv/bin/python benchmarks/face_boxes.py [--step 2]

Fit sets (no test uses them): scikit-image's 100 LFW faces (25x25 grey, upscaled to 150 px and padded as
benchmarks/face_recall.py does) and three synthetic talking heads (astronaut seed 5; Grace Hopper seed 7, 480x360,
half the frame high; both people seed 9, 640x360). Check sets: the two sample videos the tests use (the 4 s
astronaut talking head and the 3 s two-person 640x360 video). On every ``--step``-th frame both backends run;
each mediapipe face is paired with the dlib face it overlaps most.

Printed: the fitted constants (centre: least squares; size: geometric mean of dlib's size over ours, each fit set
weighing the same), and for each set and box kind (BlazeFace's own box, the calibrated detector box, the box from
the mesh's head pose) the centre distance over dlib's face size (median, max) and our size over dlib's (geometric
mean, min, max), plus dlib's own box change between consecutive checked frames of the same face.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("FX_HOME", str(Path(tempfile.gettempdir()) / "fx-bench-home"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

FIT_VIDEOS = {
    "astronaut seed 5": {"seconds": 4.0, "seed": 5},
    "grace_hopper seed 7": {"portraits": ("grace_hopper",), "seconds": 4.0, "seed": 7, "width": 480, "height": 360,
                            "face_fraction": 0.5},
    "both seed 9": {"portraits": ("grace_hopper", "astronaut"), "seconds": 3.0, "width": 640, "height": 360,
                    "seed": 9, "face_fraction": 0.3},
}
CHECK_VIDEOS = {  # tests/conftest.py's sample_video and two_face_video
    "sample talking head": {"seconds": 4.0},
    "sample two faces": {"portraits": ("astronaut", "grace_hopper"), "seconds": 3.0, "width": 640, "height": 360},
}


def _centre_size(b) -> tuple[np.ndarray, float]:
    b = np.asarray(b, dtype=np.float64)
    return (b[:2] + b[2:]) / 2, float(np.sqrt(max(b[2] - b[0], 0) * max(b[3] - b[1], 0)))


def pairs(images, mp, dlib) -> list[dict]:
    """Per matched face: BlazeFace's raw box, the backend's detector box, its mesh box, the pose, dlib's box."""
    from faceexpr_cli.face.mediapipe.boxes import detector_box
    from faceexpr_cli.face.types import iou_matrix

    out = []
    for img in images:
        ref = dlib.detect(img, keypoints=False)
        faces = mp.detect(img, keypoints=False)
        if not ref or not faces:
            continue
        det = [f.bbox.copy() for f in faces]
        mp.landmarks(img, faces)
        iou = iou_matrix(np.stack(det), np.stack([g.bbox for g in ref]))
        for i, f in enumerate(faces):
            j = int(iou[i].argmax())
            if iou[i, j] >= 0.2:
                out.append({"raw": detector_box(det[i]), "det": det[i], "mesh": f.bbox.copy(),
                            "pose": f.extra["head_pose"], "dlib": ref[j].bbox.copy(),
                            "track": int(f.center[0] > img.shape[1] / 2)})  # the sample people stand apart
    return out


def fit(sets: dict[str, list[dict]]) -> dict[str, np.ndarray | float]:
    from faceexpr_cli.face.mediapipe.pose import _FLIP

    shift, log_k, rows, rhs, log_side = [], [], [], [], []
    for rs in sets.values():
        sh, lk, ls = [], [], []
        for r in rs:
            (c, s), (c2, s2) = _centre_size(r["raw"]), _centre_size(r["dlib"])
            sh.append((c2 - c) / s)
            lk.append(np.log(s2 / s))
            p = r["pose"]
            rows.append((_FLIP @ (p.scale * p.rotation))[:2])
            rhs.append(c2 - p.translation[:2])
            ls.append(np.log(s2 / p.scale))
        shift.append(np.mean(sh, axis=0))
        log_k.append(np.mean(lk))
        log_side.append(np.mean(ls))
    centre, *_ = np.linalg.lstsq(np.concatenate(rows), np.concatenate(rhs), rcond=None)
    return {"DET_SHIFT": np.mean(shift, axis=0), "DET_SCALE": float(np.exp(np.mean(log_k))),
            "POSE_CENTRE": centre, "POSE_SIDE": float(np.exp(np.mean(log_side)))}


def report(name: str, rs: list[dict]) -> None:
    for kind in ("raw", "det", "mesh"):
        c, k = [], []
        for r in rs:
            (c1, s1), (c2, s2) = _centre_size(r[kind]), _centre_size(r["dlib"])
            c.append(np.linalg.norm(c1 - c2) / s2)
            k.append(s1 / s2)
        print(f"  {name:<22}{kind:<6}{len(rs):>5}{np.median(c):>9.3f}{max(c):>7.3f}"
              f"{np.exp(np.mean(np.log(k))):>9.3f}{min(k):>7.3f}{max(k):>7.3f}")


def jitter(rs: list[dict], kind: str) -> float:
    """The largest edge change between consecutive checked frames of one face, over dlib's face size."""
    worst = 0.0
    for track in {r["track"] for r in rs}:
        t = [r for r in rs if r["track"] == track]
        for a, b in zip(t, t[1:], strict=False):
            worst = max(worst, float(np.abs(b[kind] - a[kind]).max()) / _centre_size(a["dlib"])[1])
    return worst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--step", type=int, default=2, help="check every N-th frame of each video")
    args = ap.parse_args()
    import cv2
    import torch
    from face_recall import _weights
    from skimage import data

    from faceexpr_cli.face import get_backend
    from faceexpr_cli.face.mediapipe import boxes
    from faceexpr_cli.media import iter_frames
    from faceexpr_cli.samples import make_talking_head

    torch.set_num_threads(1)
    _weights()
    mp = get_backend("mediapipe", runtime="onnx").prepare()
    dlib = get_backend("dlib")
    lfw = []
    for g in data.lfw_subset()[:100]:
        img = cv2.resize((g * 255).astype(np.uint8), (150, 150), interpolation=cv2.INTER_CUBIC)
        img = cv2.copyMakeBorder(img, 75, 75, 75, 75, cv2.BORDER_REPLICATE)
        lfw.append(np.repeat(img[..., None], 3, axis=2))
    sets, checks = {"lfw": pairs(lfw, mp, dlib)}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for group, videos in ((sets, FIT_VIDEOS), (checks, CHECK_VIDEOS)):
            for name, kw in videos.items():
                video = make_talking_head(Path(tmp) / f"{len(group)}.mp4", **kw)
                frames = [f.image for i, f in enumerate(iter_frames(video.path)) if i % args.step == 0]
                group[name] = pairs(frames, mp, dlib)
    fitted = fit(sets)
    print("fitted constants (faceexpr_cli/face/mediapipe/boxes.py holds):")
    for key, value in fitted.items():
        print(f"  {key:<14}{np.round(value, 4)!s:<30}{np.round(getattr(boxes, key), 4)}")
    print(f"\n  {'set':<22}{'box':<6}{'faces':>5}{'centre':>9}{'max':>7}{'size':>9}{'min':>7}{'max':>7}")
    for name, rs in {**sets, **checks}.items():
        report(name, rs)
    print("\nlargest box change between consecutive checked frames, over dlib's face size:")
    for name, rs in checks.items():
        print(f"  {name:<22}dlib {jitter(rs, 'dlib'):.3f}  detector {jitter(rs, 'det'):.3f}  "
              f"mesh {jitter(rs, 'mesh'):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
