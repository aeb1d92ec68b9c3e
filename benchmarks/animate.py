"""Benchmark `fx animate`: ms per frame at 256x256, torch eager vs ONNX Runtime (CPU), side by side.

    .venv/bin/python benchmarks/animate.py [--repeats 5] [--batch 1 4] [--threads 0] [--no-e2e]
        [--engines fomm landmarks liveportrait] [--warmup 2] [--cache DIR]

Rows:
- fomm vox-256 (random init, the published model size): key points of one driving frame + one generator call;
- liveportrait (random init, the release's sizes: 256 px crops in, 512 px out): each part per call (appearance
  features once per source; motion extractor, stitching, warping and SPADE decoder per frame) and a frame end to end
  (motion + keypoint math + stitching + warp + decode), torch eager vs ORT CPU; with a CUDA GPU also torch on the
  GPU, streaming (batch 1) and batched frames/s;
- landmarks: the spline fit (beside the graph) + the TPS warp graph; and the face layer's landmarks per frame;
The ONNX graphs come from fx's one export path (``faceexpr_cli.onnx``: dynamo exporter, onnxslim, parity against
PyTorch) and run through its session factory, exactly as ``fx animate --backend onnx`` runs them; one dynamic-batch
export serves every batch size.
- end to end (torch, CPU): `animate()` on the sample talking head with the landmarks engine, decode and encode
  included.
Figures are medians over ``--repeats`` runs after two warm-up runs. On a shared machine they move with the load:
read them side by side, not as absolutes.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

WARMUP = [2]  # runs before timing (--warmup)


def _median_ms(fn, repeats: int) -> float:
    for _ in range(WARMUP[0]):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def _face_crop(name: str) -> np.ndarray:
    """A portrait cut to the vox-style 256x256 face framing (fx animate --crop auto's rule)."""
    from faceexpr_cli.animate.crop import make_crop
    from faceexpr_cli.samples import load_portrait

    image, p = load_portrait(name)
    return make_crop(np.array(p.face_box, float), 256).apply(image)


def _onnx_parts(card_name: str, model, tmp: Path, threads: int) -> tuple[dict, float]:
    """The model's graphs through fx's one export path (parity-checked, cached under ``tmp``), opened by the session
    factory; returns the predictors by part name and the export's seconds (paid once per card + weights)."""
    from faceexpr_cli.config.cards import load_card
    from faceexpr_cli.onnx.cache import cached_predictors
    from faceexpr_cli.onnx.export import ExportOptions, ModelSource
    from faceexpr_cli.onnx.session import SessionConfig

    t = time.perf_counter()
    parts, _ = cached_predictors(ModelSource(load_card(card_name), model=model), SessionConfig(intra_op_threads=threads),
                                 ExportOptions(latency_runs=1, sample_check=False), root=tmp / "onnx-cache")
    return parts, time.perf_counter() - t


def bench_fomm(batches: list[int], repeats: int, tmp: Path, threads: int) -> list[dict]:
    from faceexpr_cli.builders import build_model

    model = build_model("fomm-vox256").eval()
    parts, export_s = _onnx_parts("fomm-vox256", model, tmp, threads)
    print(f"fomm vox-256: export + parity checks {export_s:.1f} s (once; cached by card + weights)")
    return [_fomm_row(model, parts, batch, repeats) for batch in batches]


def _fomm_row(model, parts: dict, batch: int, repeats: int) -> dict:
    from faceexpr_cli.animate.engines.fomm import GEN_INPUTS, KP_INPUTS

    g = torch.Generator().manual_seed(0)
    src = torch.rand(batch, 3, 256, 256, generator=g)
    drv = torch.rand(batch, 3, 256, 256, generator=g)
    with torch.no_grad():
        kp_s = model.kp_detector(src)

    def torch_frame():
        with torch.no_grad():
            kp_d = model.kp_detector(drv)
            model.generator(src, *kp_d, *kp_s)

    s_np, d_np = src.numpy(), drv.numpy()
    kps = [k.numpy() for k in kp_s]

    def onnx_frame():
        kp = parts["kp_detector"].run({KP_INPUTS[0]: d_np})
        parts["generator"].run(dict(zip(GEN_INPUTS, (s_np, *kp.values(), *kps), strict=True)))

    return {"model": f"fomm vox-256, batch {batch}", "torch": _median_ms(torch_frame, repeats) / batch,
            "onnx": _median_ms(onnx_frame, repeats) / batch}


def bench_landmarks(batches: list[int], repeats: int, tmp: Path, threads: int) -> list[dict]:
    from faceexpr_cli.animate.landmarks import follow_landmarks
    from faceexpr_cli.animate.retarget import FaceFrame
    from faceexpr_cli.builders import build_model
    from faceexpr_cli.face import get_backend
    from faceexpr_cli.media import read_frames
    from faceexpr_cli.samples import make_talking_head

    image = _face_crop("astronaut")
    backend = get_backend("dlib")
    src_pts = backend.analyze(image, landmarks=True)[0].landmarks68
    frame = FaceFrame.around(src_pts)
    warp = build_model("animate-landmarks").eval()
    parts, export_s = _onnx_parts("animate-landmarks", warp, tmp, threads)
    print(f"landmarks warp: export + parity checks {export_s:.1f} s (once; cached by card)")
    rows = [_landmarks_row(warp, parts["tps_warp"], image, src_pts, frame, batch, repeats) for batch in batches]
    th = make_talking_head(tmp / "drv.mp4", seconds=2.0, width=256, height=256, face_fraction=0.45, audio=False)
    frames = read_frames(th.path)
    t = time.perf_counter()
    follow_landmarks(backend, iter(frames), "bench")
    ms = 1000 * (time.perf_counter() - t) / len(frames)
    rows.append({"model": "driving landmarks (dlib, detect every 10)", "torch": ms, "onnx": ms})
    return rows


def _landmarks_row(warp, graph, image: np.ndarray, src_pts: np.ndarray, frame, batch: int, repeats: int) -> dict:
    from faceexpr_cli.animate.engines.landmarks import WARP_INPUTS
    from faceexpr_cli.animate.retarget import control_points, to_normalized
    from faceexpr_cli.nn.tps import fit_tps

    rng = np.random.default_rng(0)
    targets = src_pts[None] + rng.normal(0, 2.0, (batch, 68, 2)).astype(np.float32)
    img_t = torch.from_numpy(image.transpose(2, 0, 1).astype(np.float32) / 255)[None].expand(batch, -1, -1, -1)
    region = torch.from_numpy(frame.region(256, 256))[None, None].expand(batch, -1, -1, -1)

    def fit():
        control, values = control_points(src_pts, targets, frame)
        c = torch.from_numpy(to_normalized(control, 256, 256))
        v = torch.from_numpy(to_normalized(values, 256, 256))[None].expand_as(c)
        return (c, *fit_tps(c, v, 1e-3))

    def torch_frame():
        c, w, a = fit()
        with torch.no_grad():
            warp(img_t, c, w, a, region)

    i_np, r_np = img_t.contiguous().numpy(), region.contiguous().numpy()

    def onnx_frame():
        c, w, a = fit()
        graph.run(dict(zip(WARP_INPUTS, (i_np, c.numpy(), w.numpy(), a.numpy(), r_np), strict=True)))

    return {"model": f"landmarks warp (fit + TPS), batch {batch}", "torch": _median_ms(torch_frame, repeats) / batch,
            "onnx": _median_ms(onnx_frame, repeats) / batch}


def bench_liveportrait(repeats: int, tmp: Path, threads: int) -> list[dict]:
    from faceexpr_cli.builders import build_model

    torch.manual_seed(0)
    model = build_model("liveportrait").eval()
    parts, export_s = _onnx_parts("liveportrait", model, tmp, threads)
    print(f"liveportrait: export + parity checks {export_s:.1f} s (once; cached by card + weights)")
    rows = _liveportrait_rows(model, parts, repeats)
    if torch.cuda.is_available():
        rows += _liveportrait_gpu(model, repeats)
    return rows


def _lp_inputs(batch: int):
    g = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 3, 256, 256, generator=g)
    return image, image.roll(1, dims=0)


