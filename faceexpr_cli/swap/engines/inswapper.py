"""The ``inswapper`` engine: a user-supplied ``inswapper_128.onnx`` (insightface's contract), pasted back.

Per driving face: the frame is cut to 128x128 by the ArcFace 5-point template (insightface's 112 template moved
8 px right at 128), given to the graph as ``target`` (RGB in [0, 1]) with ``source`` = the source's unit ArcFace
embedding times ``emap`` (the graph's last initializer), L2-normalised; the 128x128 answer goes back through the
inverse affine under a mask that is eroded (a tenth of the face) and blurred (a twentieth), as insightface's own
paste-back does. The graph's inputs are checked first: one of another shape is one line naming it. The
buffalo_l directory (``--models``) gives detection, landmarks and the ArcFace embedding. Weights are
non-commercial (``models/swap-inswapper.yaml``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from faceexpr_cli.errors import MediaError, MissingFileError, UsageError
from faceexpr_cli.face.align import ARCFACE_112, invert_affine, similarity_transform
from faceexpr_cli.swap.engines import ENGINES, DrivingFace, SwapEngine, SwapOptions

SIZE = 128
EMBEDDING = 512
TEMPLATE_128 = ARCFACE_112 + np.array([8.0, 0.0], np.float32)
EXPECTED = {"target": [1, 3, SIZE, SIZE], "source": [1, EMBEDDING]}


def _dims(value_info) -> list:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in value_info.type.tensor_type.shape.dim]


def check_graph(path: Path):
    """The graph's ``emap`` (512x512) after checking inputs and output against the contract (one line if not)."""
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - not an ONNX file: one line, no protobuf traceback
        raise MediaError(path, f"is not an ONNX graph ({type(exc).__name__})", "pass inswapper_128.onnx") from exc
    graph = model.graph
    init = {i.name for i in graph.initializer}
    inputs = {i.name: _dims(i) for i in graph.input if i.name not in init}
    for name, want in EXPECTED.items():
        if name not in inputs:
            raise MediaError(path, f"has no input '{name}' (inputs: {', '.join(inputs) or 'none'}); inswapper_128 "
                             f"takes target {EXPECTED['target']} and source {EXPECTED['source']}")
        got = inputs[name]
        if len(got) != len(want) or any(g != w and not isinstance(g, str) for g, w in zip(got, want, strict=True)):
            raise MediaError(path, f"input '{name}' has shape {got}; inswapper_128 takes {want}",
                             "pass an inswapper_128.onnx graph")
    outputs = [_dims(o) for o in graph.output]
    if len(outputs) != 1 or [d for d in outputs[0] if not isinstance(d, str)][-3:] != [3, SIZE, SIZE]:
        raise MediaError(path, f"output shape {outputs}; inswapper_128 gives [1, 3, {SIZE}, {SIZE}]")
    if not graph.initializer:
        raise MediaError(path, "has no initializers, so no emap (inswapper's last initializer, 512x512)")
    emap = numpy_helper.to_array(graph.initializer[-1]).astype(np.float32)
    if emap.shape != (EMBEDDING, EMBEDDING):
        raise MediaError(path, f"last initializer (emap) has shape {list(emap.shape)}; inswapper_128's is "
                         f"[{EMBEDDING}, {EMBEDDING}]")
    return emap


def paste_mask(fake: np.ndarray, inverse: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The swapped crop in frame space and its alpha (insightface's rule: white crop mask warped back, > 20 ->
    1, eroded by max(size // 10, 10), blurred by max(size // 20, 5), size = sqrt of the mask box's area)."""
    import cv2

    h, w = shape[:2]
    back = cv2.warpAffine(fake, inverse, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    white = np.full(fake.shape[:2], 255, np.uint8)
    mask = cv2.warpAffine(white, inverse, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    mask = np.where(mask > 20, 255, 0).astype(np.uint8)
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return back, np.zeros((h, w, 1), np.float32)
    size = int(np.sqrt((ys.max() - ys.min()) * (xs.max() - xs.min())))
    k = max(size // 10, 10)
    mask = cv2.erode(mask, np.ones((k, k), np.uint8), iterations=1)
    b = max(size // 20, 5)
    alpha = cv2.GaussianBlur(mask.astype(np.float32), (2 * b + 1, 2 * b + 1), 0) / 255.0
    return back, alpha[..., None]


@ENGINES.register("inswapper")
class InswapperEngine(SwapEngine):
    name = "inswapper"
    notice = ("inswapper_128 and the buffalo_l models are for non-commercial research only (insightface's "
              "licence; see fx models show swap-inswapper)")
    detect_every = 1

    def __init__(self, options: SwapOptions):
        super().__init__(options)
        if not options.weights:
            raise UsageError("--engine inswapper needs --weights inswapper_128.onnx",
                             "fx does not download it (non-commercial licence, no checksum): pass your copy")
        if not options.models:
            raise UsageError("--engine inswapper needs --models DIR (the buffalo_l directory: detection, ArcFace)")
        self.path = Path(options.weights)
        if not self.path.is_file():
            raise MissingFileError(self.path, "inswapper_128.onnx")
        self.emap = check_graph(self.path)
        from faceexpr_cli.onnx.session import SessionConfig, create_session

        threads = int(options.extra.get("threads", 0))
        self.session = create_session(self.path, SessionConfig(device=options.device, intra_op_threads=threads,
                                                               allow_cpu_fallback=options.allow_cpu_fallback))
        self.output = self.session.get_outputs()[0].name
        self.latent: np.ndarray | None = None

    def make_face_backend(self):
        from faceexpr_cli.face import get_backend

        det = int(self.options.extra.get("det_size", 640))
        return get_backend("insightface", model_dir=self.options.models, det_size=det)

    def set_source(self, image: np.ndarray, face, what: str) -> None:
        backend = self.face_layer if self.face_layer is not None else self.make_face_backend()
        backend.embed(image, [face])
        if face.embedding is None:
            raise UsageError(f"{what}: no ArcFace embedding for the source face")
        latent = face.embedding.reshape(1, -1).astype(np.float32) @ self.emap
        self.latent = (latent / max(float(np.linalg.norm(latent)), 1e-12)).astype(np.float32)

    def swap_face(self, frame: np.ndarray, kps5: np.ndarray) -> np.ndarray:
        import cv2

        m = similarity_transform(kps5, TEMPLATE_128)
        crop = cv2.warpAffine(frame, m, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderValue=0)
        blob = crop.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
        fake = self.session.run([self.output], {"target": blob, "source": self.latent})[0][0]
        fake = np.clip(fake.transpose(1, 2, 0) * 255.0, 0, 255).astype(np.float32)
        back, alpha = paste_mask(fake, invert_affine(m), frame.shape)
        return np.clip(frame.astype(np.float32) * (1 - alpha) + back * alpha + 0.5, 0, 255).astype(np.uint8)

    def swap(self, frames: list[np.ndarray], faces: list[list[DrivingFace]]) -> list[np.ndarray]:
        out = []
        for frame, frame_faces in zip(frames, faces, strict=True):
            for face in frame_faces:
                frame = self.swap_face(frame, face.kps5)
            out.append(frame)
        return out

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "backend": "onnx", "weights": str(self.path), "models": self.options.models,
                "providers": self.session.get_providers(), "licence": "non-commercial research only"}
