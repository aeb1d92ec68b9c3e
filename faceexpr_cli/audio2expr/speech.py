"""`fx animate --driving speech.wav --audio-model RUN`: speech -> expression -> landmark motion -> portrait video.

The source portrait is its own neutral face. Each frame's predicted offsets (normalised face frame) are added to
the source's normalised landmarks and mapped back to its pixels through the source's face frame, then the
``landmarks`` engine warps the portrait through them. With ``--emotion RUN`` the predicted expression first goes
through an emotion-adding model (``alpha``, ``ortho``). With a driving video and ``--audio speech.wav`` the head
motion is the video's (the engine's usual relative retargeting) and only the mouth and jaw follow the speech: in
every frame's own face frame they are replaced by the source's plus the predicted offsets. The speech is muxed in.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceexpr_cli.audio2expr import shapes as S
from faceexpr_cli.errors import UsageError

AUDIO_SUFFIXES = {".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".opus"}
SPEECH_POINTS = np.r_[np.arange(4, 13), S.MOUTH]  # lower jaw and mouth: what speech moves


def is_audio_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in AUDIO_SUFFIXES


@dataclass
class SpeechOptions:
    audio_model: str | Path
    emotion: str | Path | None = None
    alpha: float = 1.0
    ortho: bool = False
    fps: float = 25.0
    backend: str = "torch"
    face_backend: str = "dlib"
    batch: int = 16
    max_frames: int | None = None
    max_pixels: int | None = 4096 * 4096
    tiny_warp: bool = False  # the warp card's tiny variant (tests)

    def validate(self) -> SpeechOptions:
        from faceexpr_cli.safety import check_number

        check_number(self.alpha, "--alpha", minimum=0, maximum=10)
        check_number(self.fps, "--fps", minimum=1, maximum=120)
        check_number(self.max_frames, "--max-frames", minimum=1)
        if self.backend not in ("torch", "onnx"):
            raise UsageError(f"--backend {self.backend}: use torch or onnx")
        if (self.ortho or self.alpha != 1.0) and self.emotion is None:
            raise UsageError("--alpha and --ortho blend an emotion model", "add --emotion RUN, or leave them out")
        return self


@dataclass
class SpeechResult:
    out: str
    frames: int
    fps: float
    width: int
    height: int
    audio: bool
    seconds: float
    ms_per_frame: float
    head_motion: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def expressions(opts: SpeechOptions, wave: np.ndarray, frames: int | None, reference: np.ndarray | None = None):
    """The audio model's prediction, through the emotion model when one is given."""
    from faceexpr_cli.audio2expr.predict import Audio2ExprModel

    model = Audio2ExprModel.load(opts.audio_model, opts.backend)
    pred = model.predict(wave, opts.fps, reference=reference, frames=frames)
    if opts.emotion is not None:
        from faceexpr_cli.audio2expr.emotion import EmotionModel

        emo = EmotionModel.load(opts.emotion)
        if emo.dim != model.dim:
            raise UsageError(f"--emotion {opts.emotion} works on {emo.dim} coefficients, the audio model gives "
                             f"{model.dim}", "train the emotion model on this audio model's expressions")
        expr = emo.apply(pred.expression, opts.alpha, opts.ortho)
        pred.expression, pred.offsets = expr, model.basis.decode(expr)
    return model, pred


def animate_speech(source: str | Path, speech: str | Path, out: str | Path, opts: SpeechOptions,
                   driving: str | Path | None = None) -> SpeechResult:
    from faceexpr_cli.animate.engines import EngineOptions, get_engine
    from faceexpr_cli.animate.inputs import check_image, check_out
    from faceexpr_cli.audio2expr.predict import read_audio
    from faceexpr_cli.media import read_image

    opts = opts.validate()
    t0 = time.perf_counter()
    source, out = Path(source), Path(out)
    wave = read_audio(speech)  # a file that is not audio is one line before anything else runs
    check_out(out, False)
    check_image(source, opts.max_pixels)
    image = read_image(source)
    engine = get_engine("landmarks", EngineOptions(face_backend=opts.face_backend, batch=opts.batch,
                                                   tiny=opts.tiny_warp))
    src_motion = engine.set_source(image, str(source))
    src_points = src_motion.points[0]
    src_norm = S.normalise(src_points[None])[0]
    head = "none"
    if driving is None:
        from faceexpr_cli.audio2expr.mel import frames_for

        n = frames_for(len(wave) / 16000, opts.fps)
        _, pred = expressions(opts, wave, min(n, opts.max_frames or n))
        origin, rot, scale = S.face_frame(src_points[None])
        targets = S.to_image(src_norm[None] + pred.offsets, origin[0], rot[0], scale[0])
        fps = opts.fps
    else:
        head = "driving video"
        targets, fps = _with_head_motion(engine, Path(driving), src_motion, src_norm, opts, wave)
    count = _write(out, engine, targets, fps, Path(speech))
    seconds = time.perf_counter() - t0
    return SpeechResult(str(out), count, fps, image.shape[1], image.shape[0], True, round(seconds, 3),
                        round(1000 * seconds / max(count, 1), 1), head,
                        {"audio_model": str(opts.audio_model), "emotion": str(opts.emotion) if opts.emotion else None,
                         "alpha": opts.alpha, "ortho": opts.ortho, "backend": opts.backend})