def _lp_frame(model, feature, info_s, x_s, drv, info_r):
    from faceexpr_cli.nn.liveportrait import decode, drive

    info_d = decode(model.motion_extractor(drv), model.num_kp)
    x_d = model.stitching(x_s, drive(info_s, info_d, info_r))
    return model.spade_generator(model.warping_module(feature, kp_source=x_s, kp_driving=x_d)[0])


def _liveportrait_rows(model, parts: dict, repeats: int) -> list[dict]:
    from faceexpr_cli.nn.liveportrait import decode, drive, transform_keypoint
    from faceexpr_cli.nn.liveportrait.camera import FIELDS

    src, drv = _lp_inputs(1)
    with torch.no_grad():
        feature = model.appearance_feature_extractor(src)
        info_s = decode(model.motion_extractor(src), model.num_kp)
        x_s = transform_keypoint(info_s)
        x_d = model.stitching(x_s, drive(info_s, decode(model.motion_extractor(drv), model.num_kp), info_s))
        warped = model.warping_module(feature, kp_source=x_s, kp_driving=x_d)[0]
    np_ = {k: v.numpy() for k, v in {"image": src, "feature_3d": feature, "x_s": x_s, "x_d": x_d,
                                      "warped_feature": warped, "drv": drv}.items()}
    calls = {
        "appearance_feature_extractor": (lambda: model.appearance_feature_extractor(src),
                                         lambda: parts["appearance_feature_extractor"].run({"image": np_["image"]})),
        "motion_extractor": (lambda: model.motion(drv), lambda: parts["motion_extractor"].run({"image": np_["drv"]})),
        "stitching": (lambda: model.stitching(x_s, x_d),
                      lambda: parts["stitching"].run({"x_s": np_["x_s"], "x_d": np_["x_d"]})),
        "warping_module": (lambda: model.warping_module(feature, kp_source=x_s, kp_driving=x_d),
                           lambda: parts["warping_module"].run({"feature_3d": np_["feature_3d"],
                                                                "kp_source": np_["x_s"], "kp_driving": np_["x_d"]})),
        "spade_generator": (lambda: model.spade_generator(warped),
                            lambda: parts["spade_generator"].run({"warped_feature": np_["warped_feature"]})),
    }
    rows = []
    for name, (t_fn, o_fn) in calls.items():
        with torch.no_grad():
            rows.append({"model": f"liveportrait {name}", "torch": _median_ms(t_fn, repeats),
                         "onnx": _median_ms(o_fn, repeats)})
        _print_row(rows[-1])

    def torch_frame():
        with torch.no_grad():
            _lp_frame(model, feature, info_s, x_s, drv, info_s)

    info_np = {k: torch.from_numpy(v) for k, v in zip(
        FIELDS, parts["motion_extractor"].run({"image": np_["image"]}).values(), strict=True)}

    def onnx_frame():
        m = parts["motion_extractor"].run({"image": np_["drv"]})
        info_d = {k: torch.from_numpy(m[k]) for k in FIELDS}
        xd = drive(info_np, info_d, info_np).numpy()
        xd = parts["stitching"].run({"x_s": np_["x_s"], "x_d": xd})["x_d_stitched"]
        w = parts["warping_module"].run({"feature_3d": np_["feature_3d"], "kp_source": np_["x_s"], "kp_driving": xd})
        parts["spade_generator"].run({"warped_feature": w["warped_feature"]})

    rows.append({"model": "liveportrait frame end to end (M+S+W+G)", "torch": _median_ms(torch_frame, repeats),
                 "onnx": _median_ms(onnx_frame, repeats)})
    _print_row(rows[-1])
    return rows


