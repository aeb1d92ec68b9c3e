"""`fx live`: the real-time loop on a camera, a stream or a file, with a local web page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from faceexpr_cli.cli.options import JsonOpt


def live(
    source: Annotated[str, typer.Option("--source", "-s", help="Camera index (0), /dev/videoN, a stream URL "
                                                               "(rtsp://, http://, ...) or a video file.",
                                        show_default=False)],
    model: Annotated[Path | None, typer.Option("--model", "-m", help="A `fx train joint` run or its ONNX export: "
                                                                     "expression tokens per frame.",
                                               show_default=False)] = None,
    predictor: Annotated[Path | None, typer.Option("--predictor", help="A `fx train expression` run or export: "
                                                                       "next-token prediction over the last 30 "
                                                                       "frames, and its error.",
                                                   show_default=False)] = None,
    backend: Annotated[str | None, typer.Option("--backend", help="torch or onnx; default: what each folder is.",
                                                show_default=False)] = None,
    animate: Annotated[Path | None, typer.Option("--animate", help="A portrait moved by the face in the source "
                                                                   "(landmarks engine).", show_default=False)] = None,
    swap: Annotated[Path | None, typer.Option("--swap", help="A face photo whose identity the source's face "
                                                             "gets (landmarks swap engine).",
                                              show_default=False)] = None,
    emotion: Annotated[str, typer.Option("--emotion", help="auto (when the model's weights are cached), on or "
                                                           "off.")] = "auto",
    serve: Annotated[str | None, typer.Option("--serve", help="Serve the live page at HOST:PORT (PORT 0: any "
                                                              "free port).", show_default=False)] = None,
    host: Annotated[str | None, typer.Option("--host", help="Bind the page to this address instead (e.g. "
                                                            "0.0.0.0 for the local network).",
                                             show_default=False)] = None,
    window: Annotated[bool, typer.Option("--window", help="Show an OpenCV window (q or Esc stops).")] = False,
    record: Annotated[Path | None, typer.Option("--record", help="Write the shown frames to this video, with "
                                                                 "the source's audio when it has some.",
                                                show_default=False)] = None,
    tokens: Annotated[Path | None, typer.Option("--tokens", help="One JSON line per frame: time, face box, "
                                                                 "token, prediction error, emotion.",
                                                show_default=False)] = None,
    max_seconds: Annotated[float | None, typer.Option("--max-seconds", help="Stop after this many seconds.",
                                                      show_default=False)] = None,
    size: Annotated[str | None, typer.Option("--size", help="Scale frames to WIDTHxHEIGHT (cameras default to "
                                                            "640x480).", show_default=False)] = None,
    as_fast_as_possible: Annotated[bool, typer.Option("--as-fast-as-possible", help="Files: process every "
                                                      "frame as fast as it goes instead of at the file's pace "
                                                      "(tests, offline runs).")] = False,
    virtual_cam: Annotated[bool, typer.Option("--virtual-cam", help="Send the shown frames to a virtual camera "
                                                                    "(needs pyvirtualcam).")] = False,
    linger: Annotated[float, typer.Option("--linger", help="Seconds the page keeps serving the last frame "
                                                           "after the source ends.")] = 0.0,
    face_backend: Annotated[str | None, typer.Option("--face-backend", help="dlib, mediapipe, auto, ...; "
                                                     "default: auto when the MediaPipe weights are cached, else "
                                                     "dlib.", show_default=False)] = None,
    detect_every: Annotated[int, typer.Option("--detect-every", min=1, help="Run the face detector every N "
                                                                            "frames, carry the landmarks "
                                                                            "between.")] = 5,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:N or auto.")] = "cpu",
    json_out: JsonOpt = False,
) -> None:
    """The real-time loop: face, tokens, next-token error, emotion, an animated portrait or a swapped face.

    Frames come from a capture thread that keeps only the newest one: when
    processing is slower than the source, frames are dropped (and counted)
    rather than letting latency grow. Files play at their own pace unless
    --as-fast-as-possible. Ctrl-C or --max-seconds stops cleanly, with the
    recording finalised.

    Examples:
      [cyan]fx live --source 0 --model runs/joint --serve 127.0.0.1:8765[/]
      [cyan]fx live -s talk.mp4 --as-fast-as-possible --tokens t.jsonl --record out.mp4[/]
      [cyan]fx live -s rtsp://phone.local:8554/live --animate portrait.png --serve :8765[/]
      [cyan]fx live -s 0 --swap face.jpg --record swapped.mp4 --max-seconds 30[/]
    """
    from faceexpr_cli.console import print_json, print_table
    from faceexpr_cli.live.loop import LiveOptions, run_live
    from faceexpr_cli.live.process import LiveModels

    models = LiveModels(model=str(model) if model else None, predictor=str(predictor) if predictor else None,
                        backend=backend, animate=str(animate) if animate else None,
                        swap=str(swap) if swap else None, emotion=emotion,
                        face_backend=face_backend, detect_every=detect_every, device=device)
    opts = LiveOptions(source=source, models=models, serve=serve, host=host, window=window,
                       record=str(record) if record else None, tokens=str(tokens) if tokens else None,
                       max_seconds=max_seconds, size=size, as_fast_as_possible=as_fast_as_possible,
                       virtual_cam=virtual_cam, linger=linger)
    result = run_live(opts)
    if json_out:
        print_json(result.to_dict())
        return
    row = {"frames": result.frames, "dropped": result.dropped, "faces": result.faces, "fps": result.fps,
           "latency ms (median / p95)": f"{result.latency_ms} / {result.latency_p95_ms}", "stopped": result.stop}
    print_table([row], list(row), title=f"fx live {source}"
                + (f" -> {result.record}" if result.record else ""))


def register(app: typer.Typer) -> None:
    app.command("live")(live)
