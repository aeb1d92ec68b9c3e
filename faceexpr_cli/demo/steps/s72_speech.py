"""Demo: speech drives the portrait - a tiny audio2expr run on two speaking portraits, then another face and a
held-out voice (another seed): the animated mouth, measured on the written video, against the voice's curve."""

from __future__ import annotations

from faceexpr_cli.demo.framework import DemoContext, demo_step


@demo_step("speech", "Speech drives the portrait (audio2expr)", order=72)
def speech_drives_portrait(ctx: DemoContext) -> None:
    import numpy as np

    from faceexpr_cli.animate.landmarks import follow_landmarks
    from faceexpr_cli.audio2expr import shapes as S
    from faceexpr_cli.audio2expr.evaluate import plot_mouth
    from faceexpr_cli.audio2expr.predict import read_audio
    from faceexpr_cli.audio2expr.sample import make_speaking_portrait, portrait_crop
    from faceexpr_cli.audio2expr.speech import SpeechOptions, animate_speech
    from faceexpr_cli.audio2expr.training import run
    from faceexpr_cli.config.recipes import load_recipe
    from faceexpr_cli.face import get_backend
    from faceexpr_cli.media import read_frames, write_image
    from faceexpr_cli.samples.talking_head import write_wav

    clips = ctx.path("speech/clips/x").parent
    for seed in (0, 1):
        make_speaking_portrait(clips / f"astronaut_{seed}.mp4", seed=seed, seconds=2.5)
    held = make_speaking_portrait(ctx.path("speech/held_out.mp4"), seed=11, seconds=2.0)
    result = run(load_recipe("audio2expr-tiny", [f"data.path={clips}", "trainer.max_steps=60"]), ctx.path("speech/run"))
    wav = write_wav(ctx.path("speech/speech.wav"), read_audio(held.path), 16000)
    portrait = write_image(ctx.path("speech/grace_hopper.png"), portrait_crop("grace_hopper", 160))
    out = animate_speech(portrait, wav, ctx.path("speech/talk.mp4"), SpeechOptions(result.run_dir, tiny_warp=True))
    track = follow_landmarks(get_backend("dlib"), read_frames(out.out), out.out)
    mouth = S.mouth_opening(S.normalise(track.points))
    n = min(len(mouth), len(held.mouth_open))
    r = float(np.corrcoef(mouth[:n], held.mouth_open[:n])[0, 1])
    scale = float(np.ptp(mouth[:n])) or 1.0
    plot = plot_mouth(ctx.path("speech/mouth.png"), {"predicted": mouth[:n], "measured": held.mouth_open[:n] * scale,
                                                "envelope": held.mouth_open[:n], "fps": held.fps}, "grace_hopper",
                      ("the voice's mouth curve (scaled)", "mouth measured on the animated portrait"))
    ctx.video(out.out, f"grace_hopper speaking the held-out voice: {out.frames} frames, the speech as audio")
    ctx.image(plot, f"mouth opening measured on the result (red) vs the voice's curve (grey): r = {r:.2f}")
    ctx.table([{"train steps": result.steps, "clips": result.clips, "frames": out.frames,
                "mouth vs voice r": f"{r:.3f}", "ms/frame": out.ms_per_frame}], "fx train audio2expr + fx animate")
    ctx.text("fx train audio2expr --recipe audio2expr-tiny data.path=clips/ --out runs/a2e; "
             "fx animate -s portrait.png -d speech.wav --audio-model runs/a2e -o talk.mp4")
    ctx.summary(result=out.out, frames=out.frames, mouth_correlation=round(r, 3))