def _print_row(r: dict) -> None:
    extra = f"  {r['fps']:.0f} frames/s" if "fps" in r else ""
    print(f"{r['model']:<46} {r['torch']:>12.1f} {r['onnx']:>10.1f} {r['torch'] / r['onnx']:>8.2f}x{extra}",
          flush=True)


def _liveportrait_gpu(model, repeats: int) -> list[dict]:
    """Torch on the GPU: a streaming frame (batch 1) and batched frames (batch 16), fp32 and fp16."""
    from faceexpr_cli.nn.liveportrait import decode, transform_keypoint

    rows = []
    for dtype in (torch.float32, torch.float16):
        gpu = model.to("cuda", dtype)
        for batch in (1, 16):
            src, drv = (t.to("cuda", dtype) for t in _lp_inputs(batch))
            with torch.no_grad():
                feature = gpu.appearance_feature_extractor(src)
                info_s = decode(gpu.motion_extractor(src), gpu.num_kp)
                x_s = transform_keypoint(info_s)

            def frame(args=(gpu, feature, info_s, x_s, drv, info_s)):
                with torch.no_grad():
                    _lp_frame(*args)
                torch.cuda.synchronize()

            ms = _median_ms(frame, repeats) / batch
            rows.append({"model": f"liveportrait GPU {str(dtype)[6:]} batch {batch}", "torch": ms, "onnx": float("nan"),
                         "fps": 1000 / ms})
    model.to("cpu", torch.float32)
    return rows


