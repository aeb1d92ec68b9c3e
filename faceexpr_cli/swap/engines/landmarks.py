"""The ``landmarks`` swap engine: no learned weights, works offline on real video.

The source face's texture is warped onto each driving face's landmark mesh (``swap.mesh``: the source's Delaunay
triangles on the driver's points), its skin colour moved onto the driver's, and blended in with a Laplacian
pyramid under a soft hull mask whose hole over the inner lips lets the driver's open mouth show its own interior
(``swap.graph``). Two things keep the seam from flickering: the driver's points pass a One-Euro filter (per
followed person, in units of the face's size) and the colour gain and bias an exponential average.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from faceexpr_cli.swap.engines import ENGINES, DrivingFace, SwapEngine, SwapOptions
from faceexpr_cli.swap.mesh import (
    MOUTH_MODES,
    face_region,
    hull_mask,
    masked_stats,
    padded,
    rasterize,
    to_normalized,
    triangle_affines,
    triangulate,
    with_forehead,
)

INPUTS = ["source", "frame", "tri_index", "affines", "colour", "mask"]
OUTPUT = "swapped"


class _Slot:
    """What one followed driving person carries from frame to frame: its point filter and colour average."""

    def __init__(self, cutoff: float, beta: float):
        from faceexpr_cli.face.smoothing import OneEuroFilter

        self.filter = OneEuroFilter(cutoff, beta, 1.0)
        self.colour: np.ndarray | None = None
        self.last_time: float | None = None


@ENGINES.register("landmarks")
class LandmarksSwap(SwapEngine):
    name = "landmarks"

    def __init__(self, options: SwapOptions):
        super().__init__(options)
        from faceexpr_cli.builders import build_model
        from faceexpr_cli.config.cards import load_card
        from faceexpr_cli.safety import check_number

        extra = options.extra
        self.colour_strength = float(check_number(extra.get("colour", 0.5), "--colour", minimum=0, maximum=1))
        self.smooth = float(check_number(extra.get("smooth", 3.0), "--smooth", minimum=0))
        self.forehead = float(check_number(extra.get("forehead", 0.25), "--forehead", minimum=0, maximum=1))
        self.mouth = str(extra.get("mouth", "lips"))
        if self.mouth not in MOUTH_MODES:
            from faceexpr_cli.errors import UnknownNameError

            raise UnknownNameError("--mouth", self.mouth, MOUTH_MODES)
        self.card = load_card("swap-landmarks")
        self.graph = build_model(self.card, tiny=options.tiny).eval()
        self.device = "cpu"
        if options.backend == "torch":
            from faceexpr_cli.devices import check_device

            self.device = check_device(options.device, "--device", "torch")  # a missing GPU: one line, at once
            self.graph = self.graph.to(self.device)
        self.levels = self.graph.levels
        self.slots: dict[int, _Slot] = {}
        self._onnx = None
        if options.backend == "onnx":
            self._open_onnx()

    def _open_onnx(self) -> None:
        from faceexpr_cli.onnx.cache import cached_predictors
        from faceexpr_cli.onnx.export import ExportOptions, ModelSource
        from faceexpr_cli.onnx.session import SessionConfig

        session = SessionConfig(device=self.options.device, allow_cpu_fallback=self.options.allow_cpu_fallback,
                                intra_op_threads=int(self.options.extra.get("threads", 0)))
        parts, self.onnx_dir = cached_predictors(ModelSource(self.card, model=self.graph), session,
                                                 ExportOptions(tiny=self.options.tiny, latency_runs=1))
        self._onnx = parts[self.card.onnx.parts[0].name]

    def set_source(self, image: np.ndarray, face, what: str) -> None:
        """The source's crop, skin statistics and meshes: the 68 points (+ forehead) always, and the backend's
        dense mesh (+ the same forehead points) when it gives one; a driving face uses the densest both have."""
        import torch

        points = with_forehead(face.landmarks68, self.forehead)
        mesh = face.extra.get("mesh468") if getattr(face, "extra", None) else None
        dense = None if mesh is None else np.concatenate([np.asarray(mesh, np.float64)[:, :2], points[68:]])
        every = points if dense is None else np.concatenate([points, dense])
        r = face_region(every, image.shape, margin=0.1)
        crop = np.ascontiguousarray(image[r.y0:r.y1, r.x0:r.x1])
        local = points - [r.x0, r.y0]
        self.geometry = {"68": (triangulate(local), to_normalized(local, r.height, r.width))}
        if dense is not None:
            dl = dense - [r.x0, r.y0]
            self.geometry["mesh"] = (triangulate(dl), to_normalized(dl, r.height, r.width))
        self.triangles = self.geometry["mesh" if dense is not None else "68"][0]
        mean, std = masked_stats(crop, hull_mask(local, r.height, r.width, erode=0.12, mouth="source"))
        self.source_mean, self.source_std = mean, std
        self.source = torch.from_numpy(crop.transpose(2, 0, 1).astype(np.float32) / 255.0)[None]
        self.size = float(max(points.max(0) - points.min(0)))

    def _warp_points(self, face: DrivingFace, points: np.ndarray) -> tuple[str, np.ndarray]:
        """Which mesh and its points for one driving face: the dense one (moved as the smoothed outline moved)
        when the source and this face both have it, else the 68 (+ forehead)."""
        if "mesh" in self.geometry and face.mesh is not None and len(face.mesh) + len(points) - 68 == len(
                self.geometry["mesh"][1]):
            shift = (points[:27] - face.points[:27]).mean(0)
            return "mesh", np.concatenate([np.asarray(face.mesh, np.float64) + shift, points[68:]])
        return "68", points

    def _smoothed(self, face: DrivingFace) -> tuple[np.ndarray, _Slot]:
        slot = self.slots.get(face.slot)
        if slot is None or (slot.last_time is not None and face.time - slot.last_time > 0.5):
            slot = self.slots[face.slot] = _Slot(self.smooth, 4.0)  # new person, or seen again after a gap
        slot.last_time = face.time
        points = face.points.astype(np.float64)
        if self.smooth > 0:
            unit = max(float(np.ptp(points[:, 0])), 1.0)
            points = slot.filter(points / unit, face.time) * unit
            if len(points) >= 68:  # the mouth moves fast (syllables at ~4 Hz): its points pass unfiltered, no lag
                points[48:68] = face.points[48:68]
        return with_forehead(points, self.forehead), slot

    def _colour(self, crop: np.ndarray, mask: np.ndarray, slot: _Slot) -> np.ndarray:
        mean, std = masked_stats(crop, mask, threshold=0.9)
        gain = std / self.source_std
        bias = mean - gain * self.source_mean
        s = self.colour_strength
        now = np.concatenate([1 + s * (gain - 1), s * bias])
        slot.colour = now if slot.colour is None else 0.75 * slot.colour + 0.25 * now
        return slot.colour

    def swap(self, frames: list[np.ndarray], faces: list[list[DrivingFace]]) -> list[np.ndarray]:
        out = [f.copy() for f in frames]
        items = []
        for i, frame_faces in enumerate(faces):
            for face in frame_faces:
                points, slot = self._smoothed(face)
                kind, warp = self._warp_points(face, points)
                r = face_region(np.concatenate([points, warp]), frames[i].shape)
                local = points - [r.x0, r.y0]
                crop = frames[i][r.y0:r.y1, r.x0:r.x1]
                mask = hull_mask(local, r.height, r.width, mouth=self.mouth)
                items.append((i, r, (kind, warp - [r.x0, r.y0]), mask, self._colour(crop, mask, slot)))
        if not items:
            return out
        hh = padded(max(it[1].height for it in items), 2 ** self.levels)
        ww = padded(max(it[1].width for it in items), 2 ** self.levels)
        n = len(items)
        crops = np.zeros((n, hh, ww, 3), np.uint8)
        tri = np.zeros((n, 1, hh, ww), np.float32)
        masks = np.zeros((n, 1, hh, ww), np.float32)
        affines = np.zeros((n, max(len(self.geometry[it[2][0]][0]) for it in items) + 1, 6), np.float32)
        colours = np.zeros((n, 6), np.float32)
        for j, (i, r, (kind, local), mask, colour) in enumerate(items):
            triangles, source_norm = self.geometry[kind]
            crops[j] = np.pad(frames[i][r.y0:r.y1, r.x0:r.x1], ((0, hh - r.height), (0, ww - r.width), (0, 0)),
                              mode="edge")
            tri[j, 0] = rasterize(triangles, local, hh, ww)
            masks[j, 0, :r.height, :r.width] = mask
            affines[j, :len(triangles) + 1] = triangle_affines(triangles, to_normalized(local, hh, ww), source_norm)
            colours[j] = colour
        swapped = self._run(crops, tri, affines, colours, masks)
        for j, (i, r, _, _, _) in enumerate(items):
            region = out[i][r.y0:r.y1, r.x0:r.x1].astype(np.float32)
            new = swapped[j, :r.height, :r.width]
            w = _edge_window(r, out[i].shape)
            out[i][r.y0:r.y1, r.x0:r.x1] = np.clip(region + (new - region) * w + 0.5, 0, 255).astype(np.uint8)
        return out

    def _run(self, crops, tri, affines, colours, masks) -> np.ndarray:
        import torch

        frame = crops.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        source = self.source.expand(len(crops), -1, -1, -1)
        if self._onnx is not None:
            feed = dict(zip(INPUTS, (source.numpy(), frame, tri, affines, colours, masks), strict=True))
            result = self._onnx.run({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in feed.items()})[OUTPUT]
        else:
            with torch.no_grad():
                args = [torch.from_numpy(a) for a in (frame, tri, affines, colours, masks)]
                result = self.graph(source.to(self.device), *(a.to(self.device) for a in args)).cpu().numpy()
        return np.asarray(result).transpose(0, 2, 3, 1) * 255.0

    def describe(self) -> dict[str, Any]:
        info = {**super().describe(), "card": self.card.name, "triangles": int(len(self.triangles))
                if hasattr(self, "triangles") else None, "mesh": "dense" if "mesh" in getattr(self, "geometry", {})
                else "68", "colour": self.colour_strength, "smooth": self.smooth, "mouth": self.mouth,
                "forehead": self.forehead}
        if self._onnx is not None:
            info.update(onnx_graphs=str(self.onnx_dir), providers=self._onnx.providers)
        return info


def _edge_window(r, shape: tuple[int, ...], ramp: int = 6) -> np.ndarray:
    """1 inside the crop, falling to 0 over its outer ``ramp`` pixels where it meets the rest of the frame (not
    along the frame's own edge, where a face cut by the border is still swapped to the border)."""
    fh, fw = shape[:2]
    big = float(max(fh, fw))
    top = np.arange(r.height, dtype=np.float32) if r.y0 > 0 else np.full(r.height, big, np.float32)
    bottom = np.arange(r.height, dtype=np.float32)[::-1] if r.y1 < fh else np.full(r.height, big, np.float32)
    left = np.arange(r.width, dtype=np.float32) if r.x0 > 0 else np.full(r.width, big, np.float32)
    right = np.arange(r.width, dtype=np.float32)[::-1] if r.x1 < fw else np.full(r.width, big, np.float32)
    y, x = np.minimum(top, bottom), np.minimum(left, right)
    return np.clip(np.minimum(y[:, None], x[None, :]) / ramp, 0, 1)[..., None]