def _with_head_motion(engine, driving: Path, src_motion, src_norm: np.ndarray, opts: SpeechOptions,
                      wave: np.ndarray) -> tuple[np.ndarray, float]:
    """The driving video's retargeted landmarks with the jaw and mouth replaced by the audio-driven ones."""
    from faceexpr_cli.animate.pipeline import Driving

    drv = Driving(driving, opts.max_frames, opts.max_pixels)
    if drv.is_image:
        raise UsageError(f"--driving {driving}: head motion needs a video", "pass a driving video, or only the speech")
    motion = engine.driving_motion(drv.frames(), str(driving))
    reference = motion.points[int(np.flatnonzero(motion.found)[0]) if motion.found is not None and
                              motion.found.any() else 0]
    targets = engine.retarget(src_motion, motion, type(motion)(reference[None]), True, False).points
    opts.fps = drv.fps
    _, pred = expressions(opts, wave, len(targets))
    origin, rot, scale = S.face_frame(targets)
    local = S.normalise(targets)
    local[:, SPEECH_POINTS] = src_norm[SPEECH_POINTS] + pred.offsets[:, SPEECH_POINTS]
    moved = np.stack([S.to_image(local[i:i + 1], origin[i], rot[i], scale[i])[0] for i in range(len(local))])
    return moved, drv.fps


def _write(out: Path, engine, targets: np.ndarray, fps: float, speech: Path) -> int:
    from faceexpr_cli.animate.engines import Motion
    from faceexpr_cli.console import progress
    from faceexpr_cli.media import VideoWriter

    writer = VideoWriter(out, fps, audio=speech, audio_duration=len(targets) / fps)
    try:
        with progress(transient=True) as bar:
            task = bar.add_task("render", total=len(targets))
            step = max(1, engine.options.batch)
            for i in range(0, len(targets), step):
                for frame in engine.render(Motion(targets[i:i + step].astype(np.float32))):
                    writer.write(frame)
                    bar.advance(task)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return writer.frames


def speech_command(source: Path, driving: Path, out: Path, audio_model: Path | None, audio: Path | None,
                   emotion: Path | None, alpha: float, ortho: bool, backend: str, face_backend: str, batch: int,
                   max_frames: int | None, max_pixels: int | None, json_out: bool, engine: str = "landmarks") -> None:
    """`fx animate` with speech: checks what was asked, runs ``animate_speech``, prints the result line."""
    from faceexpr_cli.console import out as stdout
    from faceexpr_cli.console import print_json
    from faceexpr_cli.face.backend import resolve_backend_name

    if engine != "landmarks":
        raise UsageError(f"speech animation renders with the landmarks engine, not '{engine}'",
                         "leave --engine out with --audio-model")

    if audio_model is None:
        raise UsageError("speech drives the portrait through a trained audio model", "add --audio-model RUN "
                         "(a `fx train audio2expr` run)")
    if audio is not None and is_audio_path(driving):
        raise UsageError("--audio goes with a driving video (its head motion)", "pass the speech as --driving alone")
    speech, video = (audio, driving) if audio is not None else (driving, None)
    if video is None and not is_audio_path(speech):
        raise UsageError(f"--driving {driving} is not an audio file", "pass speech.wav as --driving, or a video "
                         "with --audio speech.wav")
    opts = SpeechOptions(audio_model, emotion, alpha, ortho, backend=backend,
                         face_backend=resolve_backend_name(face_backend), batch=batch, max_frames=max_frames,
                         max_pixels=max_pixels)
    result = animate_speech(source, speech, out, opts, driving=video)
    if json_out:
        print_json(result.to_dict())
    else:
        stdout.print(f"{result.out}: {result.frames} frame(s) {result.width}x{result.height} from speech "
                     f"(head motion: {result.head_motion}), {result.ms_per_frame} ms/frame, speech as audio")