def bench_end_to_end(tmp: Path) -> dict:
    from faceexpr_cli.animate.pipeline import AnimateOptions, animate
    from faceexpr_cli.media import write_image
    from faceexpr_cli.samples import make_talking_head

    src = write_image(tmp / "src.png", _face_crop("grace_hopper"))
    th = make_talking_head(tmp / "e2e.mp4", seconds=4.0)
    t = time.perf_counter()
    res = animate(src, th.path, tmp / "out.mp4", AnimateOptions(engine="landmarks"))
    seconds = time.perf_counter() - t
    return {"frames": res.frames, "seconds": seconds, "fps": res.frames / seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--threads", type=int, default=0,
                    help="ORT intra-op threads (0: the cores this process may use, as torch does)")
    ap.add_argument("--no-e2e", action="store_true")
    ap.add_argument("--warmup", type=int, default=2, help="untimed runs before each measurement")
    ap.add_argument("--cache", type=Path, default=None, help="keep the ONNX exports here between runs")
    ap.add_argument("--engines", nargs="+", default=["fomm", "landmarks", "liveportrait"],
                    choices=["fomm", "landmarks", "liveportrait"])
    args = ap.parse_args()
    from faceexpr_cli.onnx.session import default_threads

    args.threads = args.threads or default_threads()  # ORT's own default ignores the CPU affinity mask
    print(f"torch {torch.__version__}, {torch.get_num_threads()} torch threads, {args.threads} ORT threads, CPU only; "
          "shared machine: figures move with the load")
    WARMUP[0] = max(0, args.warmup)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if args.cache is not None:
            (args.cache / "onnx-cache").parent.mkdir(parents=True, exist_ok=True)
            (tmp / "onnx-cache").symlink_to(args.cache.resolve() / "onnx-cache", target_is_directory=True)
            (args.cache / "onnx-cache").mkdir(exist_ok=True)
        if "fomm" in args.engines:
            rows.extend(bench_fomm(args.batch, args.repeats, tmp, args.threads))
        if "landmarks" in args.engines:
            rows.extend(bench_landmarks(args.batch, args.repeats, tmp, args.threads))
        if "liveportrait" in args.engines:
            rows.extend(bench_liveportrait(args.repeats, tmp, args.threads))
        print(f"\n{'ms per frame (call) at 256x256':<46} {'torch eager':>12} {'ORT CPU':>10} {'speed-up':>9}")
        for r in rows:
            _print_row(r)
        if not args.no_e2e:
            e = bench_end_to_end(tmp)
            print(f"\nend to end (landmarks engine, torch, decode + landmarks + render + encode): {e['frames']} frames "
                  f"in {e['seconds']:.1f} s = {e['fps']:.1f} frames/s")


if __name__ == "__main__":
    main()
