"""The landmarks engine and fx swap's behaviour: image driving, face-less frames, face choice, bad input, the
graph's pieces and the shared metrics."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from faceexpr_cli.cli.app import main


def _fx(*args):
    return subprocess.run([sys.executable, "-m", "faceexpr_cli", *map(str, args)], capture_output=True, text=True)


# -- the graph ---------------------------------------------------------------------------------------------------
def test_identity_affines_reproduce_the_source_and_the_blend_is_exact_at_mask_0_and_1():
    from faceexpr_cli.swap.graph import piecewise_affine, pyramid_blend

    g = torch.Generator().manual_seed(0)
    img = torch.rand(1, 3, 32, 48, generator=g)
    tri = torch.randint(0, 5, (1, 1, 32, 48), generator=g).float()
    ident = torch.tensor([1.0, 0, 0, 0, 1.0, 0]).repeat(1, 5, 1)
    assert torch.allclose(piecewise_affine(img, tri, ident), img, atol=1e-5)
    flip = ident.clone()
    flip[0, 3] = torch.tensor([-1.0, 0, 0, 0, 1.0, 0])  # triangle 3 mirrors x
    out = piecewise_affine(img, tri, flip)
    sel = (tri[0, 0] == 3)
    assert torch.allclose(out[..., sel], img.flip(-1)[..., sel], atol=1e-5)
    assert torch.allclose(out[..., ~sel], img[..., ~sel], atol=1e-5)
    fg, bg = torch.rand(1, 3, 32, 32, generator=g), torch.rand(1, 3, 32, 32, generator=g)
    ones, zeros = torch.ones(1, 1, 32, 32), torch.zeros(1, 1, 32, 32)
    assert torch.allclose(pyramid_blend(fg, bg, ones, 3), fg, atol=1e-5)
    assert torch.allclose(pyramid_blend(fg, bg, zeros, 3), bg, atol=1e-5)


def test_triangle_affines_map_each_target_triangle_onto_its_source():
    from faceexpr_cli.swap.mesh import triangle_affines, triangulate

    rng = np.random.default_rng(1)
    target = rng.uniform(-0.8, 0.8, (20, 2))
    source = target * 0.7 + 0.1 + rng.normal(0, 0.02, (20, 2))
    tris = triangulate(target)
    m = triangle_affines(tris, target, source)
    assert m.shape == (len(tris) + 1, 6)
    for k, tri in enumerate(tris):
        t = target[tri]
        mapped = np.stack([m[k, 0] * t[:, 0] + m[k, 1] * t[:, 1] + m[k, 2], m[k, 3] * t[:, 0] + m[k, 4] * t[:, 1]
                           + m[k, 5]], 1)
        assert np.abs(mapped - source[tri]).max() < 1e-4


# -- metrics ------------------------------------------------------------------------------------------------------
def test_metrics_take_pose_out_and_see_the_mouth(face_points):
    from faceexpr_cli.metrics import expression_error, head_pose, mouth_opening, pose_error

    p = face_points
    a = np.deg2rad(12)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    moved = (p - p.mean(0)) @ rot.T * 1.7 + [40, -10]
    assert expression_error(moved, p) < 1e-4  # pose alone is no expression change
    assert abs(head_pose(moved)[2] - head_pose(p)[2] - 12) < 0.5 and pose_error(moved, p) > 10
    opened = p.copy()
    opened[[65, 66, 67, 56, 57, 58], 1] += 12  # jaw drops: lower lip moves down
    assert mouth_opening(opened) > mouth_opening(p) + 0.1
    iod = np.linalg.norm(p[36:42].mean(0) - p[42:48].mean(0))
    # the rigid points did not move: 6 mouth points (weight 2 of a total 100) moved 12 px
    assert abs(expression_error(opened, p) - 6 * 2 * 12 / iod / 100) < 1e-3


@pytest.fixture(scope="module")
def face_points(hopper_png):
    from faceexpr_cli.face import get_backend
    from faceexpr_cli.media import read_image

    face = get_backend("dlib").analyze(read_image(hopper_png), landmarks=True)[0]
    return face.landmarks68.astype(np.float64)


# -- the command --------------------------------------------------------------------------------------------------
def test_driving_image_gives_a_png_with_the_face_changed_and_the_rest_kept(hopper_png, sample_video, tmp_path,
                                                                          capsys):
    from faceexpr_cli.media import read_frames, read_image, write_image

    drv = write_image(tmp_path / "drv.png", read_frames(sample_video.path, max_frames=1)[0])
    out = tmp_path / "r.png"
    assert main(["swap", "-s", str(hopper_png), "-d", str(drv), "-o", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["frames"] == 1 and data["faces_swapped"] == 1 and not data["audio"]
    a, b = read_image(drv).astype(float), read_image(out).astype(float)
    x0, y0, x1, y1 = sample_video.actors[0].face_box[0]
    inner = (slice(int(y0 + 0.3 * (y1 - y0)), int(y1 - 0.2 * (y1 - y0))), slice(int(x0 + 0.2 * (x1 - x0)),
                                                                               int(x1 - 0.2 * (x1 - x0))))
    assert np.abs(a[inner] - b[inner]).mean() > 8  # the face is another one
    assert np.abs(a[:30] - b[:30]).max() == 0 and np.abs(a[:, :40] - b[:, :40]).max() == 0  # background untouched
    side = tmp_path / "sbs.png"
    assert main(["swap", "-s", str(hopper_png), "-d", str(drv), "-o", str(side), "--side-by-side"]) == 0
    sbs = read_image(side)
    assert sbs.shape[0] == a.shape[0] and sbs.shape[1] > 2 * a.shape[1]
    assert np.array_equal(sbs[:, -a.shape[1]:], b.astype(np.uint8))  # source | driving | result: result last


def test_faceless_frames_pass_through_and_are_counted(hopper_png, sample_video, tmp_path, capsys):
    from faceexpr_cli.media import VideoWriter, read_frames

    real = read_frames(sample_video.path, max_frames=6)
    blank = np.full_like(real[0], 90)
    frames = [blank, blank, *real[:4], blank]
    drv = tmp_path / "gaps.mp4"
    with VideoWriter(drv, 25.0, audio=sample_video.path, crf=12) as w:
        for f in frames:
            w.write(f)
    out = tmp_path / "r.mp4"
    assert main(["swap", "-s", str(hopper_png), "-d", str(drv), "-o", str(out), "--json", "--batch", "3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["frames"], data["faces_swapped"], data["frames_without_face"]) == (7, 4, 3) and data["audio"]
    got, src = read_frames(out).astype(float), read_frames(drv).astype(float)
    assert np.abs(got[[0, 1, 6]] - src[[0, 1, 6]]).max() < 3
    assert np.abs(got[2:6] - src[2:6]).mean() > 0.5

    none = tmp_path / "none.mp4"
    with VideoWriter(none, 25.0, crf=12) as w:
        for _ in range(3):
            w.write(blank)
    assert main(["swap", "-s", str(hopper_png), "-d", str(none), "-o", str(tmp_path / "n.mp4"), "--json"]) == 0
    said = capsys.readouterr()
    assert json.loads(said.out)["frames_without_face"] == 3
    assert "no chosen face in any" in said.err


def test_face_choice_on_two_people(two_face_video, hopper_png, astronaut_png, tmp_path, capsys):
    from faceexpr_cli.media import read_frames

    drv = read_frames(two_face_video.path, max_frames=3).astype(float)

    def face_diff(diff, actor):  # mean change inside one person's face box (codec noise alone: ~1-2 levels)
        vals = []
        for t in range(len(diff)):
            x0, y0, x1, y1 = (int(v) for v in two_face_video.actors[actor].face_box[t])
            vals.append(diff[t, y0:y1, x0:x1].mean())
        return float(np.mean(vals))

    def run(choice, source=hopper_png):
        out = tmp_path / f"r_{len(list(tmp_path.iterdir()))}.mp4"
        assert main(["swap", "-s", str(source), "-d", str(two_face_video.path), "-o", str(out), "--max-frames", "3",
                     "--driving-face", choice, "--json"]) == 0
        diff = np.abs(read_frames(out).astype(float) - drv)
        return json.loads(capsys.readouterr().out), face_diff(diff, 0), face_diff(diff, 1)

    data, left, right = run("all")
    assert data["faces_swapped"] == 6 and left > 6 and right > 6
    data, left, right = run("1")  # the second face from the left (Grace Hopper)
    assert data["faces_swapped"] == 3 and left < 3 < 6 < right
    data, left, right = run(str(astronaut_png), source=hopper_png)  # the face matching the reference: the left
    assert data["faces_swapped"] == 3 and right < 3 < 6 < left


def test_bad_input_is_one_line(hopper_png, sample_video, tmp_path, capsys):
    from faceexpr_cli.media import write_image
    from faceexpr_cli.samples import load_portrait

    blank = write_image(tmp_path / "blank.png", np.full((200, 200, 3), 128, np.uint8))
    proc = _fx("swap", "-s", blank, "-d", sample_video.path, "-o", tmp_path / "r.mp4")
    assert proc.returncode == 1 and "no face found in the source" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "r.mp4").exists()
    for bad in (["--colour", "nan"], ["--mouth", "teeth"], ["--driving-face", "-2"], ["--backend", "tf"]):
        assert main(["swap", "-s", str(hopper_png), "-d", str(sample_video.path), "-o", str(tmp_path / "r.mp4"),
                     *bad]) == 2, bad
        assert not (tmp_path / "r.mp4").exists()
    # several faces in the source and no choice: the largest, said so
    a, _ = load_portrait("astronaut")
    h, _ = load_portrait("grace_hopper")
    two = np.zeros((600, 1024, 3), np.uint8)
    two[:512, :512] = a
    two[:, 512:] = h[:, :512]
    group = write_image(tmp_path / "group.png", two)
    drv = tmp_path / "d.png"
    from faceexpr_cli.media import read_frames

    write_image(drv, read_frames(sample_video.path, max_frames=1)[0])
    capsys.readouterr()
    assert main(["swap", "-s", str(group), "-d", str(drv), "-o", str(tmp_path / "g.png")]) == 0
    assert "using the largest" in capsys.readouterr().err


def test_a_dense_mesh_from_the_backend_is_used_and_warps_like_the_68(hopper_png, sample_video, tmp_path):
    """A backend that also gives a dense mesh (as MediaPipe's 468 points): here the 68 points plus the midpoints
    of their Delaunay edges, a refinement of the same geometry, so the dense warp must match the 68-point one."""
    from faceexpr_cli.face import BACKENDS
    from faceexpr_cli.media import read_frames, read_image, write_image
    from faceexpr_cli.swap.mesh import triangulate
    from faceexpr_cli.swap.pipeline import SwapSettings, swap

    dlib_cls = BACKENDS.get("dlib")

    class DenseMesh(dlib_cls):
        edges: list = []  # one topology for every face, as a real mesh has

        def _landmarks(self, image, faces):
            faces = super()._landmarks(image, faces)
            for f in faces:
                p = f.landmarks68.astype(np.float64)
                if not self.edges:
                    self.edges.extend(sorted({tuple(sorted((t[a], t[b]))) for t in triangulate(p)
                                              for a, b in ((0, 1), (1, 2), (0, 2))}))
                f.extra["mesh468"] = np.concatenate([p, [(p[a] + p[b]) / 2 for a, b in self.edges]])
            return faces

    drv = write_image(tmp_path / "d.png", read_frames(sample_video.path, max_frames=1)[0])
    dense = swap(hopper_png, drv, tmp_path / "dense.png", SwapSettings(), backend=DenseMesh())
    plain = swap(hopper_png, drv, tmp_path / "plain.png", SwapSettings())
    assert dense.details["mesh"] == "dense" and plain.details["mesh"] == "68"
    assert dense.details["triangles"] > 2 * plain.details["triangles"]
    a, b = read_image(tmp_path / "dense.png").astype(float), read_image(tmp_path / "plain.png").astype(float)
    d = read_image(drv).astype(float)
    changed = np.abs(b - d).mean(2) > 20
    assert changed.sum() > 1500  # the swap changed the face ...
    assert np.abs(a - b)[changed].mean() < 4  # ... and the dense mesh gives the same picture


def test_onnx_backend_matches_torch(hopper_png, sample_video, tmp_path):
    """--backend onnx: the graph exported through fx's exporter (parity-checked) gives the torch picture."""
    from faceexpr_cli.media import read_frames, read_image, write_image
    from faceexpr_cli.swap.engines import SwapOptions
    from faceexpr_cli.swap.pipeline import SwapSettings, swap

    drv = write_image(tmp_path / "d.png", read_frames(sample_video.path, max_frames=1)[0])
    t = swap(hopper_png, drv, tmp_path / "t.png", SwapSettings(options=SwapOptions(backend="torch")))
    o = swap(hopper_png, drv, tmp_path / "o.png", SwapSettings(options=SwapOptions(backend="onnx", extra={
        "threads": 1})))
    assert o.details["providers"][0] == "CPUExecutionProvider" and t.details["backend"] == "torch"
    a, b = read_image(tmp_path / "t.png").astype(float), read_image(tmp_path / "o.png").astype(float)
    assert np.abs(a - read_image(drv).astype(float)).mean() > 1  # it swapped
    assert np.abs(a - b).max() <= 2


def test_eval_refuses_what_it_cannot_compare(hopper_png, sample_video, tmp_path):
    from faceexpr_cli.media import VideoWriter, read_frames

    wide = tmp_path / "wide.mp4"  # a --side-by-side result: not the driver's size
    with VideoWriter(wide, 25.0) as w:
        for f in read_frames(sample_video.path, max_frames=2):
            w.write(np.concatenate([f, f], axis=1))
    assert main(["swap", "eval", str(wide), "-s", str(hopper_png), "-d", str(sample_video.path), "-o",
                 str(tmp_path / "e")]) == 2
    assert main(["swap", "eval", str(tmp_path / "missing.mp4"), "-s", str(hopper_png), "-d",
                 str(sample_video.path), "-o", str(tmp_path / "e")]) == 2
    assert not (tmp_path / "e" / "metrics.json").exists()
