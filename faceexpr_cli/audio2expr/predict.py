"""A trained audio2expr run as a predictor: speech -> expression coefficients and landmark offsets per frame.

The run's newest checkpoint holds the weights, the card they were built with and the PCA basis (buffers), so a
run folder, a checkpoint folder or a lone ``audio2expr.safetensors`` all load. ``backend="onnx"`` exports the
model once into ``<checkpoint>/onnx/`` (parity against PyTorch checked by the export) and runs it in ONNX Runtime;
both backends share the audio front end and the reference / blink inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceexpr_cli.audio2expr import shapes as S
from faceexpr_cli.audio2expr.mel import MelSpec, frame_windows, frames_for, log_mel
from faceexpr_cli.errors import CheckpointError, MediaError, MissingFileError

ROLE = "audio2expr"


def read_audio(path: str | Path, rate: int = 16000) -> np.ndarray:
    """The first audio stream of any file PyAV reads (wav, mp3, m4a, a video's track), mono at ``rate``."""
    import av

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, "speech audio")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(path, f"not a readable audio file ({str(exc).splitlines()[0][:120]})",
                         "pass a .wav/.mp3/.m4a file or a video with sound") from None
    with container:
        if not container.streams.audio:
            raise MediaError(path, "has no audio stream", "pass a .wav/.mp3/.m4a file or a video with sound")
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=rate)
        stream = container.streams.audio[0]
        video = container.streams.video[0] if container.streams.video else None
        # time 0 is the video's first frame when there is one (AAC priming samples before it are dropped)
        t0 = float(video.start_time * video.time_base) if video is not None and video.start_time is not None else 0.0
        chunks, first = [], None
        try:
            for frame in container.decode(stream):
                if first is None:
                    first = float(frame.pts * stream.time_base) if frame.pts is not None else t0
                chunks.extend(o.to_ndarray()[0] for o in resampler.resample(frame))
            chunks.extend(o.to_ndarray()[0] for o in resampler.resample(None))
        except av.error.FFmpegError as exc:
            if not chunks:
                raise MediaError(path, f"cannot decode its audio ({str(exc)[:120]})") from None
    if not chunks or sum(len(c) for c in chunks) < rate // 25:
        raise MediaError(path, "holds no audio samples", "pass a file with at least a few frames of speech")
    wave = np.concatenate(chunks).astype(np.float32)
    shift = int(round(((first if first is not None else t0) - t0) * rate))
    return np.concatenate([np.zeros(shift, np.float32), wave]) if shift > 0 else wave[-shift:]


@dataclass
class Prediction:
    expression: np.ndarray  # (T, K)
    offsets: np.ndarray  # (T, 68, 2) from the neutral face, normalised face frame
    fps: float

    def __len__(self) -> int:
        return len(self.expression)


class Audio2ExprModel:
    def __init__(self, model, card, source: Path, backend: str = "torch"):
        self.model, self.card, self.source, self.backend = model.eval(), card, source, backend
        self.basis = S.ExpressionBasis(model.basis_mean.numpy().copy(), model.basis_components.numpy().copy(),
                                       np.zeros(model.expression_dim, np.float32))
        self.spec = MelSpec(bands=model.mel_bands, window=model.mel_window)
        self._session = None

    @classmethod
    def load(cls, run: str | Path, backend: str = "torch", onnx_dir: str | Path | None = None) -> Audio2ExprModel:
        """``onnx_dir``: where the graph is (or is exported to) with ``backend="onnx"``; default
        ``<checkpoint>/onnx``."""
        from faceexpr_cli.builders import build_model
        from faceexpr_cli.train import checkpoint as C

        file = C.resolve_model_file(run, ROLE)
        _, card, role = C.read_model_file(file)
        if card is None or card.builder != "audio2expr":
            raise CheckpointError(f"{file} is not an audio2expr model (card {card.name if card else 'none'})",
                                  "pass a run of `fx train audio2expr`")
        model = build_model(card)
        C.load_model(file, model, card, ROLE)
        self = cls(model, card, file, backend)
        if backend == "onnx":
            self._open_onnx(Path(onnx_dir) if onnx_dir else file.parent / "onnx")
        return self

    def _open_onnx(self, folder: Path) -> None:
        import onnxruntime as ort

        graph = folder / "audio2expr.onnx"
        if not graph.is_file():
            export(self, folder)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self._session = ort.InferenceSession(str(graph), opts, providers=["CPUExecutionProvider"])

    @property
    def dim(self) -> int:
        return self.model.expression_dim

    def neutral_reference(self) -> np.ndarray:
        """The expression of a face at rest (zero offset from its neutral), the source portrait's by default."""
        return self.basis.project(np.zeros((1, self.basis.components.shape[1]), np.float32))[0]

    def run(self, windows: np.ndarray, reference: np.ndarray, blink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Batched: windows (B, T, bands, window), reference (B, K), blink (B, T) -> (B, T, K), (B, T, 68, 2)."""
        feed = {"mel": np.ascontiguousarray(windows, np.float32), "reference": np.ascontiguousarray(reference, np.float32),
                "blink": np.ascontiguousarray(blink, np.float32)}
        if self._session is not None:
            expr, off = self._session.run(["expression", "offsets"], feed)
            return expr, off
        import torch

        with torch.inference_mode():
            expr, off = self.model(*(torch.from_numpy(v) for v in feed.values()))
        return expr.numpy(), off.numpy()

    def predict(self, wave: np.ndarray, fps: float = 25.0, reference: np.ndarray | None = None,
                blink: np.ndarray | None = None, frames: int | None = None) -> Prediction:
        n = frames or frames_for(len(wave) / self.spec.sample_rate, fps)
        windows = frame_windows(log_mel(wave, self.spec), n, fps, self.spec)
        ref = self.neutral_reference() if reference is None else np.asarray(reference, np.float32)
        bl = S.synthetic_blinks(n, fps) if blink is None else np.asarray(blink, np.float32)[:n]
        expr, off = self.run(windows[None], ref[None], bl[None])
        return Prediction(expr[0], off[0], fps)


def export(predictor: Audio2ExprModel, folder: str | Path) -> dict:
    """The model as ``audio2expr.onnx`` in ``folder``, with the export's parity checks against PyTorch."""
    from faceexpr_cli.onnx.export import ExportOptions, ModelSource, export_models

    opts = ExportOptions(simplify=False, sample_check=False, latency_runs=1)
    return export_models([ModelSource(predictor.card, model=predictor.model)], Path(folder), opts)
